"""The negative-sampler interface. A new sampler is one file: subclass, register, done.

A training step calls, in order:
  ``neg = sampler.corrupt(pos)``                          discrete negatives [B, N, 3]
  ``w = sampler.negative_weights(neg_scores)``            optional per-negative weights
  ``loss, logs = sampler.total_loss(loss_rand, batch)``   add terms (e.g. diffusion losses)
  ``sampler.after_step(pos, model)``                      refresh state (e.g. NSCaching caches)
and ``sampler.refresh(model)`` before the first epoch and after each validation.
Samplers are ``nn.Module``s: their parameters join the optimiser and their buffers the
checkpoints, so resuming restores them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.models.base import KGEModel
from dans_kgc.utils import find_sorted


@dataclass
class StepContext:
    """What a sampler may use to build extra loss terms in one step."""

    pos: torch.Tensor  # [B, 3] positive triples
    pos_scores: torch.Tensor  # [B]
    model: KGEModel
    progress: float  # training progress tau in [0, 1]
    step: int
    pos_scores_head: torch.Tensor | None = None  # [B] head-side score of the positives where it differs
    # (1-N mode: S(t, r^-1, h) for models with reciprocal head queries); None = pos_scores
    loss_family: str = "margin"  # how L_rand pushes a negative: margin | softplus (softplus, NSSA) | softmax (1-N)
    loss_reduction: str = "mean"  # how L_rand reduces over the batch (train.loss_reduction); extra terms follow it


# Rounds of redrawing a corrupted entity that formed a training triple (train.filter_negatives). Each round
# redraws only the offending entries; a query whose answers cover nearly every entity can keep a few after
# the last round (RotatE's loader redraws until it has enough, which need not end for such a query).
FILTER_ROUNDS = 20


class NegativeSampler(nn.Module):
    name: ClassVar[str]

    def __init__(self, kg: KnowledgeGraph, cfg: Mapping[str, Any], num_negatives: int, generator: torch.Generator):
        super().__init__()
        self.num_entities = kg.num_entities
        self.num_relations = kg.num_relations
        self.num_negatives = num_negatives
        self.generator = generator
        self.cfg = cfg
        # Sorted keys (h * R + r) * E + t of the training graph's triples, when random negatives must not be
        # known true triples. Derived from the data, so kept outside the checkpointed buffers.
        self.true_keys: torch.Tensor | None = None
        if bool(cfg["train"].get("filter_negatives", False)):
            self.true_keys = torch.unique(torch.from_numpy(self.triple_keys(np.asarray(kg.train, dtype=np.int64))))

    def triple_keys(self, triples: Any) -> Any:
        """One integer per triple [..., 3] (numpy or torch): ``(h * R + r) * E + t``."""
        return (triples[..., 0] * self.num_relations + triples[..., 1]) * self.num_entities + triples[..., 2]

    def known_true(self, neg: torch.Tensor) -> torch.Tensor:
        """Boolean [...] mask of the triples [..., 3] that are in the training graph (needs ``true_keys``)."""
        if self.true_keys is None:
            raise RuntimeError(f"sampler {self.name}: known_true needs train.filter_negatives = true")
        _, found = find_sorted(self.true_keys, self.triple_keys(neg.to(self.true_keys.device)))
        return found.to(neg.device)

    def head_probability(self, relations: torch.Tensor) -> torch.Tensor:
        """Probability of corrupting the head of each positive (0.5 = uniform side choice)."""
        return torch.full(relations.shape, 0.5)

    def corrupt(self, pos: torch.Tensor) -> torch.Tensor:
        """Replace the head or the tail of each positive with a random entity -> [B, N, 3]."""
        b, n = pos.shape[0], self.num_negatives
        neg = pos.unsqueeze(1).repeat(1, n, 1)
        p_head = self.head_probability(pos[:, 1]).unsqueeze(1).expand(b, n)
        head = torch.rand((b, n), generator=self.generator) < p_head
        ents = torch.randint(self.num_entities, (b, n), generator=self.generator)
        neg[..., 0] = torch.where(head, ents, neg[..., 0])
        neg[..., 2] = torch.where(head, neg[..., 2], ents)
        if self.true_keys is not None and len(self.true_keys):
            self.redraw_known_true(neg, head)
        return neg

    def redraw_known_true(self, neg: torch.Tensor, head: torch.Tensor) -> None:
        """Redraw, in place, the corrupted entity of every negative that is a training triple (on its side)."""
        for _ in range(FILTER_ROUNDS):
            bad = self.known_true(neg)
            count = int(bad.sum())
            if count == 0:
                return
            ents = torch.randint(self.num_entities, (count,), generator=self.generator)
            on_head = head[bad]
            heads, tails = neg[..., 0], neg[..., 2]  # views: assigning through them writes neg
            heads[bad] = torch.where(on_head, ents, heads[bad])
            tails[bad] = torch.where(on_head, tails[bad], ents)

    def negative_weights(self, neg_scores: torch.Tensor) -> torch.Tensor | None:
        return None

    def total_loss(self, loss_rand: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        return loss_rand, {}

    def after_step(self, pos: torch.Tensor, model: KGEModel) -> None:
        """Hook after the optimiser step."""

    def refresh(self, model: KGEModel) -> dict[str, float]:
        """Hook before the first epoch and after each validation: re-measure whatever the sampler fits on
        the model (e.g. DANS-KGC's measured band placement); returns trace columns."""
        return {}

    def epoch_logs(self) -> dict[str, float]:
        """Extra columns for the per-epoch trace (e.g. curriculum band weights)."""
        return {}


def score_side_vectors(
    model: KGEModel, pos: torch.Tensor, head_side: torch.Tensor, vectors: torch.Tensor
) -> torch.Tensor:
    """``S`` of each positive [B, 3] with its head (``head_side``) or tail swapped for each vector [B, K, w] of the
    backbone's ``negative_space`` -> [B, K] (generated negatives, or candidates taken from the space)."""
    scores = torch.empty(vectors.shape[:2], device=vectors.device, dtype=vectors.dtype)
    tail_rows, head_rows = (~head_side).nonzero().squeeze(1), head_side.nonzero().squeeze(1)
    if len(tail_rows):
        scores[tail_rows] = model.score_tail_embeddings(pos[tail_rows, 0], pos[tail_rows, 1], vectors[tail_rows])
    if len(head_rows):
        scores[head_rows] = model.score_head_embeddings(pos[head_rows, 1], pos[head_rows, 2], vectors[head_rows])
    return scores


def relation_head_probability(train: np.ndarray, num_relations: int) -> torch.Tensor:
    """Bernoulli trick (Wang et al. 2014): p(corrupt head | r) = tph / (tph + hpt)."""
    probs = np.full(num_relations, 0.5)
    for r in range(num_relations):
        sub = train[train[:, 1] == r]
        if len(sub) == 0:
            continue
        tph = len(sub) / len(np.unique(sub[:, 0]))  # tails per head
        hpt = len(sub) / len(np.unique(sub[:, 2]))  # heads per tail
        probs[r] = tph / (tph + hpt)
    return torch.as_tensor(probs, dtype=torch.float32)
