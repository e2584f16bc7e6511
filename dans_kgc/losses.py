"""Training losses over positive scores [B] and negative scores [B, N].

``weights`` (rows summing to 1) let a sampler weight its negatives; None = uniform mean.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _weights(neg: Tensor, weights: Optional[Tensor]) -> Tensor:
    return weights if weights is not None else torch.full_like(neg, 1.0 / neg.shape[-1])


def margin_ranking(pos: Tensor, neg: Tensor, weights: Optional[Tensor] = None, margin: float = 1.0, **_: float) -> Tensor:
    """``relu(margin - S(pos) + S(neg))`` averaged over negatives and batch."""
    if weights is None:  # uniform weights: the plain mean, without building a [B, N] weight tensor
        return F.relu(margin - pos.unsqueeze(-1) + neg).mean()
    return (_weights(neg, weights) * F.relu(margin - pos.unsqueeze(-1) + neg)).sum(-1).mean()


def softplus(pos: Tensor, neg: Tensor, weights: Optional[Tensor] = None, **_: float) -> Tensor:
    """Logistic loss ``-log sigma(S(pos)) - sum_i w_i log sigma(-S(neg_i))``."""
    return (F.softplus(-pos) + (_weights(neg, weights) * F.softplus(neg)).sum(-1)).mean()


def nssa(pos: Tensor, neg: Tensor, weights: Optional[Tensor] = None, adversarial_temperature: float = 1.0, **_: float) -> Tensor:
    """RotatE's self-adversarial loss: the logistic loss with weights softmax(alpha * S(neg)) (no gradient)."""
    if weights is None:
        weights = torch.softmax(adversarial_temperature * neg.detach(), dim=-1)
    return softplus(pos, neg, weights)


LOSSES: dict[str, Callable[..., Tensor]] = {"margin": margin_ranking, "softplus": softplus, "nssa": nssa}
