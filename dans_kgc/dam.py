"""Stage 1: the Difficulty Assessment Module (DAM), as docs/method.md reads it.

Each entity gets a feature vector (structural features of the training graph, semantic
features of the pretrained TransE embeddings), z-scored per column. An MLP maps it to
``zeta(e) = sigmoid(f(x_e))`` in (0, 1), fitted by MSE to the entity's *observed
difficulty*: the mean filtered rank percentile of e when e is the answer of a train triple
under the pretrained TransE. Features, not the proxy, decide zeta, so entities that never
answer a train triple still get a difficulty.

Outputs (``save_dam``): ``entities.csv`` (id, name, raw features, K-means cluster, observed
difficulty, zeta) and ``dam_report.json`` (held-out fit quality, provenance). Later stages
read them with ``load_zeta`` and ``load_clusters``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.stats import rankdata, spearmanr
from sklearn.cluster import KMeans
from torch import nn

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.evaluation import FilterIndex, rank_triples
from dans_kgc.models.base import KGEModel
from dans_kgc.provenance import provenance
from dans_kgc.stages import check_record, semantic_backbone, stage_record
from dans_kgc.utils import release_freed_memory, write_json, write_text

ENTITIES_CSV = "entities.csv"
REPORT_JSON = "dam_report.json"
STRUCTURAL = (
    "log_in_degree",
    "log_out_degree",
    "num_relations",
    "relation_entropy",
    "pagerank",
    "clustering",
    "mean_neighbour_degree",
)
SEMANTIC = ("embedding_norm", "knn_cosine", "centroid_distance")


# ----------------------------------------------------------------------------------------
# structural features (train split only)
# ----------------------------------------------------------------------------------------
def simple_undirected_adjacency(triples: np.ndarray, num_entities: int) -> sp.csr_matrix:
    """0/1 symmetric adjacency without self-loops: the graph the clustering coefficient is defined on."""
    h, t = triples[:, 0], triples[:, 2]
    keep = h != t
    rows, cols = np.concatenate([h[keep], t[keep]]), np.concatenate([t[keep], h[keep]])
    a = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_entities, num_entities))
    a.data[:] = 1.0  # duplicates (several relations between one pair) were summed
    return a


def triangle_counts(a: sp.csr_matrix, max_pairs: int = 1 << 24) -> np.ndarray:
    """Exact number of triangles through each node of a simple undirected graph (0/1 symmetric, no self-loops).

    ``diag(A^3) / 2`` through the sparse product ``A @ A`` holds, per node, every 2-hop pair: a hub of degree d
    alone contributes d^2 entries (a 59k-edge hub: 3.5e9), which is what made this feature quadratic in memory.
    Here each edge is oriented from the endpoint of lower (degree, id) rank to the higher, so every node has at
    most sqrt(2E) out-neighbours; each triangle u < v < w (by rank) is found exactly once, as the out-neighbour
    w of u that is also an out-neighbour of v, for the oriented edge u -> v. Candidates (u -> v, w in out(u))
    number sum_u outdeg(u)^2 <= E sqrt(2E) in all and are checked in blocks of at most ``max_pairs`` (plus one
    edge's out-list), so memory is O(E + max_pairs) whatever the degrees.
    """
    n = a.shape[0]
    deg = np.diff(a.indptr)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), deg))] = np.arange(n)
    coo = a.tocoo()
    up = rank[coo.row] < rank[coo.col]
    f = sp.csr_matrix((np.ones(int(up.sum()), dtype=np.int8), (coo.row[up], coo.col[up])), shape=(n, n))
    f.sort_indices()
    out_deg = np.diff(f.indptr).astype(np.int64)
    src = np.repeat(np.arange(n, dtype=np.int64), out_deg)  # oriented edges u -> v, sorted by (u, v)
    dst = f.indices.astype(np.int64)
    edge_keys = src * n + dst  # sorted: membership by binary search
    work = np.cumsum(out_deg[src])  # candidates w for the edges up to each one
    counts = np.zeros(n, dtype=np.int64)
    start = 0
    while start < len(src):
        stop = max(int(np.searchsorted(work, (work[start - 1] if start else 0) + max_pairs, side="right")), start + 1)
        u, v = src[start:stop], dst[start:stop]
        per_edge = out_deg[u]
        offsets = np.repeat(f.indptr[u] - np.cumsum(per_edge) + per_edge, per_edge)
        w = f.indices[offsets + np.arange(int(per_edge.sum()))].astype(np.int64)
        vv = np.repeat(v, per_edge)
        keys = vv * n + w
        pos = np.minimum(np.searchsorted(edge_keys, keys), len(edge_keys) - 1)
        hit = edge_keys[pos] == keys
        uu = np.repeat(u, per_edge)
        for nodes in (uu[hit], vv[hit], w[hit]):
            counts += np.bincount(nodes, minlength=n)
        start = stop
    return counts.astype(float)


def pagerank(
    triples: np.ndarray, num_entities: int, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 1000
) -> np.ndarray:
    """PageRank of the directed graph h -> t, edges weighted by their number of triples.

    Power iteration; dangling entities spread their mass uniformly (networkx's convention),
    so the result sums to 1.
    """
    n = num_entities
    w = sp.csr_matrix((np.ones(len(triples)), (triples[:, 0], triples[:, 2])), shape=(n, n))
    out = np.asarray(w.sum(1)).ravel()
    dangling = out == 0
    inv = np.divide(1.0, out, out=np.zeros(n), where=~dangling)
    transition_t = (sp.diags(inv) @ w).T.tocsr()
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * (transition_t @ x + x[dangling].sum() / n) + (1.0 - damping) / n
        converged = np.abs(new - x).sum() < n * tol
        x = new
        if converged:
            break
    return x / x.sum()


def structural_features(kg: KnowledgeGraph, damping: float = 0.85) -> pd.DataFrame:
    """The seven structural features of every entity, computed from ``kg.train`` only."""
    n, tr = kg.num_entities, kg.train
    in_deg = np.bincount(tr[:, 2], minlength=n).astype(float)
    out_deg = np.bincount(tr[:, 0], minlength=n).astype(float)

    # Relation profile of each entity's incident edges (both directions; a self-loop counts twice).
    ent = np.concatenate([tr[:, 0], tr[:, 2]])
    rel = np.concatenate([tr[:, 1], tr[:, 1]])
    counts = sp.csr_matrix((np.ones(len(ent)), (ent, rel)), shape=(n, kg.num_relations))
    counts.sum_duplicates()
    num_rel = np.diff(counts.indptr).astype(float)
    totals = np.asarray(counts.sum(1)).ravel()
    p = counts.data / np.repeat(totals, np.diff(counts.indptr))
    plogp = sp.csr_matrix((-p * np.log(p), counts.indices, counts.indptr), shape=counts.shape)
    entropy = np.asarray(plogp.sum(1)).ravel()

    a = simple_undirected_adjacency(tr, n)
    deg = np.asarray(a.sum(1)).ravel()
    triangles = triangle_counts(a)
    pairs = deg * (deg - 1) / 2.0
    clustering = np.divide(triangles, pairs, out=np.zeros(n), where=pairs > 0)
    mean_nb_deg = np.divide(a @ deg, deg, out=np.zeros(n), where=deg > 0)

    return pd.DataFrame(
        {
            "log_in_degree": np.log1p(in_deg),
            "log_out_degree": np.log1p(out_deg),
            "num_relations": num_rel,
            "relation_entropy": entropy,
            "pagerank": pagerank(tr, n, damping),
            "clustering": clustering,
            "mean_neighbour_degree": mean_nb_deg,
        }
    )


# ----------------------------------------------------------------------------------------
# semantic features (pretrained embeddings)
# ----------------------------------------------------------------------------------------
def knn_cosine(emb: np.ndarray, k: int, device: torch.device | str = "cpu", chunk: int = 1024) -> np.ndarray:
    """Mean cosine similarity of each entity to its k nearest other entities (chunked: O(chunk x N) memory)."""
    n = len(emb)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros(n)
    x = torch.nn.functional.normalize(torch.as_tensor(emb, dtype=torch.float32, device=device), dim=1)
    out = []
    for i in range(0, n, chunk):
        sim = x[i : i + chunk] @ x.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        sim[rows, rows + i] = -float("inf")  # not its own neighbour
        out.append(sim.topk(k, dim=1).values.mean(1).cpu())
        del sim
        release_freed_memory()  # else each chunk's [chunk, N] block can stay resident (glibc)
    return torch.cat(out).double().numpy()


def kmeans_clusters(emb: np.ndarray, num_clusters: int, seed: int, n_init: int) -> tuple[np.ndarray, np.ndarray]:
    """K-means "types" of the pretrained embeddings -> (cluster id per entity, centroids)."""
    k = min(num_clusters, len(emb))
    km = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(np.asarray(emb, dtype=np.float64))
    return km.labels_.astype(np.int64), km.cluster_centers_


def semantic_features(
    emb: np.ndarray, clusters: np.ndarray, centroids: np.ndarray, k: int, device: torch.device | str = "cpu"
) -> pd.DataFrame:
    """Embedding norm, mean cosine to the k nearest entities, distance to the K-means centroid."""
    emb = np.asarray(emb, dtype=np.float64)
    return pd.DataFrame(
        {
            "embedding_norm": np.linalg.norm(emb, axis=1),
            "knn_cosine": knn_cosine(emb, k, device),
            "centroid_distance": np.linalg.norm(emb - centroids[clusters], axis=1),
        }
    )


# ----------------------------------------------------------------------------------------
# the training target: observed difficulty under the pretrained TransE
# ----------------------------------------------------------------------------------------
def observed_difficulty(
    model: KGEModel,
    kg: KnowledgeGraph,
    max_triples: int = 0,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, int]:
    """Mean filtered realistic rank percentile of each entity as the answer of train triples.

    Both sides: e as the tail of (h, r, ?) and as the head of (?, r, t); filtered with every
    known triple (train + valid + test). ``max_triples`` > 0 ranks a seeded random subset of
    the train triples to bound the cost. Returns (difficulty per entity, NaN where e never
    answers a ranked triple; number of triples ranked).
    """
    triples = kg.train
    if max_triples and len(triples) > max_triples:
        idx = np.sort(np.random.default_rng(seed).choice(len(triples), max_triples, replace=False))
        triples = triples[idx]
    filt = FilterIndex(kg.all_true(), kg.num_entities, kg.num_relations)
    ranks = rank_triples(model.to(device), triples, filt, batch_size, device=device)
    denom = max(kg.num_entities - 1, 1)
    total = np.zeros(kg.num_entities)
    count = np.zeros(kg.num_entities)
    for side, col in (("tail", 2), ("head", 0)):
        np.add.at(total, triples[:, col], (ranks.realistic(side) - 1.0) / denom)
        np.add.at(count, triples[:, col], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), len(triples)


# ----------------------------------------------------------------------------------------
# the MLP
# ----------------------------------------------------------------------------------------
def build_mlp(in_dim: int, hidden: list[int]) -> nn.Sequential:
    """f: features -> one logit (SiLU hidden layers); zeta = sigmoid(f(x))."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.SiLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


def standardize(features: pd.DataFrame) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Z-score per column. A column constant up to float rounding (e.g. the norm of unit-normalised
    TransE rows, whose spread is float32 noise) becomes 0 instead of amplified noise."""
    x = features.to_numpy(dtype=np.float64)
    mean, std = x.mean(0), x.std(0)
    constant = std <= 1e-6 * np.abs(mean)
    z = np.where(constant, 0.0, (x - mean) / np.where(constant, 1.0, std))
    stats = {
        c: {"mean": float(m), "std": float(s), "constant": bool(k)}
        for c, m, s, k in zip(features.columns, mean, std, constant, strict=True)
    }
    return z, stats


def _fit_mlp(
    x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, hold_idx: np.ndarray, dam: Mapping[str, Any], seed: int
) -> tuple[nn.Sequential, dict[str, Any]]:
    """Full-batch Adam on the MSE of sigmoid(f(x)); keeps the weights of the best held-out epoch."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mlp = build_mlp(x.shape[1], list(dam["hidden"]))
    # Start at the mean target: observed difficulties can sit far from 0.5 (UMLS: ~0.002), and
    # Adam would spend hundreds of epochs moving the output bias before learning the ranking.
    mean_y = float(np.clip(np.mean(y[train_idx]), 1e-4, 1.0 - 1e-4))
    with torch.no_grad():
        cast(nn.Linear, mlp[-1]).bias.fill_(math.log(mean_y / (1.0 - mean_y)))  # nn.Sequential items are typed Module
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(np.nan_to_num(y), dtype=torch.float32)
    tr, ho = torch.as_tensor(train_idx), torch.as_tensor(hold_idx)
    opt = torch.optim.Adam(mlp.parameters(), lr=dam["lr"])

    def mse(idx: torch.Tensor) -> torch.Tensor:
        return ((torch.sigmoid(mlp(xt[idx]).squeeze(1)) - yt[idx]) ** 2).mean()

    snapshot = lambda: {k: v.detach().clone() for k, v in mlp.state_dict().items()}  # noqa: E731
    best: dict[str, Any] = {"mse": float("inf"), "epoch": 0, "state": snapshot()}
    epochs_run = 0
    for epoch in range(1, dam["epochs"] + 1):
        mlp.train()
        loss = mse(tr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        epochs_run = epoch
        mlp.eval()
        with torch.no_grad():
            held = float(mse(ho))
        if held < best["mse"]:
            best = {"mse": held, "epoch": epoch, "state": snapshot()}
        elif epoch - best["epoch"] >= dam["patience"]:
            break
    mlp.load_state_dict(best["state"])
    mlp.eval()
    return mlp, {"best_epoch": best["epoch"], "epochs_run": epochs_run, "holdout_mse": best["mse"]}


# ----------------------------------------------------------------------------------------
# the public entry points
# ----------------------------------------------------------------------------------------
@dataclass
class DamResult:
    """Everything Stage 1 produces: per-entity table (features, cluster, target, zeta) and the report."""

    table: pd.DataFrame
    features: list[str]
    report: dict[str, Any]

    @property
    def zeta(self) -> np.ndarray:
        return self.table["zeta"].to_numpy()

    @property
    def clusters(self) -> np.ndarray:
        return self.table["cluster"].to_numpy()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def fit_dam(
    kg: KnowledgeGraph,
    entity_embeddings: np.ndarray,
    cfg: Mapping[str, Any],
    *,
    target: np.ndarray | None = None,
    model: KGEModel | None = None,
    device: torch.device | str = "cpu",
) -> DamResult:
    """Fit DAM. The target (observed difficulty, NaN = none) is given, or computed from ``model``.

    ``entity_embeddings`` [num_entities, w] are the pretrained TransE rows (semantic features,
    K-means types). Deterministic for a given ``cfg['seed']``.
    """
    start = time.perf_counter()
    dam, seed = cfg["dam"], int(cfg["seed"])
    emb = np.asarray(entity_embeddings, dtype=np.float64)
    if emb.shape[0] != kg.num_entities:
        raise ValueError(f"entity_embeddings has {emb.shape[0]} rows but {kg.name} has {kg.num_entities} entities")
    unknown = [f for f in dam["features"] if f not in STRUCTURAL + SEMANTIC]
    if unknown or not dam["features"]:
        raise ValueError(f"dam.features: unknown or empty {unknown}; choose from {', '.join(STRUCTURAL + SEMANTIC)}")
    if not 0.0 < dam["holdout"] < 1.0:
        raise ValueError(f"dam.holdout must be in (0, 1), got {dam['holdout']}")
    n_triples = None
    if target is None:
        if model is None:
            raise ValueError("fit_dam needs the observed-difficulty target or the pretrained model to compute it")
        target, n_triples = observed_difficulty(
            model, kg, dam["max_target_triples"], seed, cfg["train"]["eval_batch_size"], device
        )
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (kg.num_entities,):
        raise ValueError(f"target must have shape ({kg.num_entities},), got {target.shape}")

    clusters, centroids = kmeans_clusters(emb, dam["num_clusters"], seed, dam["kmeans_n_init"])
    feats = pd.concat(
        [
            structural_features(kg, dam["pagerank_damping"]),
            semantic_features(emb, clusters, centroids, dam["knn"], device),
        ],
        axis=1,
    )
    used = list(dam["features"])
    x, norm = standardize(feats[used])

    has = np.flatnonzero(~np.isnan(target))
    if len(has) < 2:
        raise ValueError(f"only {len(has)} entities have an observed difficulty; DAM needs at least 2")
    observed = target
    if dam["target_scale"] == "quantile":
        # A pretrained TransE ranks its own training answers near the top (UMLS: mean percentile
        # 0.002), so raw targets would squeeze zeta near 0 and every beta_max to the same value.
        # The rank quantile keeps the order, spans (0, 1) and puts the median entity at 0.5.
        target = np.full_like(observed, np.nan)
        target[has] = (rankdata(observed[has]) - 0.5) / len(has)
    perm = np.random.default_rng(seed).permutation(has)
    n_hold = min(max(1, int(round(dam["holdout"] * len(has)))), len(has) - 1)
    hold_idx, train_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    mlp, fit = _fit_mlp(x, target, train_idx, hold_idx, dam, seed)
    with torch.no_grad():
        zeta = torch.sigmoid(mlp(torch.as_tensor(x, dtype=torch.float32)).squeeze(1)).double().numpy()

    table = pd.DataFrame({"entity_id": np.arange(kg.num_entities), "entity": kg.entities})
    table = pd.concat([table, feats], axis=1)
    table["cluster"] = clusters
    table["observed_difficulty"] = observed
    table["difficulty_target"] = target
    table["zeta"] = zeta
    report = {
        "dataset": kg.name,
        "split_variant": kg.variant,
        "holdout_spearman": _spearman(zeta[hold_idx], target[hold_idx]),
        "holdout_mse": fit["holdout_mse"],
        "train_spearman": _spearman(zeta[train_idx], target[train_idx]),
        "train_mse": float(np.mean((zeta[train_idx] - target[train_idx]) ** 2)),
        "n_train": len(train_idx),
        "n_holdout": len(hold_idx),
        "n_without_target": int(kg.num_entities - len(has)),
        "target_triples_ranked": n_triples,
        "target_scale": dam["target_scale"],
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
        "features": used,
        "feature_standardisation": norm,
        "constant_features": [c for c in used if norm[c]["constant"]],
        "num_clusters": int(len(centroids)),
        "zeta": {"min": float(zeta.min()), "mean": float(zeta.mean()), "max": float(zeta.max())},
        "provenance": provenance(cfg, torch.device(device), time.perf_counter() - start),
    }
    return DamResult(table, used, report)


def _source_matches(record: Mapping[str, Any] | None, source: str) -> bool:
    """Whether a pretraining's stage record says it was made as ``source`` (records of older versions,
    which lack the field, and the backbone/transe pair on a TransE backbone count as matching)."""
    made = (record or {}).get("source")
    same_full = {made, source} <= {"transe", "backbone"}
    return made is None or made == source or same_full


def _load_source(
    kg: KnowledgeGraph, folder: str | Path, cfg: Mapping[str, Any], source: str, role: str, device: torch.device | str
) -> KGEModel:
    from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, stage_record_of
    from dans_kgc.stages import StageMismatchError, pretrained_backbone

    path = Path(folder) / BEST_MODEL
    record = stage_record_of(folder)
    what = f"DAM's {role} (dam.{role}_source: {source})"
    check_record(record, str(path), kg=kg, backbone=pretrained_backbone(cfg, source), what=what)
    if not _source_matches(record, source):
        raise StageMismatchError(
            f"{path} is the '{(record or {}).get('source')}' pretraining, but {what} needs the "
            f"'{source}' one (dans-kgc pretrain --source {source})"
        )
    return load_trained_model(path, device)


def fit_dam_from_run(
    kg: KnowledgeGraph,
    pretrained_dir: str | Path,
    cfg: Mapping[str, Any],
    device: torch.device | str = "cpu",
    target_dir: str | Path | None = None,
) -> DamResult:
    """Fit DAM on Stage-0 run folders: ``pretrained_dir``'s ``model_best.pt`` (the ``dam.semantic_source``
    pretraining) gives the embeddings, and the observed-difficulty target unless ``dam.target_source``
    names another pretraining, given as ``target_dir``. Each folder's stage record is checked.
    """
    from dans_kgc.checkpoints import BEST_MODEL
    from dans_kgc.stages import target_source

    semantic_src, target_src = str(cfg["dam"]["semantic_source"]), target_source(cfg)
    separate = target_src != semantic_src
    if separate and target_dir is None:
        raise ValueError(
            f"dam.target_source = {cfg['dam']['target_source']} is not the semantic source "
            f"({semantic_src}): give that pretraining's folder "
            "(dans-kgc dam fit --target-pretrained DIR)"
        )
    if not separate and target_dir is not None:
        raise ValueError(
            f"--target-pretrained is given but dam.target_source = {cfg['dam']['target_source']} is the "
            "semantic source (its own model gives the target); set dam.target_source or drop "
            "--target-pretrained"
        )
    model = _load_source(kg, pretrained_dir, cfg, semantic_src, "semantic", device)
    # separate is target_dir given (both checked above)
    target_model = model if target_dir is None else _load_source(kg, target_dir, cfg, target_src, "target", device)
    emb = model.entity.weight.detach().cpu().numpy()
    result = fit_dam(kg, emb, cfg, model=target_model, device=device)
    result.report["provenance"]["pretrained"] = str(Path(pretrained_dir) / BEST_MODEL)
    result.report["provenance"]["target_pretrained"] = str(Path(target_dir or pretrained_dir) / BEST_MODEL)
    result.report["semantic_source"], result.report["target_source"] = semantic_src, target_src
    result.report["stage_record"] = stage_record(
        "dam", cfg, kg, semantic_backbone(cfg), semantic_source=semantic_src, target_source=target_src
    )
    return result


def check_dam(dam_dir: str | Path, kg: KnowledgeGraph, cfg: Mapping[str, Any], what: str) -> None:
    """Stop unless the DAM output in ``dam_dir`` was fitted on ``kg`` from this config's semantic source."""
    import json

    path = Path(dam_dir) / REPORT_JSON
    if not path.exists():
        raise FileNotFoundError(f"{path}: no DAM output here; run 'dans-kgc dam fit' first")
    record = json.loads(path.read_text()).get("stage_record")
    check_record(record, str(path), kg=kg, backbone=semantic_backbone(cfg), what=what)


def save_dam(result: DamResult, out_dir: str | Path) -> None:
    """Write ``entities.csv`` and ``dam_report.json`` atomically."""
    out = Path(out_dir)
    write_text(out / ENTITIES_CSV, result.table.to_csv(index=False))
    write_json(out / REPORT_JSON, result.report)


def _read_table(dam_dir: str | Path, column: str, num_entities: int | None) -> np.ndarray:
    path = Path(dam_dir) / ENTITIES_CSV
    if not path.exists():
        raise FileNotFoundError(f"{path}: no DAM output here; run 'dans-kgc dam fit' first")
    table = pd.read_csv(path, usecols=["entity_id", column])
    ids = table["entity_id"].to_numpy()
    if not np.array_equal(ids, np.arange(len(ids))):
        raise ValueError(f"{path}: entity_id must be 0..n-1 in order")
    if num_entities is not None and len(ids) != num_entities:
        raise ValueError(f"{path}: {len(ids)} entities, but the knowledge graph has {num_entities}")
    return table[column].to_numpy()


def load_zeta(dam_dir: str | Path, num_entities: int | None = None) -> np.ndarray:
    """zeta per entity (float64, index = entity id) from a DAM output folder."""
    return _read_table(dam_dir, "zeta", num_entities).astype(np.float64)


def load_clusters(dam_dir: str | Path, num_entities: int | None = None) -> np.ndarray:
    """K-means type (cluster id, int64) per entity from a DAM output folder."""
    return _read_table(dam_dir, "cluster", num_entities).astype(np.int64)
