"""Filtered link-prediction evaluation with optimistic, pessimistic and realistic ranks.

For a test triple (h, r, t) the tail side ranks t among all entities by S(h, r, .), after
removing every *other* known true tail of (h, r) (the filtered setting, Bordes et al. 2013);
the head side does the same for h given (r, t). With ``c_gt`` = candidates scoring strictly
higher and ``c_ge`` = candidates scoring higher or equal (both excluding the answer):
optimistic = 1 + c_gt, pessimistic = 1 + c_ge, realistic = (optimistic + pessimistic) / 2
(expected rank under random tie breaking; Sun et al. 2020, PyKEEN's "realistic").
A model that scores every entity alike thus gets the middle rank, never rank 1.
Scores are computed in query chunks, so memory is O(batch x entities).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.models.base import KGEModel
from dans_kgc.utils import release_freed_memory

SIDES = ("tail", "head")
HITS = (1, 3, 10)


class FilterIndex:
    """Known true answers per query, as CSR arrays: tails per (h, r) and heads per (r, t)."""

    def __init__(self, true_triples: np.ndarray, num_entities: int, num_relations: int):
        self.num_entities = num_entities
        self.num_relations = num_relations
        triples = np.asarray(true_triples, dtype=np.int64).reshape(-1, 3)
        self._csr = {
            "tail": self._build(triples[:, 0] * num_relations + triples[:, 1], triples[:, 2]),
            "head": self._build(triples[:, 2] * num_relations + triples[:, 1], triples[:, 0]),
        }

    @staticmethod
    def _build(keys: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.lexsort((answers, keys))
        keys, answers = keys[order], answers[order]
        uniq, starts = np.unique(keys, return_index=True)
        ends = np.append(starts[1:], len(keys)) if len(starts) else starts  # no true triples: empty index
        return uniq, np.stack([starts, ends], axis=1), answers

    def query_keys(self, triples: np.ndarray, side: str) -> np.ndarray:
        anchor = triples[:, 0] if side == "tail" else triples[:, 2]
        return anchor * self.num_relations + triples[:, 1]

    def mask(self, triples: np.ndarray, side: str) -> torch.Tensor:
        """Boolean [B, E] mask of all known true answers of each query (the target included)."""
        uniq, bounds, answers = self._csr[side]
        keys = self.query_keys(triples, side)
        if len(uniq) == 0:
            return torch.zeros((len(keys), self.num_entities), dtype=torch.bool)
        pos = np.searchsorted(uniq, keys)
        pos_c = np.minimum(pos, len(uniq) - 1)
        found = uniq[pos_c] == keys
        starts = np.where(found, bounds[pos_c, 0], 0)
        lengths = np.where(found, bounds[pos_c, 1] - bounds[pos_c, 0], 0)
        rows = np.repeat(np.arange(len(keys)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cols = answers[np.repeat(starts, lengths) + offsets]
        m = torch.zeros((len(keys), self.num_entities), dtype=torch.bool)
        m[torch.from_numpy(rows), torch.from_numpy(cols)] = True
        return m


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor, filter_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimistic and pessimistic ranks of ``targets`` in each row of ``scores`` [B, E].

    ``filter_mask`` marks candidates to ignore (the other true answers); the target itself is
    always excluded from the competitor counts.
    """
    b = scores.shape[0]
    rows = torch.arange(b, device=scores.device)
    true = scores[rows, targets].unsqueeze(1)
    ignore = torch.zeros_like(scores, dtype=torch.bool) if filter_mask is None else filter_mask.clone()
    ignore[rows, targets] = True
    valid = ~ignore
    gt = ((scores > true) & valid).sum(1)
    ge = ((scores >= true) & valid).sum(1)
    # A NaN score for the answer must not count as rank 1: rank it last.
    nan = torch.isnan(true.squeeze(1))
    n_cand = valid.sum(1)
    gt = torch.where(nan, n_cand, gt)
    ge = torch.where(nan, n_cand, ge)
    return (gt + 1).double(), (ge + 1).double()


