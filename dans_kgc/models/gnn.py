"""RED-GNN (Zhang & Yao, WWW 2022, "Knowledge Graph Reasoning with Relational Digraph"), transductive form.

A query ``(e_q, r_q, ?)`` is answered by propagating from ``e_q`` alone, layer by layer, over the propagation
graph: the training triples, their inverses (relation ``r + R``) and one identity edge per entity (relation
``2R``). Layer ``l`` only follows edges whose source was reached at layer ``l - 1``, so the reached set grows
from ``e_q`` (the relational digraph) and every entity reached once stays reached (identity edges). For an edge
``(s, r, o)`` of query relation ``r_q``::

    alpha = sigmoid(w_alpha^T relu(W_s h_s + W_r h_r + W_q h_{r_q} + b_q) + b_alpha)
    h_o^l = act(W_h^l sum_{edges into o} alpha * (h_s^{l-1} + h_r^l))

with relation embeddings of their own per layer, ``h^0(e_q) = 0``, dropout after each layer and, as the
published transductive code has, a GRU over the layers (``model.gnn_gate: gru``; ``none`` = the paper's
equations alone). The score of a reached entity is ``w^T h_e^L``; an entity not reached in L hops scores 0
(as the published code does). The attention's inner activation is ReLU whatever ``model.activation`` is, again
as published.

Queries are batched: a node is a (query in batch, entity) pair keyed ``b * N + e``, deduplicated with
``torch.unique`` at every layer. Tail queries propagate from ``h`` with ``r``; head queries ``(?, r, t)``
from ``t`` with the inverse relation ``r + R`` (reciprocal, like ConvE: train with ``train.mode: one_to_n``).

There is no entity table: paths that need one (embedding regularisers, DAM's embedding features, the query
vectors of embedding backbones) raise ``UnsupportedByGraphBackbone`` naming ``model.name=redgnn``. The
diffusion samplers work in its query-conditioned representation space instead (``negative_space``): a
generated negative is a candidate state h~, scored by the read-out ``w^T h~``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from dans_kgc.models.base import KGEModel, QuerySpace

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "identity": lambda x: x,
}
GATES = ("gru", "none")


class UnsupportedByGraphBackbone(ValueError):
    """A scoring path that needs entity embeddings was asked of a graph backbone."""


class Blocks(NamedTuple):
    """Where each node and edge of one layer sits in per-query blocks: node ``i`` of query ``b`` is row ``local``
    of block ``b``. Lets a layer aggregate with a dense [B, M_dst, M_src] attention matrix (one bmm)."""

    edge_batch: torch.Tensor  # [E] query of each edge
    edge_src: torch.Tensor  # [E] local index of the edge's source node
    edge_dst: torch.Tensor  # [E] local index of the edge's destination node
    src_batch: torch.Tensor  # [K] query of each source node
    src_local: torch.Tensor  # [K]
    dst_batch: torch.Tensor  # [K'] query of each destination node
    dst_local: torch.Tensor  # [K']
    size: tuple[int, int, int]  # (B, M_dst, M_src): the most nodes any query has on each side


def local_index(keys: torch.Tensor, num_entities: int, num_queries: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sorted node keys (b * N + e) -> (query of each node, its rank among that query's nodes,
    most nodes of a query)."""
    batch = keys // num_entities
    counts = torch.bincount(batch, minlength=num_queries)
    local = torch.arange(len(keys), device=keys.device) - (torch.cumsum(counts, 0) - counts)[batch]
    return batch, local, int(counts.max())


