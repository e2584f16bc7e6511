"""How good are the negatives? Denoiser quality, band hardness and false negatives across samplers.

``dans-kgc diagnose`` (a training run, or a diffusion warm start on its pretrained backbone) and
the per-validation trace columns ``band{k}_active`` / ``band{k}_outscore`` / ``band{k}_quantile``
of a diffusion run (``Trainer.fit``, config ``diagnostics.triples``) both measure here:

* **denoiser quality**: noise-prediction MSE per diffusion step s = 1..T on both sides of a
  seeded sample of train triples, next to the MSE of predicting zero (E||eps||^2 per coordinate,
  on the same noise). A ratio near 1 means the denoiser learned nothing at that step.
* **hardness per band** (and of uniform random entities on the same rows): share *active*
  (inside the band margin, ``S(neg) > S(pos) - margin_k``: it gives L_dans a gradient),
  P(negative outscores the true answer), *entity quantile* (share of all real entities scoring
  below the negative on its query: 0.5 = a random entity, 1 = above every entity), the filtered
  rank of the nearest entity that is no known answer (train+valid+test, like evaluation), and
  the Euclidean distance of the negative to the query and to the true target, next to the
  distance from the target to its 1st and 10th nearest real entity.
* **false negatives**: the share of each sampler's negatives that are known true triples, by
  the earliest split holding them (train, then valid, then test). Diffusion negatives are
  snapped to their nearest entity against the *train* filter only; filtering valid/test too
  would hide those false negatives by construction (and the train column is 0 by construction).

Every random draw comes from a dedicated ``torch.Generator`` seeded from the diagnostics seed
(``diagnostics_generator``), never from a sampler's training generator, so running a
diagnostic inside training leaves the run (and its exact resume) unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from dans_kgc.band_probe import (
    STREAM_BANDS,
    STREAM_DENOISER,
    STREAM_SAMPLERS,
    STREAM_TRIPLES,
    band_hardness,
    diagnostics_generator,
    eval_mode,
    row_chunks,
    sample_triples,
    scored_bands,
)
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diffusion import q_sample, snap_to_entities
from dans_kgc.evaluation import FilterIndex, ranks_from_scores
from dans_kgc.models.base import KGEModel
from dans_kgc.sampling import build_sampler
from dans_kgc.sampling.dans import DiffusionSampler

KIND = "dans_kgc_diagnostics"
SAMPLER_ORDER = ("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans")
DIFFUSION_SAMPLERS = ("dhns", "dans")
KNN = (1, 10)
UNIFORM_NEGATIVES = 16  # uniform reference negatives per row
SPLIT_NAMES = ("train", "valid", "test")


# ----------------------------------------------------------------------------------------
# denoiser quality
# ----------------------------------------------------------------------------------------
@torch.no_grad()
def denoiser_quality(ans: Any, model: KGEModel, pos: torch.Tensor, generator: torch.Generator) -> dict[str, Any]:
    """Noise-prediction MSE of ``ans`` (a ``ConditionalDiffusion``) per step s = 1..T, both sides of ``pos``.

    Next to it the uninformative baseline, predicting zero: E||eps||^2 per coordinate on the same
    noise (about 1). ``ratio`` = MSE / baseline; a denoiser that learned nothing sits near 1.
    A model predicting x0 (``diffusion.prediction: x0``) is scored through the noise its prediction
    implies (``ans.predict``); ``x0_mse`` is the error of the implied clean embedding (normalised
    space) next to ``x0_baseline`` = E||x0||^2 per coordinate (predicting zero).
    """
    dev = model.device
    pos = pos.to(dev)
    both = torch.cat([pos, pos])
    head = torch.cat([torch.zeros(len(pos), dtype=torch.bool), torch.ones(len(pos), dtype=torch.bool)]).to(dev)
    target = torch.where(head, both[:, 0], both[:, 2])
    with eval_mode(model):
        space = model.negative_space(both, head)
    ans.ensure_scale(space.scale_reference)
    scale = ans.data_scale
    x0 = space.target / scale
    cond = ans.condition(target, space.query, head)
    abars = ans.entity_schedule(target)["alpha_bars"]  # [2B, T]
    steps, mse, base, x0_mse = [], [], [], []
    for s in range(1, int(ans.steps) + 1):
        noise = torch.randn(x0.shape, generator=generator).to(dev)
        abar = abars[:, s - 1]
        xs = q_sample(x0, abar, noise)
        step = torch.full((len(target),), s, device=dev, dtype=torch.long)
        eps_hat, x0_hat = ans.predict(xs, step, cond, abar)  # both, whatever the parameterisation
        steps.append(s)
        mse.append(float(((eps_hat - noise) ** 2).mean()))
        base.append(float((noise**2).mean()))
        x0_mse.append(float(((x0_hat - x0) ** 2).mean()))
    ratio = [m / b if b > 0 else math.nan for m, b in zip(mse, base, strict=True)]
    return {
        "steps": steps,
        "mse": mse,
        "baseline": base,
        "ratio": ratio,
        "prediction": ans.prediction,
        "x0_mse": x0_mse,
        "x0_baseline": float((x0**2).mean()),
        "rows": int(len(target)),
        "mean_mse": float(np.mean(mse)),
        "mean_baseline": float(np.mean(base)),
        "mean_ratio": float(np.mean(ratio)),
        "alpha_bar_T": {"min": float(abars[:, -1].min()), "max": float(abars[:, -1].max())},
    }


# ----------------------------------------------------------------------------------------
# hardness
# ----------------------------------------------------------------------------------------
@torch.no_grad()
def snap(
    neg: torch.Tensor,
    pos: torch.Tensor,
    head_side: torch.Tensor,
    entity_weight: torch.Tensor,
    filter_index: FilterIndex,
) -> torch.Tensor:
    """``snap_to_entities`` in row chunks (bounded memory on large graphs): ids [B, K], -1 = none."""
    ids = torch.full(neg.shape[:2], -1, dtype=torch.long, device=neg.device)
    for sl in row_chunks(len(pos)):
        table = entity_weight[sl] if entity_weight.dim() == 3 else entity_weight  # per-query tables: the chunk's
        ids[sl] = snap_to_entities(neg[sl], pos[sl], head_side[sl], table, filter_index)
    return ids


def answer_mask(
    pos: torch.Tensor, head_side: torch.Tensor, filter_index: FilterIndex, like: torch.Tensor
) -> torch.Tensor:
    """Boolean mask shaped ``like`` [B, N]: every known true answer of each row's query (its target included)."""
    pos_np = pos.cpu().numpy()
    mask = torch.zeros_like(like, dtype=torch.bool)
    hs = head_side.cpu().numpy().astype(bool)
    for side, rows in (("head", np.nonzero(hs)[0]), ("tail", np.nonzero(~hs)[0])):
        if len(rows):
            mask[torch.from_numpy(rows).to(mask.device)] = filter_index.mask(pos_np[rows], side).to(mask.device)
    return mask