def anchor_competition(
    scores: torch.Tensor, targets: torch.Tensor, anchors: torch.Tensor, filter_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether each query's anchor entity is a competitor scoring above (``gt``) / at least (``ge``) the answer.

    The anchor is h for a tail query (h, r, ?) and t for a head query. It competes unless it is
    the answer or a filtered true answer. Subtracting these from the optimistic / pessimistic
    ranks gives the ranks with the anchor removed from the candidates.
    """
    rows = torch.arange(scores.shape[0], device=scores.device)
    true, anchor = scores[rows, targets], scores[rows, anchors]
    competes = anchors != targets
    if filter_mask is not None:
        competes &= ~filter_mask[rows, anchors]
    return (anchor > true) & competes, (anchor >= true) & competes


@dataclass
class RankResult:
    optimistic: dict[str, np.ndarray]
    pessimistic: dict[str, np.ndarray]
    seconds: float
    anchor_gt: dict[str, np.ndarray] | None = None  # per ranking: the anchor competes and scores above
    anchor_ge: dict[str, np.ndarray] | None = None  # ... scores at least as high

    def realistic(self, side: str) -> np.ndarray:
        return 0.5 * (self.optimistic[side] + self.pessimistic[side])

    @property
    def num_ranked(self) -> int:
        return int(sum(len(v) for v in self.optimistic.values()))


@torch.no_grad()
def rank_triples(
    model: KGEModel,
    triples: np.ndarray,
    filter_index: FilterIndex | None,
    batch_size: int = 256,
    sides: Iterable[str] = SIDES,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> RankResult:
    """Rank every triple on each requested side against all entities."""
    model.eval()
    start = time.perf_counter()
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    opt: dict[str, list[torch.Tensor]] = {s: [] for s in sides}
    pes: dict[str, list[torch.Tensor]] = {s: [] for s in sides}
    a_gt: dict[str, list[torch.Tensor]] = {s: [] for s in sides}
    a_ge: dict[str, list[torch.Tensor]] = {s: [] for s in sides}
    batches = range(0, len(triples), batch_size)
    for i in tqdm(batches, desc="ranking", disable=not progress, leave=False):
        chunk = triples[i : i + batch_size]
        t = torch.from_numpy(chunk).to(device)
        for side in sides:
            if side == "tail":
                scores, targets, anchors = model.score_all_tails(t[:, 0], t[:, 1]), t[:, 2], t[:, 0]
            else:
                scores, targets, anchors = model.score_all_heads(t[:, 1], t[:, 2]), t[:, 0], t[:, 2]
            mask = filter_index.mask(chunk, side).to(device) if filter_index is not None else None
            o, p = ranks_from_scores(scores.float(), targets, mask)
            gt, ge = anchor_competition(scores.float(), targets, anchors, mask)
            opt[side].append(o.cpu())
            pes[side].append(p.cpu())
            a_gt[side].append(gt.cpu())
            a_ge[side].append(ge.cpu())
        release_freed_memory()  # else RSS can grow by one batch's temporaries per batch
    cat = lambda d: {s: (torch.cat(v).numpy() if v else np.zeros(0)) for s, v in d.items()}  # noqa: E731
    return RankResult(cat(opt), cat(pes), time.perf_counter() - start, cat(a_gt), cat(a_ge))


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    if len(ranks) == 0:
        return {"mrr": float("nan"), **{f"hits@{k}": float("nan") for k in HITS}, "mean_rank": float("nan")}
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in HITS:
        out[f"hits@{k}"] = float(np.mean(ranks <= k))
    out["mean_rank"] = float(np.mean(ranks))
    return out


def summarize(result: RankResult) -> dict[str, Any]:
    """Realistic metrics over both sides (top level), per side, and the optimistic/pessimistic variants."""
    sides = list(result.optimistic)
    both = np.concatenate([result.realistic(s) for s in sides])
    out: dict[str, Any] = metrics_from_ranks(both)
    out["per_side"] = {s: metrics_from_ranks(result.realistic(s)) for s in sides}
    out["optimistic"] = metrics_from_ranks(np.concatenate([result.optimistic[s] for s in sides]))
    out["pessimistic"] = metrics_from_ranks(np.concatenate([result.pessimistic[s] for s in sides]))
    out["num_ranked"] = result.num_ranked
    out["tie_policy"] = "realistic (mean of optimistic and pessimistic rank)"
    out["eval_seconds"] = round(result.seconds, 4)
    return out


def anchor_diagnostic(
    result: RankResult, relations: np.ndarray | None = None, relation_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Share of rankings whose anchor entity outscores the answer, and the MRR with the anchor removed.

    A diagnostic of the backbone (translation models tend to score h itself high for (h, r, ?); rotation
    models do it on near-symmetric relations such as sibling ones), never a headline number: the standard
    filtered protocol keeps the anchor as a candidate. With ``relations`` (the ranked triples' relation ids,
    in ranking order on each side) also ``by_relation``: per relation, the rankings (both sides), the share
    whose anchor outscores the answer, the MRR and the MRR with the anchor removed.
    """
    if result.anchor_gt is None or result.anchor_ge is None or result.num_ranked == 0:
        return {}
    sides = list(result.optimistic)
    gt = np.concatenate([result.anchor_gt[s] for s in sides]).astype(float)
    ge = np.concatenate([result.anchor_ge[s] for s in sides]).astype(float)
    realistic = np.concatenate([result.realistic(s) for s in sides])
    without = realistic - 0.5 * (gt + ge)
    out: dict[str, Any] = {
        "anchor_outscores_answer": float(gt.mean()),
        "mrr_anchor_removed": float(np.mean(1.0 / without)),
        "note": "diagnostic only: the headline metrics keep the anchor among the candidates, as the "
        "standard filtered protocol does",
    }
    if relations is not None:
        rel = np.tile(np.asarray(relations, dtype=np.int64), len(sides))
        if len(rel) != len(gt):
            raise ValueError(f"{len(relations)} relation ids for {len(gt) // max(len(sides), 1)} ranked triples")
        by: dict[str, Any] = {}
        for r in np.unique(rel):
            sel = rel == r
            name = relation_names[r] if relation_names is not None else str(int(r))
            by[name] = {
                "rankings": int(sel.sum()),
                "anchor_outscores_answer": float(gt[sel].mean()),
                "mrr": float(np.mean(1.0 / realistic[sel])),
                "mrr_anchor_removed": float(np.mean(1.0 / without[sel])),
            }
        out["by_relation"] = by
    return out


def filter_splits(protocol: str, split: str) -> tuple[str, ...]:
    """Which splits' triples are filtered when ranking ``split`` under a protocol.

    redgnn: always train+valid+test (RED-GNN/AdaProp). kge: validation is filtered without
    test triples (no test leakage into model selection); test uses all splits.
    """
    if protocol == "kge" and split == "valid":
        return ("train", "valid")
    return ("train", "valid", "test")


def select_triples(kg: KnowledgeGraph, split: str, max_triples: int = 0, seed: int = 0) -> np.ndarray:
    triples = kg.split(split)
    if max_triples and len(triples) > max_triples:
        idx = np.sort(np.random.default_rng(seed).choice(len(triples), max_triples, replace=False))
        triples = triples[idx]
    return triples


def evaluate(
    model: KGEModel,
    kg: KnowledgeGraph,
    split: str,
    protocol: str,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    max_triples: int = 0,
    filter_index: FilterIndex | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], RankResult]:
    """Filtered evaluation of one split; returns (metrics, raw ranks)."""
    if filter_index is None:
        filter_index = FilterIndex(kg.all_true(filter_splits(protocol, split)), kg.num_entities, kg.num_relations)
    triples = select_triples(kg, split, max_triples)
    attach_graph = getattr(model, "attach_graph", None)  # duck-typed scorers (tests' score tables) have none
    if attach_graph is not None:
        attach_graph(torch.from_numpy(kg.train).to(device))  # a graph backbone propagates over the full training graph
    result = rank_triples(model, triples, filter_index, batch_size, device=device, progress=progress)
    metrics = summarize(result)
    metrics["anchor_diagnostic"] = anchor_diagnostic(result, triples[:, 1], kg.relations)
    metrics["protocol"] = protocol
    metrics["filtered_with"] = list(filter_splits(protocol, split))
    return metrics, result
