"""ConvE (Dettmers et al., AAAI 2018): a 2-D convolution over the stacked (entity, relation) image.

Layout, chosen so that scoring stays a plain dot product (one matmul over all entities, and the
diffusion samplers' external embeddings are scored by the same kernel):

* entity rows have ``dim + 1`` features: ``[e | b_e]``, the embedding and the entity's scalar bias;
* relation rows have ``2 * dim`` features: ``[r_forward | r_inverse]`` (reciprocal relations);
* a query is ``q' = [q ; 1]`` with ``q`` the network output, so ``<q', e> = <q, e_emb> + b_e``.

The head query of ``(?, r, t)`` is the tail query of ``(t, r^-1, ?)``: it runs ``t`` through the network
with ``r_inverse``. Dropout and BatchNorm follow ``model.train()`` / ``model.eval()``.

A reciprocal model scores a triple differently on each side, which the one-score-per-triple interface
cannot express: ``score_hrt`` is the tail-side score ``S(h, r, t)``; every head-side path
(``score_all_heads``, ``score_head_embeddings``, the head-corrupted rows of ``score_corrupted``) gives the
reciprocal score ``S(t, r^-1, h)``, which ``score_reciprocal`` computes for id triples. The two agree only
as far as training makes them agree; 1-N training (``train.mode: one_to_n``, as in the paper) fits both.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dans_kgc.models.base import KGEModel


def nearest_sqrt_divisor(n: int) -> int:
    """The divisor of ``n`` nearest ``sqrt(n)``: the squarest reshape of ``n``.

    It is never above ``sqrt(n)`` when one below exists (for ``d < sqrt(n)``, ``n/d - sqrt(n) >= sqrt(n) - d``
    by AM-GM), so the image ``2H x W`` is at most about twice as tall as wide.
    """
    root = math.sqrt(n)
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - root), d))


class ConvE(KGEModel):
    """``S(h, r, t) = <relu(BN(W vec(relu(BN(conv([h; r_fwd])))))), t_emb> + b_t`` (dropouts left out),
    the image ``[h; r_fwd]`` being the two ``H x W`` reshapes stacked to ``2H x W``."""

    name = "conve"
    label = "ConvE"
    reciprocal = True  # head queries go through inverse relations: train with train.mode=one_to_n

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        input_dropout: float = 0.2,
        feature_dropout: float = 0.2,
        hidden_dropout: float = 0.3,
        conve_height: int = 0,
        conve_filters: int = 32,
        conve_kernel: int = 3,
        **kw: Any,
    ):
        height = nearest_sqrt_divisor(dim) if conve_height == 0 else int(conve_height)
        if height <= 0 or dim % height != 0:
            raise ValueError(f"model.conve_height={conve_height} must divide model.dim={dim} (or be 0: automatic)")
        width = dim // height
        if conve_kernel > min(2 * height, width) or conve_kernel < 1:
            raise ValueError(
                f"model.conve_kernel={conve_kernel} does not fit the {2 * height}x{width} input image "
                f"(model.dim={dim}, model.conve_height={height})"
            )
        super().__init__(num_entities, num_relations, dim, **kw)
        self.height, self.width = height, width
        self.input_bn = nn.BatchNorm2d(1)
        self.input_drop = nn.Dropout(input_dropout)
        self.conv = nn.Conv2d(1, conve_filters, conve_kernel)
        self.feature_bn = nn.BatchNorm2d(conve_filters)
        self.feature_drop = nn.Dropout2d(feature_dropout)
        out_h, out_w = 2 * height - conve_kernel + 1, width - conve_kernel + 1
        self.fc = nn.Linear(conve_filters * out_h * out_w, dim)
        self.hidden_drop = nn.Dropout(hidden_dropout)
        self.hidden_bn = nn.BatchNorm1d(dim)
        with torch.no_grad():
            self.entity.weight[:, dim] = 0.0  # biases start at 0

    @property
    def entity_width(self) -> int:
        return self.dim + 1

    @property
    def relation_width(self) -> int:
        return 2 * self.dim

    def _query(self, e: torch.Tensor, r_half: torch.Tensor) -> torch.Tensor:
        """Entity rows ``[..., dim + 1]`` and one relation half ``[..., dim]`` -> queries ``[..., dim + 1]``."""
        lead = torch.broadcast_shapes(e.shape[:-1], r_half.shape[:-1])
        e = e[..., : self.dim].expand(*lead, self.dim).reshape(-1, 1, self.height, self.width)
        r = r_half.expand(*lead, self.dim).reshape(-1, 1, self.height, self.width)
        x = torch.cat([e, r], dim=2)  # [B, 1, 2H, W]
        x = self.input_drop(self.input_bn(x))
        x = self.feature_drop(torch.relu(self.feature_bn(self.conv(x))))
        x = self.hidden_drop(self.fc(x.flatten(1)))
        q = torch.relu(self.hidden_bn(x))
        q = torch.cat([q, q.new_ones(q.shape[0], 1)], dim=-1)
        return q.reshape(*lead, self.dim + 1)

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self._query(h, r[..., : self.dim])

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._query(t, r[..., self.dim :])

    def score_reciprocal(self, triples: torch.Tensor) -> torch.Tensor:
        """Head-side scores ``S(t, r^-1, h)`` of id triples [..., 3] -> [...], what head ranking compares."""
        h = self.entity(triples[..., 0])
        r = self.relation(triples[..., 1])
        t = self.entity(triples[..., 2])
        return self.similarity(self.head_query(r, t), h)

    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return (q * e).sum(dim=-1)

    def similarity_all(self, q: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        return q @ entities.T

    def factors(self, triples: torch.Tensor) -> list[torch.Tensor]:
        """Entity embeddings without their bias, and the relation rows: a bias is not an embedding."""
        return [
            self.entity(triples[:, 0])[:, : self.dim],
            self.relation(triples[:, 1]),
            self.entity(triples[:, 2])[:, : self.dim],
        ]