# k-th hardest non-answer entities whose entity quantile the band table gives as its yardstick
NON_ANSWER_KS = (1, 10)


@torch.no_grad()
def quantile_references(
    all_scores: torch.Tensor, pos_scores: torch.Tensor, answers: torch.Tensor, ks: Sequence[int] = NON_ANSWER_KS
) -> dict[str, float | None]:
    """The entity quantile (share of the N entities scoring strictly below, as for a band) of the true answer
    and of each row's k-th highest-scoring entity that is no known answer (``answers`` [B, N], the evaluation
    filter): how hard the hardest real negatives are, the yardstick for the hardest band. ``None`` for a k
    larger than some row's number of non-answers."""
    refs = band_hardness(pos_scores, pos_scores.unsqueeze(1), all_scores, 0.0)
    out: dict[str, float | None] = {"quantile_answer": float(refs["quantile"][0])}
    kmax = min(max(ks), int((~answers).sum(1).min()) if len(answers) else 0)
    if kmax > 0:
        top = all_scores.float().masked_fill(answers, -math.inf).topk(kmax, dim=1).values  # [B, kmax]
        hard = band_hardness(pos_scores, top, all_scores, 0.0)["quantile"]
    for k in ks:
        out[f"quantile_non_answer{k}"] = float(hard[k - 1]) if k <= kmax else None
    return out