class RedGNNLayer(nn.Module):
    """One propagation step: attention-weighted messages ``alpha * (h_src + h_rel)`` summed at the destination."""

    def __init__(self, dim: int, attn_dim: int, num_edge_relations: int, act: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.relation = nn.Embedding(num_edge_relations, dim)
        self.w_source = nn.Linear(dim, attn_dim, bias=False)
        self.w_relation = nn.Linear(dim, attn_dim, bias=False)
        self.w_query = nn.Linear(dim, attn_dim)
        self.w_alpha = nn.Linear(attn_dim, 1)
        self.w_out = nn.Linear(dim, dim, bias=False)
        self.act = act

    def forward(
        self,
        hidden: torch.Tensor,
        src_node: torch.Tensor,
        edge_rel: torch.Tensor,
        query_attn: torch.Tensor,
        dst: torch.Tensor,
        num_dst: int,
        blocks: Blocks | None = None,
    ) -> torch.Tensor:
        """Node states [K, d], each edge's source node [E], relation [E] and query term ``W_q h_{r_q} + b_q`` [E, a],
        destination node of each edge [E] -> hidden states of the ``num_dst`` destination nodes [num_dst, d].

        Without ``blocks`` the messages are built per edge ([E, d] tensors) and summed with index_add_. With them,
        by linearity ``sum_e alpha_e (h_src + h_rel) = A @ H + C @ R``: A [B, M_dst, M_src] and C [K', 2R+1] hold
        summed attention weights, so per edge only scalars move (about 10x faster on CPU when the blocks are small).
        """
        # the attention projections are taken per node and per relation, then gathered: E x a, never E x d inputs.
        # Gathers go through F.embedding: its backward is deterministic on CPU with several threads, while the
        # backward of tensor[index] (index_put_ accumulate) is not, and exact resume compares weights bitwise.
        attn = F.embedding(src_node, self.w_source(hidden)) + F.embedding(
            edge_rel, self.w_relation(self.relation.weight)
        )
        attn = attn + query_attn
        alpha = torch.sigmoid(self.w_alpha(torch.relu(attn)))
        if blocks is None:
            message = alpha * (F.embedding(src_node, hidden) + self.relation(edge_rel))
            agg = message.new_zeros(num_dst, message.shape[1]).index_add_(0, dst, message)
        else:
            a = alpha.squeeze(1)
            adj = a.new_zeros(blocks.size).index_put(
                (blocks.edge_batch, blocks.edge_dst, blocks.edge_src), a, accumulate=True
            )
            h_pad = hidden.new_zeros(blocks.size[0], blocks.size[2], hidden.shape[1]).index_put(
                (blocks.src_batch, blocks.src_local), hidden
            )
            from_sources = torch.bmm(adj, h_pad)[blocks.dst_batch, blocks.dst_local]
            per_relation = a.new_zeros(num_dst, self.relation.num_embeddings).index_put(
                (dst, edge_rel), a, accumulate=True
            )
            agg = from_sources + per_relation @ self.relation.weight
        return self.act(self.w_out(agg))

    def query_term(self, query_rel: torch.Tensor) -> torch.Tensor:
        """``W_q h_{r_q} + b_q`` per query [B, a], computed once per query rather than once per edge."""
        return self.w_query(self.relation(query_rel))


class RedGNN(KGEModel):
    """Query-conditioned propagation from the anchor entity; see the module docstring."""

    name = "redgnn"
    label = "RED-GNN"
    reciprocal = True  # head queries go through inverse relations: train with train.mode=one_to_n
    needs_graph = True  # the Trainer / evaluation hand it its propagation graph (attach_graph)

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        gnn_layers: int = 3,
        attn_dim: int = 5,
        gnn_dropout: float = 0.0,
        activation: str = "relu",
        gnn_gate: str = "gru",
        **_: Any,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation = {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        if gnn_gate not in GATES:
            raise ValueError(f"model.gnn_gate = {gnn_gate!r}; expected one of {', '.join(GATES)}")
        if gnn_layers < 1 or attn_dim < 1 or dim < 1:
            raise ValueError(
                f"model.gnn_layers={gnn_layers}, model.attn_dim={attn_dim} and model.dim={dim} "
                "must all be >= 1 for model.name=redgnn"
            )
        # No entity / relation tables (KGEModel.__init__ would build them): every score comes from propagation.
        nn.Module.__init__(self)
        self.num_entities, self.num_relations, self.dim = num_entities, num_relations, dim
        act = ACTIVATIONS[activation]
        self.layers = nn.ModuleList(RedGNNLayer(dim, attn_dim, 2 * num_relations + 1, act) for _ in range(gnn_layers))
        self.dropout = nn.Dropout(gnn_dropout)
        self.gate: nn.GRUCell | None = nn.GRUCell(dim, dim) if gnn_gate == "gru" else None
        self.readout = nn.Linear(dim, 1, bias=False)
        self.block_aggregation: bool | None = None  # how layers aggregate (same result): None = the cheaper way
        # The propagation graph as CSR by source entity; data, not parameters, so never in a checkpoint.
        self.register_buffer("edge_ptr", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("edge_rel", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("edge_dst", torch.zeros(0, dtype=torch.long), persistent=False)

    @property
    def gnn_layers(self) -> list[RedGNNLayer]:
        return cast(list[RedGNNLayer], list(self.layers))  # nn.ModuleList is not generic: its items are typed Module

    @property
    def identity_relation(self) -> int:
        return 2 * self.num_relations

    # --- the graph ---------------------------------------------------------------------------
    def attach_graph(self, triples: torch.Tensor) -> None:
        """Propagate over ``triples`` [M, 3] from now on (plus their inverses and one identity edge per entity)."""
        t = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3).cpu()
        n, r = self.num_entities, self.num_relations
        loops = torch.arange(n)
        src = torch.cat([t[:, 0], t[:, 2], loops])
        rel = torch.cat([t[:, 1], t[:, 1] + r, torch.full((n,), 2 * r)])
        dst = torch.cat([t[:, 2], t[:, 0], loops])
        order = torch.sort(src, stable=True).indices  # stable: the same graph gives the same edge order
        ptr = torch.zeros(n + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(torch.bincount(src, minlength=n), 0)
        device = self.readout.weight.device
        self.edge_ptr, self.edge_rel, self.edge_dst = ptr.to(device), rel[order].to(device), dst[order].to(device)

    # --- propagation -------------------------------------------------------------------------
    def _out_edges(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For nodes ``keys`` [K] (b * N + e): each out-edge's source node index, relation and destination key."""
        n = self.num_entities
        batch, ent = keys // n, keys % n
        start = self.edge_ptr[ent]
        degree = self.edge_ptr[ent + 1] - start
        src_node = torch.repeat_interleave(torch.arange(len(keys), device=keys.device), degree)
        first = torch.cumsum(degree, 0) - degree
        eid = start[src_node] + torch.arange(len(src_node), device=keys.device) - first[src_node]
        return src_node, self.edge_rel[eid], batch[src_node] * n + self.edge_dst[eid]

    def _blocks(
        self, keys: torch.Tensor, new_keys: torch.Tensor, src_node: torch.Tensor, dst: torch.Tensor, num_queries: int
    ) -> Blocks | None:
        """Per-query blocks of one layer, or None where the dense attention blocks would be larger than the
        per-edge messages they replace (``block_aggregation``: None = that choice, True / False = forced)."""
        src_batch, src_local, m_src = local_index(keys, self.num_entities, num_queries)
        dst_batch, dst_local, m_dst = local_index(new_keys, self.num_entities, num_queries)
        size = (num_queries, m_dst, m_src)
        use = self.block_aggregation
        if use is None:
            use = num_queries * m_dst * m_src <= len(src_node) * self.dim
        if not use:
            return None
        return Blocks(
            src_batch[src_node], src_local[src_node], dst_local[dst], src_batch, src_local, dst_batch, dst_local, size
        )

    def propagate_states(self, anchors: torch.Tensor, query_rels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-layer states of the nodes reached from each query (anchor, relation, ?): node keys
        ``b * N + e`` [K] (sorted) and their states h_e^L [K, d]; relations >= R are inverse ones."""
        if self.edge_ptr.numel() != self.num_entities + 1:
            raise UnsupportedByGraphBackbone(
                "model.name=redgnn has no propagation graph yet: attach_graph(triples) "
                "must be called first (the Trainer and evaluate() do)"
            )
        n, b = self.num_entities, anchors.shape[0]
        keys = torch.arange(b, device=anchors.device) * n + anchors  # sorted and unique: one node per query
        hidden = torch.zeros(b, self.dim, device=anchors.device)
        for layer in self.gnn_layers:
            src_node, rel, dst_key = self._out_edges(keys)
            new_keys, dst = torch.unique(dst_key, sorted=True, return_inverse=True)
            query_attn = F.embedding(keys[src_node] // n, layer.query_term(query_rels))
            blocks = self._blocks(keys, new_keys, src_node, dst, b)
            out = self.dropout(layer(hidden, src_node, rel, query_attn, dst, len(new_keys), blocks))
            if self.gate is not None:
                # identity edges keep every reached node reached, so the old keys are a subset of the new ones
                previous = out.new_zeros(len(new_keys), self.dim)
                previous[torch.searchsorted(new_keys, keys)] = hidden
                out = self.gate(out, previous)
            keys, hidden = new_keys, out
        return keys, hidden

    def propagate(self, anchors: torch.Tensor, query_rels: torch.Tensor) -> torch.Tensor:
        """Scores [B, N] of every entity for queries (anchor, relation, ?); relations >= R are inverse ones."""
        keys, hidden = self.propagate_states(anchors, query_rels)
        b, n = anchors.shape[0], self.num_entities
        scores = hidden.new_zeros(b * n).index_put((keys,), self.readout(hidden).squeeze(-1))
        return scores.view(b, n)

    # --- the representation space of DANS-KGC's diffusion (README "Our reading": RED-GNN) -------
    def negative_space(self, pos: torch.Tensor, head_side: torch.Tensor) -> QuerySpace:
        """Each row's query propagated once (tail query from h, or head query from t with the inverse relation):
        candidates = every entity's final state h_e^L under that query [B, N, d] (0 where not reached, which is
        what an unreached entity scores with: w^T 0 = 0); target = the answer's state; query = the anchor's
        final state plus the last layer's embedding of the query relation, the message the anchor would send
        along r_q (RED-GNN's counterpart of TransE's h + r)."""
        head_side = head_side.to(pos.device)
        anchor = torch.where(head_side, pos[:, 2], pos[:, 0])
        rel = torch.where(head_side, pos[:, 1] + self.num_relations, pos[:, 1])
        target = torch.where(head_side, pos[:, 0], pos[:, 2])
        keys, hidden = self.propagate_states(anchor, rel)
        b, n = anchor.shape[0], self.num_entities
        states = hidden.new_zeros(b * n, self.dim).index_put((keys,), hidden).view(b, n, self.dim)
        rows = torch.arange(b, device=pos.device)
        query = states[rows, anchor] + self.gnn_layers[-1].relation(rel)
        return QuerySpace(query=query.detach(), target=states[rows, target].detach(), candidates=states)

    def score_tail_embeddings(self, h_idx: torch.Tensor, r_idx: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        """Score of query-conditioned candidate representations [B, K, d] -> [B, K]: the read-out ``w^T h``
        (the representation already carries its query, so h_idx and r_idx are not needed)."""
        return self.readout(t_emb).squeeze(-1)

    def score_head_embeddings(self, r_idx: torch.Tensor, t_idx: torch.Tensor, h_emb: torch.Tensor) -> torch.Tensor:
        return self.readout(h_emb).squeeze(-1)

    # --- the KGEModel scoring API ------------------------------------------------------------
    def score_all_tails(self, h_idx: torch.Tensor, r_idx: torch.Tensor) -> torch.Tensor:
        return self.propagate(h_idx, r_idx)

    def score_all_heads(self, r_idx: torch.Tensor, t_idx: torch.Tensor) -> torch.Tensor:
        return self.propagate(t_idx, r_idx + self.num_relations)

    def score_hrt(self, triples: torch.Tensor) -> torch.Tensor:
        """Tail-side scores ``S(h, r, t)`` of id triples [B, 3] -> [B] (one propagation per triple)."""
        flat = triples.reshape(-1, 3)
        scores = self.score_all_tails(flat[:, 0], flat[:, 1]).gather(1, flat[:, 2:3]).squeeze(1)
        return scores.reshape(triples.shape[:-1])

    def score_reciprocal(self, triples: torch.Tensor) -> torch.Tensor:
        """Head-side scores ``S(t, r^-1, h)`` of id triples [B, 3] -> [B], what head ranking compares."""
        flat = triples.reshape(-1, 3)
        scores = self.score_all_heads(flat[:, 1], flat[:, 2]).gather(1, flat[:, 0:1]).squeeze(1)
        return scores.reshape(triples.shape[:-1])

    def regularization(self, triples: torch.Tensor, kind: str, weight: float) -> torch.Tensor:
        if kind == "none" or weight == 0.0:
            return torch.zeros((), device=triples.device)
        raise UnsupportedByGraphBackbone(
            f"model.regularizer={kind} penalises embeddings, which model.name=redgnn does "
            "not have; use train.weight_decay (RED-GNN's lamb)"
        )

    def _unsupported(self, what: str) -> UnsupportedByGraphBackbone:
        return UnsupportedByGraphBackbone(
            f"model.name=redgnn scores by propagation and has no entity embeddings: "
            f"{what} is not defined for it (embedding regularisers and embedding-space "
            "DAM features need a KGE backbone: use dam.semantic_source=transe)"
        )

    # the base class's entity / relation tables: samplers, DAM and diagnostics that read them stop here
    @property
    def entity(self) -> nn.Embedding:  # type: ignore[override]
        raise self._unsupported("the entity embedding table")

    @property
    def relation(self) -> nn.Embedding:  # type: ignore[override]
        raise self._unsupported("the relation embedding table")

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        raise self._unsupported("tail_query")

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise self._unsupported("head_query")

    def similarity(self, q: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        raise self._unsupported("similarity")

    def score_corrupted(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Scores of negatives [B, N, 3] that each replace the head or the tail of positives [B, 3], read from the
        all-entity scores of each positive's tail query and inverse-relation head query (2B propagations)."""
        layout = self.corruption_layout(pos, neg)
        if layout is None:
            raise UnsupportedByGraphBackbone(
                "model.name=redgnn scores negatives that replace the head or the tail of "
                "a positive; these change the relation or both ends"
            )
        rows, candidates = layout
        scores = torch.cat([self.score_all_tails(pos[:, 0], pos[:, 1]), self.score_all_heads(pos[:, 1], pos[:, 2])])
        return scores[rows, candidates]

    def query_embedding(self, h_idx: torch.Tensor, r_idx: torch.Tensor, side: str = "tail") -> torch.Tensor:
        raise self._unsupported("query_embedding")

    def factors(self, triples: torch.Tensor) -> list[torch.Tensor]:
        raise self._unsupported("factors (embedding regularisation)")
