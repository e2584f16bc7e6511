"""Training losses over positive scores [B] and negative scores [B, N].

``weights`` (rows summing to 1) let a sampler weight its negatives; None = uniform mean.
``row_weights`` [B] weight the positives (RotatE's subsampling weights): the batch loss is then
``sum_b w_b l_b / sum_b w_b``; None = the plain mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from dans_kgc.utils import find_sorted

Tensor = torch.Tensor


def _weights(neg: Tensor, weights: Tensor | None) -> Tensor:
    return weights if weights is not None else torch.full_like(neg, 1.0 / neg.shape[-1])


def _batch_mean(per_row: Tensor, row_weights: Tensor | None) -> Tensor:
    return per_row.mean() if row_weights is None else (row_weights * per_row).sum() / row_weights.sum()


def margin_ranking(
    pos: Tensor,
    neg: Tensor,
    weights: Tensor | None = None,
    margin: float = 1.0,
    row_weights: Tensor | None = None,
    **_: float,
) -> Tensor:
    """``relu(margin - S(pos) + S(neg))`` averaged over negatives and batch."""
    if weights is None and row_weights is None:  # the plain mean, without building a [B, N] weight tensor
        return F.relu(margin - pos.unsqueeze(-1) + neg).mean()
    per_row = (_weights(neg, weights) * F.relu(margin - pos.unsqueeze(-1) + neg)).sum(-1)
    return _batch_mean(per_row, row_weights)


def softplus(
    pos: Tensor, neg: Tensor, weights: Tensor | None = None, row_weights: Tensor | None = None, **_: float
) -> Tensor:
    """Logistic loss ``-log sigma(S(pos)) - sum_i w_i log sigma(-S(neg_i))``."""
    return _batch_mean(F.softplus(-pos) + (_weights(neg, weights) * F.softplus(neg)).sum(-1), row_weights)


def nssa(
    pos: Tensor,
    neg: Tensor,
    weights: Tensor | None = None,
    adversarial_temperature: float = 1.0,
    row_weights: Tensor | None = None,
    **_: float,
) -> Tensor:
    """RotatE's self-adversarial loss: the logistic loss with weights softmax(alpha * S(neg)) (no gradient)."""
    if weights is None:
        weights = torch.softmax(adversarial_temperature * neg.detach(), dim=-1)
    return softplus(pos, neg, weights, row_weights)


class SubsamplingWeights:
    """RotatE's (Sun et al. 2019) frequency weights of positives, ``w(h, r, t) = 1 / sqrt(c(h, r) + c(t, r^-1))``,
    each count started at ``start`` (their count_frequency: a query's first triple counts ``start``, each further
    one 1), from the training graph's triples [n, 3]. Rare queries weigh more than frequent ones."""

    def __init__(self, train: Tensor, num_relations: int, start: int = 4):
        self.num_relations = num_relations
        self.tables = {}
        for side, anchor in (("tail", train[:, 0]), ("head", train[:, 2])):
            keys, counts = torch.unique(anchor * num_relations + train[:, 1], return_counts=True)
            self.tables[side] = (keys, counts + (start - 1))

    def __call__(self, pos: Tensor) -> Tensor:
        total = torch.zeros(len(pos), dtype=torch.float32)
        for side, anchor in (("tail", pos[:, 0]), ("head", pos[:, 2])):
            keys, counts = self.tables[side]
            q = anchor.cpu() * self.num_relations + pos[:, 1].cpu()
            at, found = find_sorted(keys, q)
            if not bool(found.all()):
                raise ValueError("train.subsampling: a positive's query is not in the training graph")
            total += counts[at].float()
        return total.rsqrt().to(pos.device)


def one_to_n_cross_entropy(
    scores: Tensor, targets: Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """1-N training: softmax cross-entropy of each query's scores [Q, N] against its answer [Q].

    With label smoothing ``eps`` the target distribution is ``(1 - eps) onehot + eps / N``. ``reduction``
    ``sum`` (RED-GNN's) makes a given weight decay weaker relative to the loss than ``mean`` does.
    """
    return F.cross_entropy(scores, targets, label_smoothing=label_smoothing, reduction=reduction)


LOSS_FAMILIES = ("margin", "softplus", "softmax")


def band_loss(
    family: str, pos: Tensor, neg: Tensor, weights: Tensor, margins: Tensor, reduction: str = "mean"
) -> Tensor:
    """L_dans over generated negatives [B, K] with band weights [B, K], each pushed as a random one is.

    margin (margin-loss training): ``sum_k w_k relu(gamma_k - S(pos) + S(neg_k))`` (docs/method.md);
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