@torch.no_grad()
def filtered_ranks(all_scores: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Realistic filtered rank of entity ``ids`` [B, K] on each row's query, as evaluation ranks an
    answer (the known true answers of the query, ``mask`` [B, N] from ``answer_mask``, are no competitors);
    NaN where ``ids`` is -1."""
    out = torch.full(ids.shape, math.nan, dtype=torch.float64, device=ids.device)
    for k in range(ids.shape[1]):
        col = ids[:, k]
        o, p = ranks_from_scores(all_scores, col.clamp_min(0), mask)
        out[:, k] = torch.where(col >= 0, 0.5 * (o + p), torch.full_like(o, math.nan))
    return out


def knn_distances(
    entity_weight: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = KNN
) -> dict[str, float | None]:
    """Mean Euclidean distance from each target entity to its k-th nearest *other* entity, for each k.

    ``entity_weight``: the entity table [N, w], or one candidate table per row [B, N, w] (a query-conditioned
    backbone: distances among the candidates of the row's own query)."""
    ent = entity_weight.detach().float()
    kmax = min(max(ks), ent.shape[-2] - 1)
    acc: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for sl in row_chunks(len(target)):
        if ent.dim() == 3:
            rows = torch.arange(sl.start, min(sl.stop, len(target)), device=ent.device)
            d = torch.cdist(ent[rows, target[sl]].unsqueeze(1), ent[rows]).squeeze(1)
        else:
            d = torch.cdist(ent[target[sl]], ent)
        d[torch.arange(d.shape[0], device=d.device), target[sl]] = math.inf
        near = d.topk(kmax, dim=1, largest=False).values if kmax > 0 else d[:, :0]
        for k in ks:
            if k <= kmax:
                acc[k].append(near[:, k - 1])
    return {f"knn{k}": (float(torch.cat(v).mean()) if v else None) for k, v in acc.items()}


def _distances(neg: torch.Tensor, query: torch.Tensor, target_emb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean Euclidean distance of each column of ``neg`` [B, K, w] to the row's query and true target -> [K]."""
    neg = neg.float()
    return {
        "dist_query": (neg - query.float().unsqueeze(1)).norm(dim=-1).mean(0),
        "dist_target": (neg - target_emb.float().unsqueeze(1)).norm(dim=-1).mean(0),
    }


def _row(
    hard: Mapping[str, torch.Tensor], dist: Mapping[str, torch.Tensor], ranks: torch.Tensor, k: int | None, **extra: Any
) -> dict[str, Any]:
    """One table row: column ``k`` of the per-column measures, or their mean over columns (``k`` None)."""
    pick = (lambda t: float(t[k])) if k is not None else (lambda t: float(t.mean()))
    r = ranks[:, k] if k is not None else ranks.reshape(-1)
    finite = r[torch.isfinite(r)]
    return {
        **extra,
        "active": pick(hard["active"]),
        "outscore": pick(hard["outscore"]),
        "quantile": pick(hard["quantile"]),
        "gap": pick(hard["gap"]),
        "snap_rank_mean": float(finite.mean()) if finite.numel() else None,
        "snap_rank_median": float(finite.median()) if finite.numel() else None,
        "snap_none": int((~torch.isfinite(r)).sum()),
        "dist_query": pick(dist["dist_query"]),
        "dist_target": pick(dist["dist_target"]),
    }


@torch.no_grad()
def training_hardness(
    sampler: Any,
    model: KGEModel,
    pos: torch.Tensor,
    head_side: torch.Tensor,
    generator: torch.Generator,
    filter_index: FilterIndex | None = None,
) -> dict[str, float]:
    """Trace columns ``band{k}_active``, ``band{k}_outscore``, ``band{k}_quantile`` of a diffusion sampler.

    The negatives are generated as training generates them (the sampler's own negative form), but
    from ``generator``; the model is scored in eval mode and left as it was. With ``filter_index`` (the
    known answers) also the yardsticks ``answer_quantile`` and ``hardest_non_answer_quantile`` on the same rows.
    """
    dev = model.device
    pos = pos.to(dev)
    scored = scored_bands(sampler, model, pos, head_side.to(dev), generator)
    hard = scored["hard"]
    out: dict[str, float] = {}
    for k in range(scored["neg_scores"].shape[1]):
        for m in ("active", "outscore", "quantile"):
            out[f"band{k + 1}_{m}"] = round(float(hard[m][k]), 6)
    if filter_index is not None:
        answers = answer_mask(pos, scored["gen"]["head_side"], filter_index, scored["all_scores"])
        refs = quantile_references(scored["all_scores"], scored["pos_scores"], answers, ks=(1,))
        out["answer_quantile"] = round(cast(float, refs["quantile_answer"]), 6)  # only non-answer entries may be None
        if refs["quantile_non_answer1"] is not None:
            out["hardest_non_answer_quantile"] = round(refs["quantile_non_answer1"], 6)
    return out


class HardnessProbe:
    """Per-band hardness on a fixed seeded sample of train triples, for the trace at each validation.

    Each call draws its negatives from a fresh generator with the same seed, so successive rows of
    the trace differ only through the backbone and the denoiser, not through the noise.
    """

    def __init__(self, kg: KnowledgeGraph, triples: int, seed: int):
        self.seed = int(seed)
        self.pos, self.head_side = sample_triples(kg, triples, diagnostics_generator(self.seed, STREAM_TRIPLES))
        # every known answer (train+valid+test, as evaluation filters): the yardstick columns only, never training
        self.filter_index = FilterIndex(kg.all_true(SPLIT_NAMES), kg.num_entities, kg.num_relations)

    def __call__(self, sampler: Any, model: KGEModel) -> dict[str, float]:
        return training_hardness(
            sampler, model, self.pos, self.head_side, diagnostics_generator(self.seed, STREAM_BANDS), self.filter_index
        )


@torch.no_grad()
def negative_hardness(
    sampler: Any,
    model: KGEModel,
    kg: KnowledgeGraph,
    pos: torch.Tensor,
    head_side: torch.Tensor,
    generator: torch.Generator,
    uniform_margin: float,
    num_uniform: int = UNIFORM_NEGATIVES,
) -> dict[str, Any]:
    """The per-band table of a diffusion sampler on ``pos``, with uniform random entities on the same rows.

    Snapped ranks use the evaluation filter (train+valid+test): the nearest entity that is no known
    answer, ranked among the entities that are no known answer.
    """
    dev = model.device
    pos, head_side = pos.to(dev), head_side.to(dev)
    filt = FilterIndex(kg.all_true(SPLIT_NAMES), kg.num_entities, kg.num_relations)
    scored = scored_bands(sampler, model, pos, head_side, generator)
    gen, all_scores, pos_scores = scored["gen"], scored["all_scores"], scored["pos_scores"]
    neg, target, hs, margins, hard = gen["neg"], gen["target"], gen["head_side"], scored["margins"], scored["hard"]
    space = gen["space"]  # generate's, in eval mode
    with eval_mode(model):
        answers = answer_mask(pos, hs, filt, all_scores)  # once: the ranks and the yardsticks share it
        ranks = filtered_ranks(all_scores, snap(neg, pos, hs, space.candidates, filt), answers)
        target_emb = space.target
        dist = _distances(neg, gen["query"], target_emb)
        rand = torch.randint(kg.num_entities, (len(pos), num_uniform), generator=generator).to(dev)
        u_hard = band_hardness(pos_scores, all_scores.gather(1, rand), all_scores, float(uniform_margin))
        u_ranks = filtered_ranks(all_scores, rand, answers)
        u_dist = _distances(space.vectors(rand), gen["query"], target_emb)
        ref = knn_distances(space.candidates, target)
        ref.update(quantile_references(all_scores, pos_scores, answers))
    keep = list(getattr(sampler, "band_states", getattr(sampler, "keep", [None] * neg.shape[1])))
    steps = int(getattr(getattr(sampler, "ans", None), "steps", 0) or 0)
    bands = [
        _row(
            hard,
            dist,
            ranks,
            k,
            band=k + 1,
            reverse_step=keep[k] if k < len(keep) else None,
            margin=float(margins[k]) if margins.ndim and k < len(margins) else float(margins),
        )
        for k in range(neg.shape[1])
    ]
    uniform = _row(
        u_hard, u_dist, u_ranks, None, band="uniform", margin=float(uniform_margin), negatives_per_row=int(num_uniform)
    )
    form = "snapped" if "ids" in gen else "continuous"
    if getattr(sampler, "negatives", None) == "mixed":
        form = "snapped (the snapped half of diffusion.negatives: mixed)"
    return {
        "negatives": form,
        "steps": steps,
        "rows": bands,
        "uniform": uniform,
        "reference": {**ref, "entities": int(kg.num_entities)},
    }


# ----------------------------------------------------------------------------------------
# false negatives
# ----------------------------------------------------------------------------------------
class KnownTriples:
    """Which split (if any) holds a triple: 1 = train, 2 = valid, 3 = test (the earliest), 0 = none."""

    def __init__(self, kg: KnowledgeGraph):
        self.n, self.r = int(kg.num_entities), int(kg.num_relations)
        self.keys = [np.unique(self.key(np.asarray(kg.split(s), dtype=np.int64).reshape(-1, 3))) for s in SPLIT_NAMES]

    def key(self, triples: np.ndarray) -> np.ndarray:
        return (triples[..., 0] * self.r + triples[..., 1]) * self.n + triples[..., 2]

    def split_of(self, triples: np.ndarray) -> np.ndarray:
        k = self.key(np.asarray(triples, dtype=np.int64))
        out = np.zeros(k.shape, dtype=np.int64)
        for code in (3, 2, 1):  # the earliest split wins: write it last
            out[np.isin(k, self.keys[code - 1])] = code
        return out


def false_negative_shares(codes: np.ndarray, valid: np.ndarray, weights: np.ndarray | None = None) -> dict[str, Any]:
    """Shares of known true triples among the negatives (``codes`` from ``KnownTriples.split_of``, [B, K]).

    ``valid`` [B, K] marks negatives that exist (a snapped band may have none); ``weights`` [B, K]
    (rows summing to 1, e.g. self-adversarial softmax weights) adds the weighted shares.
    """
    n = int(valid.sum())
    out: dict[str, Any] = {"negatives": n, "no_negative": int((~valid).sum())}
    for code, split in enumerate(SPLIT_NAMES, start=1):
        out[split] = float(((codes == code) & valid).sum() / n) if n else None
    out["any"] = float(((codes > 0) & valid).sum() / n) if n else None
    if weights is not None:
        w = np.where(valid, weights, 0.0)
        rows = max(len(w), 1)
        out["weighted"] = {
            split: float((w * (codes == code)).sum() / rows) for code, split in enumerate(SPLIT_NAMES, 1)
        }
        out["weighted"]["any"] = float((w * (codes > 0)).sum() / rows)
    else:
        out["weighted"] = None
    return out


@torch.no_grad()
def sampler_negatives(
    sampler: Any, model: KGEModel, pos: torch.Tensor, generator: torch.Generator, train_filter: FilterIndex
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Negative triples [B, K, 3] a sampler draws for ``pos`` (CPU), which exist [B, K], and its weights.

    Discrete samplers: ``corrupt`` with ``generator`` lent for the call and ``negative_weights`` of
    the model's scores. Diffusion samplers: the generated embeddings (from ``generator``) snapped
    to their nearest entity against ``train_filter``; no weights.
    """
    dev = model.device
    pos = pos.cpu()
    with eval_mode(model):
        if isinstance(sampler, DiffusionSampler):
            p = pos.to(dev)
            gen = sampler.generate(p, model, None, snap=False, generator=generator)
            ids = snap(gen["neg"], p, gen["head_side"], gen["space"].candidates, train_filter).cpu()
            hs = gen["head_side"].cpu().unsqueeze(1)
            neg = pos.unsqueeze(1).repeat(1, ids.shape[1], 1)
            neg[..., 0] = torch.where(hs, ids, neg[..., 0])
            neg[..., 2] = torch.where(hs, neg[..., 2], ids)
            return neg, ids >= 0, None
        own, sampler.generator = sampler.generator, generator  # every draw from the diagnostic stream
        try:
            neg = sampler.corrupt(pos)
        finally:
            sampler.generator = own
        scores = model.score_corrupted(pos.to(dev), neg.to(dev))
        w = sampler.negative_weights(scores)
        return neg.cpu(), torch.ones(neg.shape[:2], dtype=torch.bool), (None if w is None else w.detach().cpu())


def false_negatives(
    samplers: Mapping[str, tuple[Any, str]], model: KGEModel, kg: KnowledgeGraph, pos: torch.Tensor, seed: int
) -> list[dict[str, Any]]:
    """One row per sampler (``name -> (sampler, state description)``): false-negative shares by split."""
    known = KnownTriples(kg)
    train_filter = FilterIndex(kg.train, kg.num_entities, kg.num_relations)
    rows = []
    for name, (sampler, state) in samplers.items():
        i = SAMPLER_ORDER.index(name) if name in SAMPLER_ORDER else len(SAMPLER_ORDER)
        neg, valid, w = sampler_negatives(
            sampler, model, pos, diagnostics_generator(seed, STREAM_SAMPLERS + i), train_filter
        )
        codes = known.split_of(neg.numpy())
        shares = false_negative_shares(codes, valid.numpy(), None if w is None else w.numpy())
        diffusion = name in DIFFUSION_SAMPLERS
        rows.append(
            {
                "sampler": name,
                "state": state,
                "per_row": int(neg.shape[1]),
                "negatives_from": "nearest entity to each generated embedding, train filter"
                if diffusion
                else "the sampler's discrete draws",
                **shares,
            }
        )
    return rows


def comparison_samplers(
    kg: KnowledgeGraph,
    cfg: Mapping[str, Any],
    seed: int,
    built: Mapping[str, tuple[Any, str]],
    names: Sequence[str] = SAMPLER_ORDER,
) -> tuple[dict[str, tuple[Any, str]], dict[str, str]]:
    """The samplers of the false-negative table: ``built`` ones (the run's own, a warm start) plus every
    discrete sampler built fresh from ``cfg`` with a diagnostic generator. Diffusion samplers exist only
    where given (they need a warm start or a run's state); the rest are named in the second result."""
    out: dict[str, tuple[Any, str]] = {}
    missing: dict[str, str] = {}
    for name in names:
        if name in built:
            out[name] = built[name]
        elif name in DIFFUSION_SAMPLERS:
            missing[name] = "no trained denoiser among the stages diagnosed (needs its warm start or a run of it)"
        else:
            i = SAMPLER_ORDER.index(name) if name in SAMPLER_ORDER else len(SAMPLER_ORDER)
            sampler = build_sampler(name, kg, cfg, diagnostics_generator(seed, STREAM_SAMPLERS + 50 + i))
            out[name] = (sampler, "cache freshly initialised (not trained)" if name == "nscaching" else "stateless")
    return out, missing


# ----------------------------------------------------------------------------------------
# the whole diagnostic
# ----------------------------------------------------------------------------------------
def run_diagnostics(
    kg: KnowledgeGraph,
    cfg: Mapping[str, Any],
    model: KGEModel,
    diffusion: Any | None,
    fn_samplers: Mapping[str, tuple[Any, str]],
    not_built: Mapping[str, str],
    triples: int,
    seed: int,
) -> dict[str, Any]:
    """Denoiser quality and band table of ``diffusion`` (a ``DiffusionSampler`` or None: no bands) and the
    false-negative table of ``fn_samplers``, on one seeded sample of ``triples`` train triples."""
    import time

    start = time.perf_counter()
    pos, head_side = sample_triples(kg, triples, diagnostics_generator(seed, STREAM_TRIPLES))
    out: dict[str, Any] = {
        "kind": KIND,
        "settings": {
            "triples": int(len(pos)),
            "seed": int(seed),
            "knn": list(KNN),
            "uniform_negatives_per_row": UNIFORM_NEGATIVES,
            "rank_filter": "train+valid+test (as evaluation)",
            "false_negative_snap_filter": "train",
            "uniform_margin": float(cfg["train"]["margin"]),
        },
    }
    if diffusion is not None:
        out["denoiser"] = denoiser_quality(diffusion.ans, model, pos, diagnostics_generator(seed, STREAM_DENOISER))
        out["bands"] = negative_hardness(
            diffusion,
            model,
            kg,
            pos,
            head_side,
            diagnostics_generator(seed, STREAM_BANDS),
            float(cfg["train"]["margin"]),
        )
    else:
        out["denoiser"] = out["bands"] = None
    out["false_negatives"] = {"rows": false_negatives(fn_samplers, model, kg, pos, seed), "not_built": dict(not_built)}
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


# ----------------------------------------------------------------------------------------
# outputs: PREFIX.json, PREFIX.md, PREFIX.png
# ----------------------------------------------------------------------------------------
def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def trace_curves(trace_path: str | Path) -> dict[str, list] | None:
    """The training-time band columns of a run's ``trace.csv`` (rows with a validation), or None."""
    import csv

    path = Path(trace_path)
    if not path.exists():
        return None
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("band1_quantile")]
    if not rows:
        return None
    cols = [c for c in rows[0] if c.startswith("band") and c.rsplit("_", 1)[-1] in ("active", "outscore", "quantile")]
    return {"epoch": [int(r["epoch"]) for r in rows], **{c: [float(r[c]) for r in rows] for c in cols}}


def render_markdown(result: Mapping[str, Any]) -> str:
    """The tables of one diagnostic: denoiser quality, per-band hardness, false negatives across samplers."""
    subj = result.get("subject") or {}
    s = result["settings"]
    lines = [f"# Negative-sampling diagnostics: {subj.get('title', '?')}", ""]
    if subj.get("status") == "failed":
        return "\n".join(
            lines + [f"The run failed ({subj.get('error', 'no error recorded')}); nothing to diagnose.", ""]
        )
    lines += [
        f"Dataset {subj.get('dataset')}, backbone {subj.get('backbone')}, sampler {subj.get('sampler')}, "
        f"{subj.get('state', '')}. {s['triples']} train triples (seed {s['seed']}).",
        "",
    ]
    d = result.get("denoiser")
    lines += ["## Denoiser quality", ""]
    if d:
        T = len(d["steps"])
        pick = sorted({1, max(1, T // 4), max(1, T // 2), max(1, (3 * T) // 4), T})
        x0 = d.get("x0_mse")  # absent in diagnoses written before it existed
        own = d.get("prediction") or "noise"
        lines += [
            "Noise-prediction MSE per coordinate vs predicting zero (E||eps||^2 on the same noise); "
            "ratio near 1 = the denoiser learned nothing at that step. "
            f"alpha-bar_T of the targets: {d['alpha_bar_T']['min']:.3f}-{d['alpha_bar_T']['max']:.3f}."
            + (
                ""
                if x0 is None
                else " Next to it the clean-embedding (x0) MSE vs predicting zero (E||x0||^2). The denoiser predicts "
                f"**{own}** (`diffusion.prediction`); the other error is implied from that prediction and is "
                "amplified where it is divided by a small number (noise implied from x0 at small s, x0 implied "
                "from noise at large s), so judge the denoiser by its own target's ratio."
            ),
            "",
        ]
        if x0 is None:
            lines += ["| step s | MSE | zero baseline | ratio |", "|---|---:|---:|---:|"]
        else:
            lines += [
                "| step s | noise MSE | zero baseline | ratio | x0 MSE | zero baseline | x0 ratio |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
        x0_ratio = None if x0 is None else [m / d["x0_baseline"] if d["x0_baseline"] > 0 else math.nan for m in x0]

        def x0_cells(m: float, r: float) -> str:
            return f" {m:.4f} | {d['x0_baseline']:.4f} | {r:.3f} |"

        for st in pick:
            i = st - 1
            lines.append(
                f"| {st} | {d['mse'][i]:.4f} | {d['baseline'][i]:.4f} | {d['ratio'][i]:.3f} |"
                + ("" if x0 is None or x0_ratio is None else x0_cells(x0[i], x0_ratio[i]))
            )
        lines.append(
            f"| mean over s = 1..{T} | {d['mean_mse']:.4f} | {d['mean_baseline']:.4f} | {d['mean_ratio']:.3f} |"
            + ("" if x0 is None or x0_ratio is None else x0_cells(float(np.mean(x0)), float(np.mean(x0_ratio))))
        )
    else:
        lines.append(f"No denoiser: sampler {subj.get('sampler')} generates no diffusion negatives.")
    lines += ["", "## Hardness per band", ""]
    b = result.get("bands")
    if b:
        ref = b["reference"]
        lines += [
            f"{b['negatives'].capitalize()} negatives. active = share inside the band margin "
            "(S(neg) > S(pos) - margin: gives a gradient); outscore = P(S(neg) > S(true answer)); "
            "quantile = share of the "
            f"{ref['entities']} entities scoring below the negative (0.5 = random entity); snapped rank = "
            "filtered rank of the nearest entity that is no known answer (train+valid+test); distances are "
            "Euclidean. Reference: the true target's 1st / 10th nearest entity lies at "
            f"{_f(ref.get('knn1'))} / {_f(ref.get('knn10'))}; entity quantile of the true answer "
            f"{_f(ref.get('quantile_answer'))}, of the hardest / 10th hardest entity that is no known answer "
            f"{_f(ref.get('quantile_non_answer1'))} / {_f(ref.get('quantile_non_answer10'))} (the yardstick "
            "for the hardest band: above it, a negative outscores every real negative).",
            "",
            "| negatives | reverse step | margin | active | outscore | entity quantile | gap S(pos)-S(neg) "
            "| snapped rank mean (median) | dist to query | dist to target |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in [*b["rows"], b["uniform"]]:
            name = f"band {r['band']}" if r["band"] != "uniform" else f"uniform ({r['negatives_per_row']} per row)"
            step = "—" if r.get("reverse_step") is None else f"{r['reverse_step']} of {b['steps']}"
            lines.append(
                f"| {name} | {step} | {_f(r['margin'], 2)} | {_f(r['active'])} | {_f(r['outscore'])} | "
                f"{_f(r['quantile'])} | {_f(r['gap'])} | {_f(r['snap_rank_mean'], 1)} "
                f"({_f(r['snap_rank_median'], 1)}) | {_f(r['dist_query'])} | {_f(r['dist_target'])} |"
            )
    else:
        lines.append(f"No bands: sampler {subj.get('sampler')} generates no diffusion negatives.")
    fn = result["false_negatives"]
    lines += [
        "",
        "## False negatives across samplers",
        "",
        "Share of the sampler's negatives that are known true triples, by the earliest split holding them "
        "(train, then valid, then test). Diffusion samplers: the nearest entity to each generated embedding, "
        "snapped against the train filter only (so their train column is 0 by construction). "
        "Self-adversarial: also weighted by its softmax weights.",
        "",
        "| sampler | state | negatives | train | valid | test | any | weighted any |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {r["sampler"]: r for r in fn["rows"]}
    missing = dict(fn.get("not_built") or {})
    order = [n for n in SAMPLER_ORDER if n in rows or n in missing]
    order += [n for n in [*rows, *missing] if n not in order]
    for name in order:
        if name in missing:
            lines.append(f"| {name} | not built: {missing[name]} | — | — | — | — | — | — |")
            continue
        r = rows[name]
        w = r.get("weighted")
        lines.append(
            f"| {r['sampler']} | {r['state']} | {r['negatives']} | {_pct(r['train'])} | {_pct(r['valid'])} | "
            f"{_pct(r['test'])} | {_pct(r['any'])} | {_pct(w['any']) if w else '—'} |"
        )
    lines += ["", f"Command: `{(result.get('provenance') or {}).get('command', '')}`", ""]
    return "\n".join(lines)


# seaborn's "colorblind" palette, as the report figures use it (dans_kgc/reports/figures.py); written out
# so that a diagnose job does not pay seaborn's import (~3 s, most of a small job)
COLORBLIND = [
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
]
FIG_DPI = 150


def _plot_setup() -> Any:
    """Headless matplotlib with the report figures' look (white grid, colour-blind palette, large fonts)."""
    import logging

    import matplotlib

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    plt.style.use("seaborn-v0_8-whitegrid")
    matplotlib.rcParams.update(
        {
            "font.size": 12,
            "axes.labelsize": 13,
            "axes.titlesize": 13,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 10,
            "axes.prop_cycle": cycler(color=COLORBLIND),
            "savefig.dpi": FIG_DPI,
            "axes.titleweight": "bold",
            "lines.linewidth": 2.2,
            "lines.markersize": 7,
            "legend.frameon": False,
            "axes.edgecolor": "0.3",
            "grid.color": "0.88",
            "svg.hashsalt": "dans-kgc",
        }
    )
    return plt


def plot(result: Mapping[str, Any], path: str | Path) -> Path:
    """PNG: MSE per step over the zero baseline (predicted and implied target); per-band entity quantile and
    active share (uniform as reference lines); the trace's training-time curves when the run has them."""
    from dans_kgc.reports.figures import MARKERS, PANEL_H, PANEL_W

    plt = _plot_setup()
    d, b, curves = result.get("denoiser"), result.get("bands"), result.get("trace")
    title = (result.get("subject") or {}).get("title", "")
    if not b:
        fig, ax = plt.subplots(figsize=(7.5, 2.4))
        ax.axis("off")
        subj = result.get("subject") or {}
        why = (
            f"the run failed: {subj.get('error')}"
            if subj.get("status") == "failed"
            else f"no bands: sampler {subj.get('sampler')} generates no diffusion negatives"
        )
        ax.text(
            0.5,
            0.5,
            f"{title}\n{why}\n(false negatives: see the .md / .json)",
            ha="center",
            va="center",
            fontsize=12,
            wrap=True,
        )
        return _save(plt, fig, path)
    n = 3 if curves else 2
    fig, axes = plt.subplots(1, n, figsize=(PANEL_W * n + 0.6, PANEL_H + 0.9), layout="constrained", squeeze=False)
    axes = axes[0]
    palette = COLORBLIND
    ax = axes[0]
    if d:
        # ratios to predicting zero, on a log axis: an implied error (noise from x0 at small s) can be 100x the
        # baseline by construction and would flatten the model's own curve on a linear one
        own = d.get("prediction") or "noise"
        every = max(1, len(d["steps"]) // 8)
        floor = 1e-4  # a ratio of 0 (e.g. implied noise at s = T) has no place on a log axis
        ax.plot(
            d["steps"],
            np.maximum(d["ratio"], floor),
            color=palette[3],
            marker="o",
            markevery=every,
            linestyle="-" if own == "noise" else ":",
            label="noise" + (" (predicted)" if own == "noise" else " (implied)"),
        )
        if d.get("x0_mse") is not None and d.get("x0_baseline"):
            ax.plot(
                d["steps"],
                np.maximum(np.asarray(d["x0_mse"]) / d["x0_baseline"], floor),
                color=palette[0],
                marker="s",
                markevery=every,
                linestyle="-" if own == "x0" else ":",
                label="x0" + (" (predicted)" if own == "x0" else " (implied)"),
            )
        ax.axhline(1.0, color="0.35", linestyle="--", label="predict zero")
        ax.set_yscale("log")
        ax.legend(loc="best", fontsize=10)
    ax.set_xlabel("Diffusion step s")
    ax.set_ylabel("MSE / predicting zero")
    ax.set_title("Denoiser quality", fontsize=13)
    ax = axes[1]
    ks = [r["band"] for r in b["rows"]]
    ax.plot(ks, [r["quantile"] for r in b["rows"]], color=palette[0], marker=MARKERS[0], label="entity quantile")
    ax.plot(
        ks, [r["active"] for r in b["rows"]], color=palette[2], marker=MARKERS[1], linestyle="--", label="active share"
    )
    ax.axhline(b["uniform"]["quantile"], color=palette[0], linestyle=":", linewidth=1.5, label="uniform: quantile")
    ax.axhline(b["uniform"]["active"], color=palette[2], linestyle=":", linewidth=1.5, label="uniform: active")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Band (1 = easiest)")
    ax.set_ylabel("Share")
    ax.set_title("Hardness per band", fontsize=13)
    ax.legend(loc="best", fontsize=9)
    if curves:
        ax = axes[2]
        nb = len([c for c in curves if c.endswith("_quantile")])
        colors = [plt.get_cmap("viridis_r")(x) for x in np.linspace(0.1, 0.9, max(nb, 1))]
        for k in range(1, nb + 1):
            ax.plot(
                curves["epoch"],
                curves[f"band{k}_quantile"],
                color=colors[k - 1],
                marker=MARKERS[k % len(MARKERS)],
                label=f"band {k} quantile",
            )
            if f"band{k}_active" in curves:
                ax.plot(curves["epoch"], curves[f"band{k}_active"], color=colors[k - 1], linestyle="--")
        ax.plot([], [], color="0.3", linestyle="--", label="active share")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("Share")
        ax.set_title("During training (validations)", fontsize=13)
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=14, fontweight="bold")
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=FIG_DPI, bbox_inches="tight", metadata={"Software": "dans-kgc diagnose"})
    plt.close(fig)
    return path


def write_outputs(result: Mapping[str, Any], prefix: str | Path) -> list[Path]:
    """``PREFIX.json`` (every number + provenance), ``PREFIX.md`` (the tables), ``PREFIX.png`` (the figure)."""
    from dans_kgc.utils import write_json, write_text

    prefix = str(prefix)
    paths = [Path(prefix + ".json"), Path(prefix + ".md"), Path(prefix + ".png")]
    write_json(paths[0], result)
    write_text(paths[1], render_markdown(result))
    plot(result, paths[2])
    return paths


__all__ = [
    "KIND",
    "SAMPLER_ORDER",
    "HardnessProbe",
    "KnownTriples",
    "comparison_samplers",
    "denoiser_quality",
    "false_negative_shares",
    "false_negatives",
    "filtered_ranks",
    "knn_distances",
    "negative_hardness",
    "plot",
    "render_markdown",
    "run_diagnostics",
    "sampler_negatives",
    "snap",
    "trace_curves",
    "training_hardness",
    "write_outputs",
]
