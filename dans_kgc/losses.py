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


def one_to_n_cross_entropy(scores: Tensor, targets: Tensor, label_smoothing: float = 0.0,
                           reduction: str = "mean") -> Tensor:
    """1-N training: softmax cross-entropy of each query's scores [Q, N] against its answer [Q].

    With label smoothing ``eps`` the target distribution is ``(1 - eps) onehot + eps / N``. ``reduction``
    ``sum`` (RED-GNN's) makes a given weight decay weaker relative to the loss than ``mean`` does.
    """
    return F.cross_entropy(scores, targets, label_smoothing=label_smoothing, reduction=reduction)


LOSS_FAMILIES = ("margin", "softplus", "softmax")


def band_loss(family: str, pos: Tensor, neg: Tensor, weights: Tensor, margins: Tensor,
              reduction: str = "mean") -> Tensor:
    """L_dans over generated negatives [B, K] with band weights [B, K], each pushed as a random one is.

    margin (margin-loss training): ``sum_k w_k relu(gamma_k - S(pos) + S(neg_k))`` (METHOD.md);
    softplus (softplus / NSSA training): ``sum_k w_k softplus(S(neg_k))``, the negative half of the
      logistic loss (its positive half is in L_rand); stage margins do not enter;
    softmax (1-N cross-entropy): ``sum_k w_k softplus(gamma_k - S(pos) + S(neg_k))``, the
      cross-entropy of the two-way softmax {answer, negative} with the band's margin on the logit.
    ``reduction`` over rows follows ``train.loss_reduction`` (``sum``: RED-GNN's summed loss), so the term keeps
    its weight next to an L_rand summed over the batch.
    """
    if family == "margin":
        per_band = F.relu(margins - pos.unsqueeze(-1) + neg)
    elif family == "softplus":
        per_band = F.softplus(neg)
    elif family == "softmax":
        per_band = F.softplus(margins - pos.unsqueeze(-1) + neg)
    else:
        raise ValueError(f"loss family {family!r}; expected one of {', '.join(LOSS_FAMILIES)}")
    per_row = (weights * per_band).sum(-1)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"train.loss_reduction = {reduction!r}; expected mean or sum")
    return per_row.sum() if reduction == "sum" else per_row.mean()


LOSSES: dict[str, Callable[..., Tensor]] = {"margin": margin_ranking, "softplus": softplus, "nssa": nssa}
