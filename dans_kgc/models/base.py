"""The backbone interface.

Every model is written as ``score(h, r, t) = similarity(tail_query(h, r), t)`` and, for the
head side, ``similarity(head_query(r, t), h)``: a query vector in entity space and a kernel.
That one decomposition gives all-entity scoring (cdist or a matmul instead of a loop) and
scoring of *external* entity embeddings, which is what the diffusion samplers produce.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

_INITS: dict[str, Callable[[torch.Tensor], Any]] = {
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "normal": nn.init.normal_,
    "uniform": lambda w: nn.init.uniform_(w, -1.0, 1.0),
}


@dataclass
class QuerySpace:
    """Where the candidates of a batch of queries live, for samplers that generate negatives as vectors.

    Rows are queries: positive b with its head replaced (``head_side[b]``) or its tail. ``query`` [B, w] is the
    backbone's query representation (the diffusion's condition), ``target`` [B, w] the true answer's
    representation (the diffusion's x0), both detached. ``candidates`` holds every entity's representation:
    one table [N, w] shared by all queries (embedding backbones: the entity table) or one per query
    [B, N, w] (a query-conditioned backbone such as RED-GNN), with gradient, so a snapped negative taken from
    it is pushed through the backbone. ``score_tail_embeddings`` / ``score_head_embeddings`` score vectors of
    this space.
    """

    query: torch.Tensor
    target: torch.Tensor
    candidates: torch.Tensor

    @property
    def per_query(self) -> bool:
        return self.candidates.dim() == 3

    def vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Candidate representations of entity ids [B, K] of each row -> [B, K, w] (with gradient)."""
        # F.embedding: its backward is deterministic on CPU (indexing's accumulate is not), for exact resume
        if self.per_query:
            b, n, w = self.candidates.shape
            flat = ids + n * torch.arange(b, device=ids.device).unsqueeze(1)
            return F.embedding(flat, self.candidates.reshape(b * n, w))
        return F.embedding(ids, self.candidates)

    def rows(self, mask: torch.Tensor) -> QuerySpace:
        """The space of a subset of the rows (a boolean mask [B]); a shared table stays shared."""
        return QuerySpace(
            self.query[mask], self.target[mask], self.candidates[mask] if self.per_query else self.candidates
        )

    @property
    def scale_reference(self) -> torch.Tensor:
        """What the diffusion's data scale is measured on: the entity table, or the answers' representations."""
        return self.target if self.per_query else self.candidates


class KGEModel(nn.Module, ABC):
    """Base class. Subclasses set ``entity_width``/``relation_width`` and define the three hooks."""

    name: ClassVar[str]

    def __init__(self, num_entities: int, num_relations: int, dim: int, init: str = "xavier_uniform", **_: Any):
        super().__init__()
        self.num_entities = num_entities
        self.num_relations = num_relations
        self.dim = dim
        self.entity = nn.Embedding(num_entities, self.entity_width)
        self.relation = nn.Embedding(num_relations, self.relation_width)
        _INITS[init](self.entity.weight)
        _INITS[init](self.relation.weight)

    # --- widths -------------------------------------------------------------------------
    @property
    def entity_width(self) -> int:
        """Number of real features per entity (2*dim for complex-valued models)."""
        return self.dim

    @property
    def relation_width(self) -> int:
        return self.dim

    # --- the three hooks a model defines ----------------------------------------------------
    @abstractmethod
    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """(h, r) embeddings -> query in entity space, compared with candidate tails."""

    @abstractmethod
    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(r, t) embeddings -> query in entity space, compared with candidate heads."""

    @abstractmethod
    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Element-wise score of query ``q`` against entity embedding ``e`` (broadcast, last dim = features)."""

    def similarity_all(self, q: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        """Scores of every query [B, w] against every entity [N, w] -> [B, N]. Override with a fast kernel."""
        return self.similarity(q.unsqueeze(1), entities.unsqueeze(0))

    # --- derived scoring API -------------------------------------------------------------
    def score_hrt(self, triples: torch.Tensor) -> torch.Tensor:
        """Scores of id triples [..., 3] -> [...]."""
        h = self.entity(triples[..., 0])
        r = self.relation(triples[..., 1])
        t = self.entity(triples[..., 2])
        return self.similarity(self.tail_query(h, r), t)

    @staticmethod
    def corruption_layout(pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Where each negative [B, N, 3] of positives [B, 3] points, when each replaces only the head or the tail.

        Returns ``(rows, candidates)`` [B, N]: ``rows`` indexes the 2B queries ``cat([tail_query, head_query])``
        of the positives (b for a corrupted tail, B + b for a corrupted head) and ``candidates`` is the entity
        put in; None when some negative changes the relation or both ends.
        """
        same_r = neg[..., 1] == pos[:, None, 1]
        tail_side = same_r & (neg[..., 0] == pos[:, None, 0])
        head_side = same_r & (neg[..., 2] == pos[:, None, 2])
        if not bool((tail_side | head_side).all()):
            return None
        rows = torch.arange(pos.shape[0], device=pos.device).unsqueeze(1) + pos.shape[0] * (~tail_side).long()
        candidates = torch.where(tail_side, neg[..., 2], neg[..., 0])
        return rows, candidates

    def score_corrupted(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Scores of negatives [B, N, 3] built from positives [B, 3]; equals ``score_hrt(neg)``.

        When every negative replaces only the head or only the tail, the two queries of each
        positive are computed once and one entity lookup per negative suffices (about 1.5x
        faster training than three lookups per negative); otherwise falls back to ``score_hrt``.
        """
        layout = self.corruption_layout(pos, neg)
        if layout is None:
            return self.score_hrt(neg)
        rows, candidates = layout
        h, r, t = self.entity(pos[:, 0]), self.relation(pos[:, 1]), self.entity(pos[:, 2])
        queries = torch.cat([self.tail_query(h, r), self.head_query(r, t)])
        return self.similarity(F.embedding(rows, queries), self.entity(candidates))

    def score_positive_and_corrupted(self, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score_hrt(pos), score_corrupted(pos, neg))`` in one call, the training step's scoring.

        Backbones may override it with a fused kernel (TransE-L1 does); the results must not change.
        """
        return self.score_hrt(pos), self.score_corrupted(pos, neg)

    def score_tail_embeddings(self, h_idx: torch.Tensor, r_idx: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        """Score (h, r, t~) for external tail embeddings t_emb [B, K, w] -> [B, K]."""
        q = self.tail_query(self.entity(h_idx), self.relation(r_idx))
        return self.similarity(q.unsqueeze(1), t_emb)

    def score_head_embeddings(self, r_idx: torch.Tensor, t_idx: torch.Tensor, h_emb: torch.Tensor) -> torch.Tensor:
        """Score (h~, r, t) for external head embeddings h_emb [B, K, w] -> [B, K]."""
        q = self.head_query(self.relation(r_idx), self.entity(t_idx))
        return self.similarity(q.unsqueeze(1), h_emb)

    def score_all_tails(self, h_idx: torch.Tensor, r_idx: torch.Tensor) -> torch.Tensor:
        return self.similarity_all(self.tail_query(self.entity(h_idx), self.relation(r_idx)), self.entity.weight)

    def score_all_heads(self, r_idx: torch.Tensor, t_idx: torch.Tensor) -> torch.Tensor:
        return self.similarity_all(self.head_query(self.relation(r_idx), self.entity(t_idx)), self.entity.weight)

    def query_embedding(self, h_idx: torch.Tensor, r_idx: torch.Tensor, side: str = "tail") -> torch.Tensor:
        """The backbone's query representation (``h + r`` for TransE), the diffusion's neighbourhood condition.

        For ``side='head'`` the arguments are (t_idx, r_idx) and the query points at heads.
        """
        if side == "tail":
            return self.tail_query(self.entity(h_idx), self.relation(r_idx))
        return self.head_query(self.relation(r_idx), self.entity(h_idx))

    def negative_space(self, pos: torch.Tensor, head_side: torch.Tensor) -> QuerySpace:
        """The representation space of each row's query (``pos`` [B, 3], ``head_side`` [B]); see ``QuerySpace``.

        Embedding backbones: the query vector ``tail_query(h, r)`` / ``head_query(r, t)``, the answer's
        embedding and the shared entity table.
        """
        head_side = head_side.to(pos.device)
        target = torch.where(head_side, pos[:, 0], pos[:, 2])
        anchor = torch.where(head_side, pos[:, 2], pos[:, 0])
        q_tail = self.query_embedding(anchor, pos[:, 1], side="tail")
        q_head = self.query_embedding(anchor, pos[:, 1], side="head")
        query = torch.where(head_side.unsqueeze(-1), q_head, q_tail)
        return QuerySpace(query=query.detach(), target=self.entity(target).detach(), candidates=self.entity.weight)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def attach_graph(self, triples: torch.Tensor) -> None:
        """The graph a graph backbone propagates over (id triples [M, 3]); embedding backbones ignore it.

        The Trainer gives the training graph at start-up (and each epoch's propagation graph under
        ``train.fact_ratio``); ``evaluate()`` gives the full training graph before ranking.
        """

    def post_step(self) -> None:
        """Constraints applied after each optimiser step (e.g. TransE's entity normalisation)."""

    def factors(self, triples: torch.Tensor) -> list[torch.Tensor]:
        """The embedding factors of triples [B, 3] that a regulariser penalises, each [B, k].

        Element-wise magnitudes: real models return the raw rows; complex and quaternion models
        return the modulus of each complex / quaternion coordinate, as N3 (Lacroix et al. 2018) asks.
        """
        return [self.entity(triples[:, 0]), self.relation(triples[:, 1]), self.entity(triples[:, 2])]

    def regularization(self, triples: torch.Tensor, kind: str, weight: float) -> torch.Tensor:
        """``weight * mean_b sum |f|^3`` (n3) or ``... |f|^2`` (l2) over the batch's factors; 0 for none."""
        if kind == "none" or weight == 0.0:
            return torch.zeros((), device=triples.device)
        power = {"n3": 3, "l2": 2}[kind]
        total = sum((f.abs().pow(power).sum() for f in self.factors(triples)), torch.zeros((), device=triples.device))
        return weight * total / triples.shape[0]
