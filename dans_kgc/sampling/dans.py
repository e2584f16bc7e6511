"""DANS-KGC's sampler (docs/method.md, Stages 2-3 and "The loss"), and the shared diffusion-sampler base.

Per training step, for each positive (h, r, t) one side is drawn (prob. 1/2); the entity on
that side (the *target*, e) is replaced by generated embeddings:

1. one reverse chain for the whole batch, each row conditioned on [type(e) ; query] and
   following e's difficulty-adaptive schedule, keeps K_b states (bands, easy -> hard);
2. ``L_dans = mean_b sum_k w_e^k relu(gamma_k - S(h,r,t) + S(h,r,t~_k))`` with DTM band
   weights ``w_e^k(tau)`` and margins ``gamma_k``;
3. ``L = (1 - eta) L_rand + eta L_dans + L_diff``, where ``L_diff`` updates the denoiser on the
   backbone's current, detached embeddings every ``diffusion.update_every`` steps.

The generated negatives are constants for the backbone (produced without gradient), and the
denoiser sees only detached embeddings, so each loss moves only what it should.
Randomness comes from ``self.generator`` only (checkpointed by the Trainer): exact resume.
The per-step logs (band weights applied, L_dans, L_diff) are averaged per epoch by the Trainer
and land in the trace as ``band_w1..band_wK``, ``l_dans``, ``l_diff``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from dans_kgc import band_probe
from dans_kgc.band_probe import STREAM_PLACEMENT
from dans_kgc.curriculum import curriculum_centre, dtm_margins, dtm_weights
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diffusion import (
    DIFFUSION_FILE,
    ConditionalDiffusion,
    band_checkpoints,
    entity_width,
    reverse_steps,
    snap_to_entities,
)
from dans_kgc.losses import band_loss
from dans_kgc.models.base import KGEModel, QuerySpace
from dans_kgc.sampling.base import NegativeSampler, StepContext, score_side_vectors
from dans_kgc.stages import backbone_of, check_record
from dans_kgc.utils import find_sorted

log = logging.getLogger(__name__)

# init_args that fix the denoiser's parameter shapes: a warm start must agree on these.
_ARCH_KEYS = (
    "num_entities",
    "width",
    "hidden",
    "time_dim",
    "type_dim",
    "condition",
    "num_clusters",
    "normalize",
    "side_flag",
    "prediction",
)
NEGATIVE_FORMS = ("continuous", "snapped", "mixed")


def load_warm_start(
    ans: ConditionalDiffusion, diffusion_dir: str, what: str, kg: KnowledgeGraph, cfg: Mapping[str, Any]
) -> None:
    """Load a saved denoiser into ``ans`` (built from this run's config), checking it fits the run.

    The warm start must be fitted in this run's space: same backbone (name, dim) and dataset
    (its stage record). Schedule keys (T, betas, mu) may differ (e.g. a mu sweep from one warm
    start): this run's config wins. Architecture keys must match, else the message says which.
    """
    from pathlib import Path

    path = Path(diffusion_dir) / DIFFUSION_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no diffusion warm start here; run 'dans-kgc diffusion fit' first")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    check_record(ck.get("stage_record"), str(path), kg=kg, backbone=backbone_of(cfg["model"]), what=f"this {what} run")
    saved, mine = ck["init_args"], ans.init_args
    bad = [
        f"{k}: warm start {saved.get(k)!r} vs run {mine.get(k)!r}" for k in _ARCH_KEYS if saved.get(k) != mine.get(k)
    ]
    if bad:
        raise ValueError(
            f"{path}: the warm start does not fit this {what} run ({'; '.join(bad)}); "
            f"fit one with the same config ('dans-kgc diffusion fit' with the run's --config/--set)"
        )
    changed = [
        k
        for k in ("steps", "beta_low", "beta_global", "mu", "loss", "schedule")
        if saved.get(k, "linear" if k == "schedule" else None) != mine.get(k)
    ]
    if changed:
        log.info(
            "%s: warm start fitted with %s; this run uses %s",
            path,
            {k: saved.get(k) for k in changed},
            {k: mine.get(k) for k in changed},
        )
    ans.load_state_dict(ck["state"])


def assign_bands(measured: Sequence[float], candidates: Sequence[int], targets: Sequence[float]) -> list[int]:
    """The candidate state of each band (easy -> hard) for measured placement: K distinct candidates in
    increasing order of measured entity quantile, minimising ``sum_k |quantile_k - targets[k]|`` (a small dynamic
    programme over the candidates sorted by quantile), so the bands stay graded even where several targets lie
    beyond the hardest state the chain reaches. With fewer candidates than bands: each band's nearest state."""
    k_bands, order = len(targets), sorted(range(len(candidates)), key=lambda i: (measured[i], -candidates[i]))
    if len(order) < k_bands:
        return [candidates[min(range(len(candidates)), key=lambda i: abs(measured[i] - q))] for q in targets]
    q = [measured[i] for i in order]
    inf = float("inf")
    # cost[k][j]: best cost of bands 0..k with band k on sorted candidate j; back[k][j]: band k-1's candidate
    cost = [[abs(q[j] - targets[0]) for j in range(len(q))]]
    back: list[list[int]] = [[-1] * len(q)]
    for k in range(1, k_bands):
        row, prev = [inf] * len(q), [-1] * len(q)
        best, arg = inf, -1
        for j in range(len(q)):
            if j >= 1 and cost[k - 1][j - 1] < best:  # best predecessor among sorted candidates 0..j-1
                best, arg = cost[k - 1][j - 1], j - 1
            if arg >= 0:
                row[j], prev[j] = best + abs(q[j] - targets[k]), arg
        cost.append(row)
        back.append(prev)
    j = min(range(len(q)), key=lambda i: cost[-1][i])
    picked = [j]
    for k in range(k_bands - 1, 0, -1):
        j = back[k][j]
        picked.append(j)
    return [candidates[order[j]] for j in reversed(picked)]


class DiffusionSampler(NegativeSampler):
    """Shared machinery of the diffusion samplers (DANS-KGC and the DHNS-style baseline).

    Subclasses build ``self.ans`` and define ``band_weights`` / ``band_margins``. ``chain``
    (``negatives``, ``reverse``, ``chain_start``) says how the reverse chain runs and which form
    its negatives take; the defaults are the base reading (the DHNS baseline keeps them).

    Negative forms: ``continuous`` (the base reading: the chain's states, scored directly; only the
    query moves), ``snapped`` (each state replaced by its nearest entity that is not a known
    true triple: that entity's embedding is pushed away too), ``mixed`` (both, each band's
    weight split evenly between its two forms).
    """

    name = "diffusion_base"
    hard_loss_name = "l_hard"
    # buffers (register_buffer), declared for the type checker: nn.Module types attributes it looks up as Module too
    band_keep: torch.Tensor
    cache_states: torch.Tensor
    cache_step: torch.Tensor

    def __init__(
        self,
        kg: KnowledgeGraph,
        cfg: Mapping[str, Any],
        num_negatives: int,
        generator: torch.Generator,
        ans: ConditionalDiffusion,
        keep: Sequence[int],
        eta: float,
        base_sampler: str = "uniform",
        negatives: str = "continuous",
        reverse: str = "ddpm",
        chain_start: str = "noise",
        band_quantiles: Sequence[float] | None = None,
    ):
        super().__init__(kg, cfg, num_negatives, generator)
        self.ans = ans
        self.keep = [int(k) for k in keep]
        self.num_bands = len(self.keep)
        # measured band placement (diffusion.band_placement = measured): ``keep`` re-chosen on the model
        self.band_quantiles = None if band_quantiles is None else [float(q) for q in band_quantiles]
        if self.band_quantiles is not None:
            q = self.band_quantiles
            if (
                len(q) != self.num_bands
                or not all(0.0 <= a < b <= 1.0 for a, b in pairwise(q))
                or not 0.0 <= q[0] <= 1.0
            ):
                raise ValueError(
                    f"diffusion.band_quantiles = {q}: expected {self.num_bands} increasing entity "
                    "quantiles in [0, 1], one per band (as many as diffusion.band_steps)"
                )
            # a buffer, so checkpoints carry the placement and a resumed run continues with it
            self.register_buffer("band_keep", torch.as_tensor(self.keep, dtype=torch.long))
            # a host copy read at every step (``band_states``), so a CUDA buffer costs no sync per batch;
            # set where the buffer is written: ``refresh`` and a checkpoint load
            self._band_keep_host = list(self.keep)
            self.register_load_state_dict_post_hook(
                lambda module, _keys: setattr(module, "_band_keep_host", module.band_keep.tolist())
            )
            dcfg = cfg.get("diagnostics") or {}
            self._placement_rows = int(dcfg.get("triples", 0) or 0) or 256
            self._placement_seed = int(dcfg.get("seed", 0) or 0)
        self.eta = float(eta)
        if base_sampler not in ("uniform", "self_adversarial"):
            raise ValueError(f"base sampler '{base_sampler}'; expected uniform or self_adversarial")
        self.base_sampler = base_sampler
        self.temperature = float(cfg["train"]["adversarial_temperature"])
        d = cfg["diffusion"]
        self.update_every = int(d["update_every"])
        if negatives not in NEGATIVE_FORMS:
            raise ValueError(f"diffusion.negatives = {negatives!r}; expected one of {', '.join(NEGATIVE_FORMS)}")
        if chain_start not in ("noise", "forward"):
            raise ValueError(f"diffusion.chain_start = {chain_start!r}; expected noise or forward")
        self.negatives, self.reverse, self.chain_start = negatives, reverse, chain_start
        self.snap = negatives != "continuous"
        self.snap_filter = str(d.get("snap_filter", "train"))
        if self.snap_filter not in ("all", "train"):
            raise ValueError(f"diffusion.snap_filter = {self.snap_filter!r}; expected all or train")
        self.learning_rate = float(d["lr"])
        self.sampling_steps = int(d["sampling_steps"])
        self.sample_fraction = float(d.get("sample_fraction", 1.0))
        if not 0.0 < self.sample_fraction <= 1.0:
            raise ValueError(f"diffusion.sample_fraction = {self.sample_fraction}; expected a value in (0, 1]")
        if self.update_every <= 0:  # frozen after the warm start: keep the denoiser out of the optimiser
            for p in self.ans.parameters():
                p.requires_grad_(False)
        self._kg = kg
        self._filter: Any = None
        self.cache_epochs = int(d.get("cache_epochs", 0) or 0)
        if self.cache_epochs < 0:
            raise ValueError(f"diffusion.cache_epochs = {self.cache_epochs}; expected 0 (off) or a positive number")
        if self.cache_epochs:
            self._init_cache(kg, cfg)

    # --- the negative cache (diffusion.cache_epochs) ------------------------------------------
    def _init_cache(self, kg: KnowledgeGraph, cfg: Mapping[str, Any]) -> None:
        """Buffers (so checkpoints carry them and resume stays exact): the last chain states of every
        (train triple, side) and the step they were made at (-1 = never)."""
        train = torch.as_tensor(kg.train, dtype=torch.long)
        keys = self.triple_keys(train)
        self._cache_keys, self._cache_order = torch.sort(keys)
        steps_per_epoch = math.ceil(len(train) / int(cfg["train"]["batch_size"]))
        self.cache_period = self.cache_epochs * steps_per_epoch
        self.register_buffer("cache_states", torch.zeros(len(train), 2, self.num_bands, self.ans.width))
        self.register_buffer("cache_step", torch.full((len(train), 2), -1, dtype=torch.long))

    def _cache_rows(self, pos: torch.Tensor) -> torch.Tensor:
        """Row of each positive in the cache, -1 for a triple that is not a train triple."""
        at, found = find_sorted(self._cache_keys, self.triple_keys(pos.cpu()))
        return torch.where(found, self._cache_order[at], -1).to(self.cache_step.device)

    def generate_cached(self, pos: torch.Tensor, model: KGEModel, head_side: torch.Tensor, step: int) -> dict[str, Any]:
        """``generate`` through the cache: chains run only for rows whose (triple, side) states are
        missing or at least ``cache_period`` steps old; the rest reuse their stored states. The query
        (condition of L_diff) and the snapping are always computed on the current backbone, once per batch."""
        if not self.cache_epochs:
            return self.generate(pos, model, head_side)
        head_side = head_side.to(pos.device)
        target = torch.where(head_side, pos[:, 0], pos[:, 2])
        space = self._space(model, pos, head_side, self.snap)
        rows, side = self._cache_rows(pos), head_side.long().to(self.cache_step.device)
        made = self.cache_step[rows.clamp_min(0), side]
        stale = (rows < 0) | (made < 0) | (step - made >= self.cache_period)
        neg = self.cache_states[rows.clamp_min(0), side].to(pos.device)
        if bool(stale.any()):
            at = stale.to(pos.device)
            fresh = self._chain(target[at], space.rows(at), head_side[at], self.generator)
            neg[at] = fresh
            keep = stale & (rows >= 0)
            self.cache_states[rows[keep], side[keep]] = fresh[(rows[stale] >= 0).to(pos.device)].to(
                self.cache_states.device
            )
            self.cache_step[rows[keep], side[keep]] = step
        return self._negatives(neg, pos, head_side, target, space, self.snap)

    # --- random negatives for L_rand -------------------------------------------------------
    def negative_weights(self, neg_scores: torch.Tensor) -> torch.Tensor | None:
        if self.base_sampler == "self_adversarial":
            return torch.softmax(self.temperature * neg_scores.detach(), dim=-1)
        return None

    # --- curriculum hooks --------------------------------------------------------------------
    def band_weights(self, tau: float, target: torch.Tensor) -> torch.Tensor:
        """Per-row weights of the K_b generated negatives -> [B, K_b]."""
        raise NotImplementedError

    def band_margins(self) -> torch.Tensor:
        """Margins per band -> [K_b]."""
        raise NotImplementedError

    def extra_logs(self, tau: float, target: torch.Tensor) -> dict[str, float]:
        return {}

    # --- generation -------------------------------------------------------------------------
    def filter_index(self) -> Any:
        """Known true triples that snapping must avoid (train+valid+test, or train only)."""
        if self._filter is None:
            from dans_kgc.evaluation import FilterIndex

            splits = ("train", "valid", "test") if self.snap_filter == "all" else ("train",)
            self._filter = FilterIndex(self._kg.all_true(splits), self._kg.num_entities, self._kg.num_relations)
        return self._filter

    def generate(
        self,
        pos: torch.Tensor,
        model: KGEModel,
        head_side: torch.Tensor | None = None,
        snap: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Any]:
        """Negatives for positives ``pos`` [B, 3]: ``neg`` [B, K_b, w] (continuous, or the snapped
        entities' embeddings), ``ids`` [B, K_b] (snapped ids, -1 = none) and ``neg_continuous`` (the
        chain's states) only when snapping (``snap``; None = the configured form), ``target``,
        ``head_side``, the detached ``query`` and the answer's representation ``x0`` (the backbone's
        ``negative_space``: entity embeddings, or a query-conditioned backbone's candidate states), and that
        ``space`` itself. Also usable for analysis: pass ``generator`` so
        the draws leave the training generator (and so exact resume) untouched."""
        b = pos.shape[0]
        generator = self.generator if generator is None else generator
        if head_side is None:
            head_side = torch.rand(b, generator=generator) < 0.5
        head_side = head_side.to(pos.device)
        target = torch.where(head_side, pos[:, 0], pos[:, 2])
        snap = self.snap if snap is None else snap
        space = self._space(model, pos, head_side, snap)
        return self._negatives(self._chain(target, space, head_side, generator), pos, head_side, target, space, snap)

    @staticmethod
    def _space(model: KGEModel, pos: torch.Tensor, head_side: torch.Tensor, snap: bool) -> QuerySpace:
        # the candidates need a gradient only when snapped negatives are taken from them (a graph backbone
        # then propagates with autograd; continuous negatives are scored by vectors that carry no query)
        with torch.set_grad_enabled(torch.is_grad_enabled() and snap):
            return model.negative_space(pos, head_side)

    def _chain(
        self, target: torch.Tensor, space: QuerySpace, head_side: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The reverse chain's kept states for these rows -> [B, K_b, w]."""
        self.ans.ensure_scale(space.scale_reference)
        x_start = space.target if self.chain_start == "forward" else None
        return self.ans.sample(
            target, space.query, generator, self.band_states, self.sampling_steps, head_side, self.reverse, x_start
        )

    @property
    def band_states(self) -> list[int]:
        """The reverse-chain states the bands sit on now: measured placement's, else ``band_steps``'."""
        return list(self._band_keep_host) if self.band_quantiles is not None else list(self.keep)

    # --- measured band placement -----------------------------------------------------------
    def placement_candidates(self) -> list[int]:
        """The reverse-chain states a band may sit on: those the run's chain visits anyway (all T + 1
        states, or the respaced grid of ``diffusion.sampling_steps``), so placing bands adds no chain step."""
        return sorted(reverse_steps(self.ans.steps, [], self.sampling_steps), reverse=True)

    @torch.no_grad()
    def refresh(self, model: KGEModel) -> dict[str, float]:
        """Measured placement: on a fixed seeded sample of train triples, the entity quantile of the
        negatives at every candidate state (the run's own negative form, the model in eval mode, draws from
        a generator of their own); the bands then sit on K distinct candidates, graded by measured quantile,
        nearest ``diffusion.band_quantiles`` (``assign_bands``). Returns trace columns ``band{k}_step``; {}
        with fixed bands."""
        if self.band_quantiles is None:
            return {}
        pos, head_side = band_probe.sample_triples(
            self._kg, self._placement_rows, band_probe.diagnostics_generator(self._placement_seed, STREAM_PLACEMENT)
        )
        dev = model.device
        candidates = self.placement_candidates()
        fixed, self.band_quantiles = self.band_quantiles, None  # generate over every candidate state
        own_keep, self.keep = self.keep, candidates
        try:
            # looked up on the module, so a test can stand in a known measurement
            scored = band_probe.scored_bands(
                self,
                model,
                pos.to(dev),
                head_side.to(dev),
                band_probe.diagnostics_generator(self._placement_seed, STREAM_PLACEMENT + 1),
                margins=torch.zeros(len(candidates)),
            )
        finally:
            self.band_quantiles, self.keep = fixed, own_keep
        measured = scored["hard"]["quantile"].cpu().tolist()
        chosen = assign_bands(measured, candidates, self.band_quantiles)
        if self.cache_epochs and chosen != self._band_keep_host:
            self.cache_step.fill_(-1)  # cached negatives sit on the old states: regenerate them all
        self.band_keep.copy_(torch.as_tensor(chosen, dtype=torch.long))
        self._band_keep_host = [int(s) for s in chosen]
        return {f"band{k + 1}_step": float(s) for k, s in enumerate(chosen)}

    def _negatives(
        self,
        neg: torch.Tensor,
        pos: torch.Tensor,
        head_side: torch.Tensor,
        target: torch.Tensor,
        space: QuerySpace,
        snap: bool,
    ) -> dict[str, Any]:
        out = {
            "neg": neg,
            "target": target,
            "head_side": head_side,
            "query": space.query,
            "x0": space.target,
            "space": space,
        }
        if snap:
            ids = snap_to_entities(neg, pos, head_side, space.candidates, self.filter_index())
            out.update(ids=ids, neg_continuous=neg, neg=space.vectors(ids.clamp_min(0)))
        return out

    def score_negatives(
        self, model: KGEModel, pos: torch.Tensor, head_side: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """``S`` of each positive with its replaced side swapped for each generated embedding -> [B, K]."""
        return score_side_vectors(model, pos, head_side, neg)

    # --- the loss -----------------------------------------------------------------------------
    def total_loss(self, loss_rand: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        model, pos, tau = ctx.model, ctx.pos, float(ctx.progress)
        b = pos.shape[0]
        head_side = (torch.rand(b, generator=self.generator) < 0.5).to(pos.device)
        m = b if self.sample_fraction >= 1.0 else max(1, int(round(self.sample_fraction * b)))
        rows = None if m == b else torch.randperm(b, generator=self.generator)[:m].to(pos.device)
        sub = pos if rows is None else pos[rows]
        pos_scores = ctx.pos_scores
        if ctx.pos_scores_head is not None:  # each row's positive scored on the side its negatives replace
            pos_scores = torch.where(head_side, ctx.pos_scores_head, pos_scores)
        pos_scores = pos_scores if rows is None else pos_scores[rows]
        gen = self.generate_cached(sub, model, head_side if rows is None else head_side[rows], ctx.step)
        w = self.band_weights(tau, gen["target"]).to(pos.device)  # [m, K]
        margins = self.band_margins().to(pos.device)
        neg = gen["neg"]
        if "ids" in gen:  # snapped: a band without any valid negative contributes nothing
            w_snap = w * (gen["ids"] >= 0).to(w.dtype)
            if self.negatives == "mixed":  # each band once continuous, once snapped, half weight each
                neg = torch.cat([gen["neg_continuous"], neg], dim=1)
                w, margins = torch.cat([0.5 * w, 0.5 * w_snap], dim=1), margins.repeat(2)
            else:
                w = w_snap
        neg_scores = self.score_negatives(model, sub, gen["head_side"], neg)
        hard = band_loss(ctx.loss_family, pos_scores, neg_scores, w, margins, ctx.loss_reduction)
        if self.update_every > 0 and ctx.step % self.update_every == 0:
            # L_diff on the same rows that got generated negatives (the whole batch unless
            # sample_fraction < 1: its forward + backward costs as much as the TransE step itself).
            l_diff = self.ans.loss(gen["x0"], gen["target"], gen["query"], self.generator, gen["head_side"])
        else:
            l_diff = torch.zeros((), device=pos.device)
        loss = (1.0 - self.eta) * loss_rand + self.eta * hard + l_diff
        mean_w = w.detach().mean(0)
        if mean_w.shape[0] != self.num_bands:  # mixed: report each band's total weight
            mean_w = mean_w.view(-1, self.num_bands).sum(0)
        logs = {
            "l_rand": float(loss_rand.detach()),
            self.hard_loss_name: float(hard.detach()),
            "l_diff": float(l_diff.detach()),
            **{f"band_w{k + 1}": v for k, v in enumerate(mean_w.cpu().tolist())},
        }
        logs.update(self.extra_logs(tau, gen["target"]))
        return loss, logs


class DANSSampler(DiffusionSampler):
    """DANS-KGC: difficulty-adaptive conditional diffusion negatives with the DTM curriculum.

    Resources: ``dam_dir`` (zeta and K-means clusters via ``dans_kgc.dam``) and ``diffusion_dir``
    (warm-started denoiser). ``zeta`` / ``clusters`` arrays may be passed directly (tests,
    notebooks) and take precedence. Ablations: ``dans.use_dam=false`` (zeta = 0.5),
    ``diffusion.condition=null`` (w/o CCD), ``dtm.enabled=false`` (w/o DTM).
    """

    name = "dans"
    hard_loss_name = "l_dans"

    def __init__(
        self,
        kg: KnowledgeGraph,
        cfg: Mapping[str, Any],
        num_negatives: int,
        generator: torch.Generator,
        dam_dir: str | None = None,
        diffusion_dir: str | None = None,
        zeta: np.ndarray | None = None,
        clusters: np.ndarray | None = None,
        **_: Any,
    ):
        n = kg.num_entities
        use_dam = bool(cfg["dans"]["use_dam"])
        dam_zeta, dam_clusters = None, None
        if dam_dir:
            from dans_kgc import dam

            dam.check_dam(dam_dir, kg, cfg, "this dans run")
            dam_zeta, dam_clusters = dam.load_zeta(dam_dir, n), dam.load_clusters(dam_dir, n)
        if zeta is not None:
            dam_zeta = zeta
        if clusters is not None:
            dam_clusters = clusters
        ans = ConditionalDiffusion.from_config(n, entity_width(cfg["model"]), None, None, cfg)
        if diffusion_dir:
            load_warm_start(ans, diffusion_dir, "dans", kg, cfg)
        if not use_dam:
            ans.set_difficulty(zeta=np.full(n, 0.5, dtype=np.float32))
        elif dam_zeta is not None:
            ans.set_difficulty(zeta=dam_zeta)
        elif not diffusion_dir:
            raise ValueError(
                "sampler 'dans' needs the DAM output (--dam DIR: zeta per entity) or a diffusion warm "
                "start (--diffusion DIR); for the w/o DAM ablation set dans.use_dam=false"
            )
        if dam_clusters is not None:
            ans.set_difficulty(clusters=dam_clusters)
        elif not diffusion_dir and ans.condition_mode == "ccd":
            log.warning("sampler 'dans': no K-means clusters (no --dam); every entity gets the same type condition")
        steps = int(cfg["diffusion"]["steps"])
        d = cfg["diffusion"]
        placement = str(d.get("band_placement", "fixed"))
        if placement not in ("fixed", "measured"):
            raise ValueError(f"diffusion.band_placement = {placement!r}; expected fixed or measured")
        super().__init__(
            kg,
            cfg,
            num_negatives,
            generator,
            ans,
            band_checkpoints(d["band_steps"], steps),
            eta=float(cfg["dans"]["eta"]),
            base_sampler=str(cfg["dans"]["base_sampler"]),
            negatives=str(d["negatives"]),
            reverse=str(d["reverse"]),
            chain_start=str(d["chain_start"]),
            band_quantiles=d["band_quantiles"] if placement == "measured" else None,
        )
        self.dtm = dict(cfg["dtm"])

    def band_weights(self, tau: float, target: torch.Tensor) -> torch.Tensor:
        return dtm_weights(tau, self.ans.zeta[target], self.dtm, self.num_bands)

    def band_margins(self) -> torch.Tensor:
        return dtm_margins(self.dtm)

    def extra_logs(self, tau: float, target: torch.Tensor) -> dict[str, float]:
        c = curriculum_centre(
            tau, self.ans.zeta[target], float(self.dtm["lambda"]), float(self.dtm["alpha"]), bool(self.dtm["reversed"])
        )
        return {"dtm_centre": float(c.mean()), "tau": tau}


__all__ = ["DiffusionSampler", "DANSSampler", "assign_bands", "load_warm_start"]
