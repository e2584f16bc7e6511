"""The control for "any extra term helps": DANS-KGC's extra loss term with uniform random entities.

Same combination as DANS-KGC, ``L = (1 - eta) L_rand + eta L_term``, and the same per-row term as ``L_dans``
(``losses.band_loss`` in the backbone's loss family: margin, softplus or the two-way softmax of 1-N), but its
``negatives`` per row are uniformly drawn entities on a randomly chosen side, equally weighted, each with margin
``margin``, scored through the backbone's ``negative_space`` as DANS-KGC's snapped negatives are. Beside a 1-N
backbone it is the row that separates "DANS-KGC's negatives help" from "a second, margin-shaped term helps".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.losses import band_loss
from dans_kgc.sampling.base import NegativeSampler, StepContext, score_side_vectors


class UniformTermSampler(NegativeSampler):
    name = "uniform_term"

    def __init__(self, kg: KnowledgeGraph, cfg: Mapping[str, Any], num_negatives: int, generator: torch.Generator):
        super().__init__(kg, cfg, num_negatives, generator)
        s = cfg["samplers"]["uniform_term"]
        self.eta, self.term_negatives, self.margin = float(s["eta"]), int(s["negatives"]), float(s["margin"])
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"samplers.uniform_term.eta = {self.eta}; expected a value in [0, 1]")
        if self.term_negatives < 1:
            raise ValueError(f"samplers.uniform_term.negatives = {self.term_negatives}; expected at least 1")

    def total_loss(self, loss_rand: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        pos, b, k = ctx.pos, ctx.pos.shape[0], self.term_negatives
        head_side = (torch.rand(b, generator=self.generator) < 0.5).to(pos.device)
        ids = torch.randint(self.num_entities, (b, k), generator=self.generator).to(pos.device)
        space = ctx.model.negative_space(pos, head_side)
        scores = score_side_vectors(ctx.model, pos, head_side, space.vectors(ids))
        pos_scores = ctx.pos_scores
        if ctx.pos_scores_head is not None:
            pos_scores = torch.where(head_side, ctx.pos_scores_head, pos_scores)
        weights = torch.full((b, k), 1.0 / k, device=pos.device)
        margins = torch.full((k,), self.margin, device=pos.device)
        term = band_loss(ctx.loss_family, pos_scores, scores, weights, margins, ctx.loss_reduction)
        loss = (1.0 - self.eta) * loss_rand + self.eta * term
        return loss, {"l_rand": float(loss_rand.detach()), "l_term": float(term.detach())}


__all__ = ["UniformTermSampler"]
