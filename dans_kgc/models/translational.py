"""Distance-based backbones: TransE and RotatE (score = gamma - distance)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dans_kgc.models.base import KGEModel


class TransE(KGEModel):
    """Bordes et al. 2013: ``S = gamma - ||h + r - t||_p``."""

    name = "transe"

    def __init__(self, num_entities: int, num_relations: int, dim: int, p_norm: int = 1, gamma: float = 0.0,
                 normalize_entities: bool = True, **kw: Any):
        super().__init__(num_entities, num_relations, dim, **kw)
        self.p = p_norm
        self.gamma = gamma
        self.normalize_entities = normalize_entities
        self.post_step()

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return h + r

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return t - r

    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.gamma - torch.linalg.vector_norm(q - e, ord=self.p, dim=-1)

    def similarity_all(self, q: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        return self.gamma - torch.cdist(q, entities, p=self.p)

    @torch.no_grad()
    def post_step(self) -> None:
        if self.normalize_entities:
            w = self.entity.weight
            w.div_(w.norm(dim=-1, keepdim=True).clamp_min(1e-12))


class RotatE(KGEModel):
    """Sun et al. 2019: rotation in the complex plane, ``S = gamma - sum_k |h_k r_k - t_k|``."""

    name = "rotate"

    def __init__(self, num_entities: int, num_relations: int, dim: int, gamma: float = 9.0, **kw: Any):
        super().__init__(num_entities, num_relations, dim, **kw)
        self.gamma = gamma
        nn.init.uniform_(self.relation.weight, -math.pi, math.pi)  # relation = phase

    @property
    def entity_width(self) -> int:
        return 2 * self.dim

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., : self.dim], x[..., self.dim:]

    def _rotate(self, x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        re, im = self._split(x)
        c, s = torch.cos(phase), torch.sin(phase)
        return torch.cat([re * c - im * s, re * s + im * c], dim=-1)

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self._rotate(h, r)

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._rotate(t, -r)  # |h r - t| = |h - t conj(r)| because |r| = 1

    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        dre, dim_ = self._split(q - e)
        return self.gamma - torch.sqrt(dre**2 + dim_**2 + 1e-12).sum(dim=-1)

    def similarity_all(self, q: torch.Tensor, entities: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        # Chunk over entities so the [B, chunk, 2d] difference stays small.
        parts = [self.similarity(q.unsqueeze(1), entities[i:i + chunk].unsqueeze(0))
                 for i in range(0, entities.shape[0], chunk)]
        return torch.cat(parts, dim=1)
