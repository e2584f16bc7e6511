"""Semantic-matching backbones: DistMult and ComplEx (score = a dot product with a query)."""

from __future__ import annotations

import torch

from dans_kgc.models.base import KGEModel


class DistMult(KGEModel):
    """Yang et al. 2015: ``S = <h, r, t>``."""

    name = "distmult"
    label = "DistMult"

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return h * r

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return r * t

    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return (q * e).sum(dim=-1)

    def similarity_all(self, q: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        return q @ entities.T


class ComplEx(DistMult):
    """Trouillon et al. 2016: ``S = Re(<h, r, conj(t)>)``; entity rows are [real | imaginary]."""

    name = "complex"
    label = "ComplEx"

    @property
    def entity_width(self) -> int:
        return 2 * self.dim

    @property
    def relation_width(self) -> int:
        return 2 * self.dim

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., : self.dim], x[..., self.dim :]

    def factors(self, triples: torch.Tensor) -> list[torch.Tensor]:
        """N3 on the modulus of each complex coordinate (Lacroix et al. 2018)."""
        return [torch.sqrt(re**2 + im**2 + 1e-18) for re, im in map(self._split, super().factors(triples))]

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        hr, hi = self._split(h)
        rr, ri = self._split(r)
        # q = h * r; Re(q conj t) = q_re t_re + q_im t_im
        return torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        rr, ri = self._split(r)
        tr, ti = self._split(t)
        # w = r * conj(t); Re(h w) = h_re w_re - h_im w_im
        w_re = rr * tr + ri * ti
        w_im = ri * tr - rr * ti
        return torch.cat([w_re, -w_im], dim=-1)
