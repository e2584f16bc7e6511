"""Stage 2 (ANS): the conditional diffusion model that generates negative entity embeddings.

docs/method.md, "Stage 2". A DDPM over the backbone's entity embeddings with

* a difficulty-adaptive linear schedule per entity (``beta_max`` grows with DAM's zeta, so
  harder entities get stronger perturbation; ``mu = 0`` gives one schedule for everyone, the
  DHNS baseline),
* a denoiser ``eps_theta(x_s, s, c)`` (MLP, sinusoidal step embedding, condition concatenated),
* the condition ``c = [type(target) ; query(anchor, r)]`` (CCD), a learned null vector (w/o CCD
  ablation) or the query alone (DHNS baseline),
* a reverse chain from ``x_T ~ N(0, I)`` that keeps its state at a few checkpoints (bands).

Design points:

* Every random draw goes through an explicit ``torch.Generator`` so a resumed run repeats the
  uninterrupted one bit for bit.
* Everything taken from the backbone is detached: ``L_diff`` never moves KGE embeddings
  (DHNS let the diffusion loss push gradients into the embeddings).
* ``L_diff`` is the MSE of the base reading, not DHNS's L1 (``loss='l1'`` is available for the baseline).
* ``normalize`` (config ``diffusion.normalize``): embeddings and queries are divided by one
  scalar ``data_scale`` (the std of the entity-embedding coordinates) before diffusion and
  multiplied back after sampling. DDPM assumes unit-scale data: TransE's unit-norm rows have
  coordinates of std ~ 1/sqrt(d), so raw, x_T ~ N(0, I) would be noise ~ sqrt(d) times larger
  than the data and (with T = 50, beta <= 0.02, alpha_bar_T ~ 0.6) far from the forward
  marginal the denoiser was trained on. ``normalize: false`` diffuses raw embeddings (DHNS).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

DIFFUSION_FILE = "diffusion.pt"
REPORT_FILE = "diffusion_report.json"
CONDITIONS = ("ccd", "null", "query")
SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0")
REVERSE_SAMPLERS = ("ddpm", "ddim")
CHAIN_STARTS = ("noise", "forward")


# ----------------------------------------------------------------------------------------
# schedule and forward process
# ----------------------------------------------------------------------------------------
def entity_beta_max(zeta: torch.Tensor, beta_low: float, beta_global: float, mu: float) -> torch.Tensor:
    """``beta_max(e) = clip(beta_global * (1 + mu * (zeta - 0.5)), beta_low, 0.999)``: harder -> noisier."""
    return (beta_global * (1.0 + mu * (zeta.float() - 0.5))).clamp(beta_low, 0.999)


def linear_betas(beta_max: torch.Tensor, steps: int, beta_low: float) -> torch.Tensor:
    """Per-row linear schedule ``beta_s = beta_low + (s-1)/(T-1) (beta_max - beta_low)`` -> [..., T].

    Column ``s - 1`` holds ``beta_s`` for ``s = 1..T``.
    """
    frac = (
        torch.linspace(0.0, 1.0, steps, device=beta_max.device) if steps > 1 else torch.zeros(1, device=beta_max.device)
    )
    return beta_low + frac * (beta_max.unsqueeze(-1) - beta_low)


def cosine_alpha_bars(zeta: torch.Tensor, steps: int, mu: float, offset: float = 0.008) -> torch.Tensor:
    """Difficulty-adaptive cosine schedule -> alpha-bars [..., T].

    Nichol & Dhariwal (2021): ``abar(s) = f(s) / f(0)``, ``f(s) = cos^2((s/T + o) / (1 + o) * pi/2)``,
    so ``abar_T`` = 0 (the chain starts from the forward marginal at T, unlike the linear schedule
    with beta <= 0.02). Our reading of the paper's "harder entities get stronger perturbation" for
    it: ``abar_e(s) = abar(s) ** m_e`` with ``m_e = max(1 + mu (zeta - 0.5), 0.05)``.
    """
    s = torch.arange(0, steps + 1, device=zeta.device, dtype=torch.float64) / steps
    f = torch.cos((s + offset) / (1.0 + offset) * math.pi / 2.0) ** 2
    base = (f[1:] / f[0]).clamp(0.0, 1.0).to(torch.float32)  # [T]
    power = (1.0 + mu * (zeta.float() - 0.5)).clamp_min(0.05).unsqueeze(-1)  # [..., 1]
    return base**power


def schedule(
    zeta: torch.Tensor, steps: int, beta_low: float, beta_global: float, mu: float, kind: str = "linear"
) -> dict[str, torch.Tensor]:
    """Betas, alphas and cumulative alpha-bars [..., T] for entities of difficulty ``zeta``.

    ``kind``: ``linear`` (the base reading: beta_low .. beta_max(e)) or ``cosine`` (``cosine_alpha_bars``;
    beta_low / beta_global unused). Betas are capped at 0.999 (DDPM's clip), alpha-bars follow.
    """
    if kind == "linear":
        betas = linear_betas(entity_beta_max(zeta, beta_low, beta_global, mu), steps, beta_low)
    elif kind == "cosine":
        abar = cosine_alpha_bars(zeta, steps, mu)
        prev = torch.cat([torch.ones_like(abar[..., :1]), abar[..., :-1]], dim=-1)
        betas = (1.0 - abar / prev.clamp_min(1e-12)).clamp(0.0, 0.999)
    else:
        raise ValueError(f"diffusion.schedule = {kind!r}; expected one of {', '.join(SCHEDULES)}")
    alphas = 1.0 - betas
    return {"betas": betas, "alphas": alphas, "alpha_bars": torch.cumprod(alphas, dim=-1)}


def q_sample(x0: torch.Tensor, alpha_bar_s: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Closed-form forward marginal ``x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps``; ``alpha_bar_s`` is [B]."""
    a = alpha_bar_s.unsqueeze(-1)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


def band_checkpoints(fractions: Sequence[float], steps: int) -> list[int]:
    """Reverse-chain states kept as bands: fraction f of T -> state index floor(f * T) (0 = fully denoised)."""
    out = [int(math.floor(float(f) * steps + 1e-9)) for f in fractions]
    if any(s < 0 or s > steps for s in out):
        raise ValueError(f"band steps {list(fractions)} must be fractions in [0, 1] of T = {steps}")
    return out


def sinusoidal_embedding(s: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of the integer step ``s`` [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / max(half, 1))
    ang = s.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


# ----------------------------------------------------------------------------------------
# denoiser
# ----------------------------------------------------------------------------------------
class Denoiser(nn.Module):
    """``eps_theta(x_s, s, c)``: MLP over [x_s ; sinusoidal(s) ; c] with SiLU.

    The first layer is split by input block so the reverse chain computes the condition's and
    the step's contributions once per chain / once per step instead of once per row and step.
    """

    def __init__(self, width: int, cond_dim: int, hidden: Sequence[int] = (256, 256), time_dim: int = 64):
        super().__init__()
        self.width, self.cond_dim, self.time_dim = width, cond_dim, time_dim
        dims = [width + time_dim + cond_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.out = nn.Linear(dims[-1], width)

    @property
    def first(self) -> nn.Linear:
        """The first layer (the one split by input block)."""
        return cast(nn.Linear, self.layers[0])  # nn.ModuleList is not generic: its items are typed Module

    def first_parts(self, cond: torch.Tensor) -> torch.Tensor:
        """The condition's contribution (plus bias) to the first layer: [B, hidden0]."""
        w = self.first.weight[:, self.width + self.time_dim :]
        return F.linear(cond, w, self.first.bias)

    def step_part(self, s: torch.Tensor) -> torch.Tensor:
        """The step embedding's contribution to the first layer for steps ``s`` [B] -> [B, hidden0]."""
        w = self.first.weight[:, self.width : self.width + self.time_dim]
        return F.linear(sinusoidal_embedding(s, self.time_dim), w)

    def forward_parts(self, x: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """Finish the pass given the precomputed (condition + step + bias) part of layer 1."""
        h = F.silu(F.linear(x, self.first.weight[:, : self.width]) + pre)
        for layer in self.layers[1:]:
            h = F.silu(layer(h))
        return self.out(h)

    def forward(self, x: torch.Tensor, s: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(x, self.first_parts(cond) + self.step_part(s))


# ----------------------------------------------------------------------------------------
# the conditional diffusion model
# ----------------------------------------------------------------------------------------
class ConditionalDiffusion(nn.Module):
    """Schedule + condition encoder + denoiser for one embedding space.

    ``zeta`` [N] (difficulty) and ``clusters`` [N] (K-means type) are buffers, so they travel
    with checkpoints. ``condition``: ``ccd`` = [type embedding ; query], ``null`` = one learned
    vector for every row (w/o CCD), ``query`` = the query only (DHNS baseline).
    """

    # buffers (register_buffer), declared for the type checker: nn.Module types attributes it looks up as Module too
    zeta: torch.Tensor
    clusters: torch.Tensor
    data_scale: torch.Tensor

    def __init__(
        self,
        num_entities: int,
        width: int,
        zeta: torch.Tensor | np.ndarray | None = None,
        clusters: torch.Tensor | np.ndarray | None = None,
        num_clusters: int = 1,
        steps: int = 50,
        beta_low: float = 1e-4,
        beta_global: float = 0.02,
        mu: float = 1.0,
        hidden: Sequence[int] = (256, 256),
        time_dim: int = 64,
        type_dim: int = 32,
        condition: str = "ccd",
        normalize: bool = True,
        loss: str = "mse",
        side_flag: bool = False,
        schedule: str = "linear",
        prediction: str = "eps",
    ):
        super().__init__()
        if condition not in CONDITIONS:
            raise ValueError(f"diffusion condition '{condition}'; expected one of {CONDITIONS}")
        if loss not in ("mse", "l1"):
            raise ValueError(f"diffusion loss '{loss}'; expected mse or l1")
        if schedule not in SCHEDULES:
            raise ValueError(f"diffusion.schedule = {schedule!r}; expected one of {', '.join(SCHEDULES)}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"diffusion.prediction = {prediction!r}; expected one of {', '.join(PREDICTIONS)}")
        self.init_args = dict(
            num_entities=num_entities,
            width=width,
            num_clusters=num_clusters,
            steps=steps,
            beta_low=beta_low,
            beta_global=beta_global,
            mu=mu,
            hidden=list(hidden),
            time_dim=time_dim,
            type_dim=type_dim,
            condition=condition,
            normalize=normalize,
            loss=loss,
            side_flag=side_flag,
            schedule=schedule,
            prediction=prediction,
        )
        self.num_entities, self.width, self.steps = num_entities, width, steps
        self.beta_low, self.beta_global, self.mu = beta_low, beta_global, mu
        self.schedule_kind, self.prediction = schedule, prediction
        self.condition_mode, self.normalize, self.loss_kind = condition, normalize, loss
        self.side_flag = side_flag
        zeta_t = (
            torch.full((num_entities,), 0.5) if zeta is None else torch.as_tensor(np.asarray(zeta), dtype=torch.float32)
        )
        clus_t = (
            torch.zeros(num_entities, dtype=torch.long)
            if clusters is None
            else torch.as_tensor(np.asarray(clusters), dtype=torch.long)
        )
        if zeta_t.shape != (num_entities,) or clus_t.shape != (num_entities,):
            raise ValueError(
                f"zeta {tuple(zeta_t.shape)} and clusters {tuple(clus_t.shape)} "
                f"must have one entry per entity ({num_entities})"
            )
        if len(clus_t) and (int(clus_t.min()) < 0 or int(clus_t.max()) >= num_clusters):
            raise ValueError(
                f"cluster ids must lie in [0, {num_clusters}); got [{int(clus_t.min())}, {int(clus_t.max())}]"
            )
        self.register_buffer("zeta", zeta_t)
        self.register_buffer("clusters", clus_t)
        self.register_buffer("data_scale", torch.zeros(()))  # 0 = not set yet (set from the first embeddings seen)
        if condition == "ccd":
            self.type_embedding = nn.Embedding(num_clusters, type_dim)
            nn.init.normal_(self.type_embedding.weight, std=1.0)
            cond_dim = type_dim + width
        elif condition == "null":
            cond_dim = type_dim + width
            self.null_condition = nn.Parameter(torch.zeros(cond_dim))
        else:
            cond_dim = width
        if side_flag and condition != "null":  # +1: which side the target is on (+1 head, -1 tail)
            cond_dim += 1
        self.denoiser = Denoiser(width, cond_dim, hidden, time_dim)

    @classmethod
    def from_config(
        cls, num_entities: int, width: int, zeta: Any, clusters: Any, cfg: Mapping[str, Any]
    ) -> ConditionalDiffusion:
        """Build from the full config (sections ``diffusion`` and ``dam``)."""
        d = cfg["diffusion"]
        return cls(
            num_entities,
            width,
            zeta,
            clusters,
            num_clusters=int(cfg["dam"]["num_clusters"]),
            steps=int(d["steps"]),
            beta_low=float(d["beta_low"]),
            beta_global=float(d["beta_global"]),
            mu=float(d["mu"]),
            hidden=d["hidden"],
            time_dim=int(d["time_dim"]),
            type_dim=int(d["type_dim"]),
            condition="ccd" if d["condition"] == "ccd" else "null",
            normalize=bool(d.get("normalize", True)),
            side_flag=bool(d["side_flag"]),
            schedule=str(d["schedule"]),
            prediction=str(d["prediction"]),
        )

    # --- helpers ------------------------------------------------------------------------
    def set_difficulty(self, zeta: Any | None = None, clusters: Any | None = None) -> None:
        """Replace zeta / clusters (e.g. zeta = 0.5 for the w/o DAM ablation) in place."""
        with torch.no_grad():
            if zeta is not None:
                self.zeta.copy_(torch.as_tensor(np.asarray(zeta), dtype=torch.float32))
            if clusters is not None:
                self.clusters.copy_(torch.as_tensor(np.asarray(clusters), dtype=torch.long))

    @torch.no_grad()
    def ensure_scale(self, entity_weight: torch.Tensor) -> None:
        """Fix ``data_scale`` once from the embeddings (std of all coordinates); 1 when not normalising."""
        if float(self.data_scale) == 0.0:
            scale = float(entity_weight.detach().float().std()) if self.normalize else 1.0
            self.data_scale.fill_(scale if scale > 0 and math.isfinite(scale) else 1.0)

    def entity_schedule(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The schedule of each row's target entity: [B, T] tensors."""
        return schedule(self.zeta[target], self.steps, self.beta_low, self.beta_global, self.mu, self.schedule_kind)

    def condition(
        self, target: torch.Tensor, query: torch.Tensor, head_side: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``c`` for each row: [type(target) ; query / scale (; side)], the null vector, or the query (; side).

        With ``side_flag`` the condition also says whether the target is a head (+1) or a tail (-1):
        a non-translational backbone's head and tail queries live in different parts of its space.
        """
        if self.condition_mode == "null":
            return self.null_condition.expand(target.shape[0], -1)
        query = query.detach() / self.data_scale
        parts = [self.type_embedding(self.clusters[target]), query] if self.condition_mode == "ccd" else [query]
        if self.side_flag:
            if head_side is None:
                raise ValueError(
                    "this diffusion model is conditioned on the side (diffusion.side_flag); pass head_side"
                )
            parts.append(head_side.to(query.dtype).mul(2.0).sub(1.0).unsqueeze(-1))
        return torch.cat(parts, dim=-1)

    # --- training -----------------------------------------------------------------------
    def predict(
        self, x: torch.Tensor, s: torch.Tensor, cond: torch.Tensor, alpha_bar_s: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps_hat, x0_hat) at state ``x`` [B, w] of steps ``s`` [B], in the normalised space.

        Whatever the parameterisation, both estimates come back, so diagnostics compare models
        trained to predict noise and models trained to predict x0 on the same footing.
        """
        return self._both(self.denoiser(x, s, cond), x, alpha_bar_s.unsqueeze(-1))

    def _both(self, out: torch.Tensor, x: torch.Tensor, abar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prediction == "eps":
            return out, (x - (1.0 - abar).sqrt() * out) / abar.sqrt().clamp_min(1e-6)
        return (x - abar.sqrt() * out) / (1.0 - abar).sqrt().clamp_min(1e-6), out

    def loss(
        self,
        x0: torch.Tensor,
        target: torch.Tensor,
        query: torch.Tensor,
        generator: torch.Generator,
        head_side: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``L_diff = E ||eps - eps_theta(x_s, s, c)||^2`` (per-coordinate mean) on detached inputs;
        with ``prediction: x0`` the network predicts ``x0`` and the loss is ``E ||x0 - x0_theta||^2``."""
        if float(self.data_scale) == 0.0:
            raise RuntimeError("ConditionalDiffusion.loss before data_scale is set; call ensure_scale(entity_weight)")
        b = x0.shape[0]
        x0 = x0.detach() / self.data_scale
        s = torch.randint(1, self.steps + 1, (b,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        abar = self.entity_schedule(target)["alpha_bars"].gather(1, (s - 1).unsqueeze(1)).squeeze(1)
        pred = self.denoiser(q_sample(x0, abar, noise), s, self.condition(target, query, head_side))
        goal = noise if self.prediction == "eps" else x0
        return F.mse_loss(pred, goal) if self.loss_kind == "mse" else F.l1_loss(pred, goal)

    # --- sampling -----------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        target: torch.Tensor,
        query: torch.Tensor,
        generator: torch.Generator,
        keep: Sequence[int],
        sampling_steps: int = 0,
        head_side: torch.Tensor | None = None,
        reverse: str = "ddpm",
        x_start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reverse chain from x_T ~ N(0, I); returns the states at steps ``keep`` -> [B, len(keep), w].

        One chain for the whole batch; each row follows its target entity's schedule and
        condition. ``keep`` holds state indices (T = start noise, 0 = fully denoised).
        ``sampling_steps`` = 0 (or >= T) runs all T ancestral steps (exact DDPM). A smaller
        value respaces the chain (Nichol & Dhariwal 2021): it visits about that many steps,
        always including every kept state, with the betas implied by the alpha-bars of the
        visited steps, so each jump keeps the forward marginals of the T-step process.
        ``reverse``: ``ddpm`` (ancestral, fresh noise at every step) or ``ddim`` (Song et al. 2021,
        eta = 0: deterministic given x_T, so a respaced chain loses less). DDIM with
        ``sampling_steps = 1`` calls the denoiser once, at x_T, and reaches every kept state in one
        DDIM jump from there (each band its own one-step sub-sequence T -> s_k): the cheapest chain,
        whose bands lie on the path from x_T to the predicted x0. ``x_start`` [B, w]: start
        from the forward marginal ``q(x_T | x_start)`` instead of N(0, I) (e.g. the true target:
        with the linear schedule's alpha-bar_T ~ 0.5 that marginal is far from N(0, I)).
        """
        if reverse not in REVERSE_SAMPLERS:
            raise ValueError(f"diffusion.reverse = {reverse!r}; expected one of {', '.join(REVERSE_SAMPLERS)}")
        if float(self.data_scale) == 0.0:
            raise RuntimeError("ConditionalDiffusion.sample before data_scale is set; call ensure_scale(entity_weight)")
        b, dev, T = target.shape[0], query.device, self.steps
        keep = [int(k) for k in keep]
        if any(k < 0 or k > T for k in keep):
            raise ValueError(f"reverse-chain checkpoints {keep} must lie in [0, T = {T}]")
        visit = reverse_steps(T, keep, sampling_steps)  # descending, T ... 0
        abars = self.entity_schedule(target)["alpha_bars"]
        abars_all = torch.cat([torch.ones_like(abars[:, :1]), abars], dim=1)  # [B, T+1]; index s -> abar_s
        noise = torch.randn((len(visit), b, self.width), generator=generator).to(dev)
        pre_cond = self.denoiser.first_parts(self.condition(target, query, head_side))
        keep_at: dict[int, list[int]] = {}
        for i, k in enumerate(keep):  # a step may be kept more than once (e.g. T/10 and T/8 for small T)
            keep_at.setdefault(k, []).append(i)
        out = torch.empty((b, len(keep), self.width), device=dev)
        x = noise[0]
        if x_start is not None:
            x = q_sample(x_start.detach() / self.data_scale, abars_all[:, T], x)
        for i in keep_at.get(T, ()):
            out[:, i] = x
        if reverse == "ddim" and sampling_steps == 1:
            net = self.denoiser.forward_parts(x, pre_cond + self.denoiser.step_part(torch.tensor([T], device=dev)))
            eps, x0 = self._both(net, x, abars_all[:, T : T + 1])
            for k, rows in keep_at.items():
                if k < T:
                    abar_k = abars_all[:, k : k + 1]
                    state = abar_k.sqrt() * x0 + (1.0 - abar_k).sqrt() * eps
                    for i in rows:
                        out[:, i] = state
            return out * self.data_scale
        step_parts = self.denoiser.step_part(torch.tensor(visit[:-1], device=dev))  # one per denoising step
        exact_eps = self.prediction == "eps" and reverse == "ddpm"
        for j, (s, s_prev) in enumerate(pairwise(visit)):
            abar, abar_prev = abars_all[:, s : s + 1], abars_all[:, s_prev : s_prev + 1]
            beta = 1.0 - abar / abar_prev  # the jump's effective beta
            net = self.denoiser.forward_parts(x, pre_cond + step_parts[j])
            if exact_eps:  # the base reading's chain, in its eps form
                x = (x - beta / (1.0 - abar).sqrt() * net) / (1.0 - beta).sqrt()
            else:
                eps, x0 = self._both(net, x, abar)
                if reverse == "ddim":
                    x = abar_prev.sqrt() * x0 + (1.0 - abar_prev).sqrt() * eps
                else:  # DDPM posterior mean in its x0 form
                    x = (abar_prev.sqrt() * beta * x0 + (1.0 - beta).sqrt() * (1.0 - abar_prev) * x) / (1.0 - abar)
            if s_prev > 0 and reverse == "ddpm":
                sigma = ((1.0 - abar_prev) / (1.0 - abar) * beta).clamp_min(0.0).sqrt()  # posterior std
                x = x + sigma * noise[j + 1]
            for i in keep_at.get(s_prev, ()):
                out[:, i] = x
        return out * self.data_scale


def reverse_steps(steps: int, keep: Sequence[int], sampling_steps: int = 0) -> list[int]:
    """States the reverse chain visits, descending from T to 0: all of them, or a respaced subset
    of about ``sampling_steps`` evenly spaced states plus every kept one."""
    if sampling_steps <= 0 or sampling_steps >= steps:
        return list(range(steps, -1, -1))
    grid = {int(round(x)) for x in np.linspace(0, steps, sampling_steps + 1)}
    return sorted(grid | {int(k) for k in keep} | {0, steps}, reverse=True)


# ----------------------------------------------------------------------------------------
# snapping continuous negatives to entities
# ----------------------------------------------------------------------------------------
@torch.no_grad()
def snap_to_entities(
    neg: torch.Tensor, pos: torch.Tensor, head_side: torch.Tensor, entity_weight: torch.Tensor, filter_index: Any
) -> torch.Tensor:
    """Nearest entity (Euclidean) of each generated embedding that does not form a known true triple.

    ``neg`` [B, K, w] replaces the head (``head_side``) or the tail of ``pos`` [B, 3]. ``entity_weight`` is the
    entity table [N, w], or one table per row [B, N, w] (``QuerySpace.candidates`` of a query-conditioned backbone).
    ``filter_index`` is a ``dans_kgc.evaluation.FilterIndex`` over the known triples.
    Returns ids [B, K]; -1 where every entity is a known answer (no valid negative exists).
    """
    b, k, _ = neg.shape
    ids = torch.full((b, k), -1, dtype=torch.long, device=neg.device)
    pos_np = pos.detach().cpu().numpy()
    head_np = head_side.detach().cpu().numpy().astype(bool)
    for side, rows in (("head", np.nonzero(head_np)[0]), ("tail", np.nonzero(~head_np)[0])):
        if len(rows) == 0:
            continue
        forbidden = filter_index.mask(pos_np[rows], side).to(neg.device)  # [b_s, N]
        rows_t = torch.from_numpy(rows).to(neg.device)
        if entity_weight.dim() == 3:  # one candidate table per query (a query-conditioned backbone)
            dist = torch.cdist(neg[rows_t].float(), entity_weight[rows_t].detach().float())
        else:
            # one 2-D cdist over all rows x bands (a batched cdist against an expanded entity table
            # materialises [rows, N, w] and was ~9x slower at Family's size)
            flat = neg[rows_t].float().reshape(len(rows) * k, -1)
            dist = torch.cdist(flat, entity_weight.detach().float()).view(len(rows), k, -1)
        dist = dist.masked_fill(forbidden.unsqueeze(1), float("inf"))  # [b_s, K, N]
        best = dist.argmin(dim=-1)
        ok = torch.isfinite(dist.gather(-1, best.unsqueeze(-1)).squeeze(-1))
        ids[rows_t] = torch.where(ok, best, torch.full_like(best, -1))
    return ids


# ----------------------------------------------------------------------------------------
# warm start (its own DAG stage), save / load
# ----------------------------------------------------------------------------------------
def _as_model(model_or_embeddings: Any) -> Any:
    """A KGEModel, or an (entity, relation) pair of TransE embeddings wrapped as a TransE."""
    if isinstance(model_or_embeddings, (tuple, list)):
        from dans_kgc.models.translational import TransE

        ent, rel = (torch.as_tensor(x, dtype=torch.float32) for x in model_or_embeddings)
        model = TransE(ent.shape[0], rel.shape[0], ent.shape[1], normalize_entities=False)
        with torch.no_grad():
            model.entity.weight.copy_(ent)
            model.relation.weight.copy_(rel)
        return model
    return model_or_embeddings


def diffusion_training_pairs(triples: torch.Tensor, head_side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, anchor) ids: the replaced entity and the kept one, for each triple and side."""
    target = torch.where(head_side, triples[:, 0], triples[:, 2])
    anchor = torch.where(head_side, triples[:, 2], triples[:, 0])
    return target, anchor


@torch.no_grad()
def graph_warm_start_pairs(
    model: Any, kg: Any, cfg: Mapping[str, Any], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(query, answer) representations [2M, d] of every train triple, tail side then head side, for a graph
    backbone's warm start (computed once: the backbone is fixed there, and a propagation per warm-start step
    would cost as much as training it).

    A triple's own edge is never in the graph it is propagated over, as in training under ``train.fact_ratio``:
    the triples are split into ``round(1 / (1 - fact_ratio))`` seeded folds, each propagated over the others
    (fact_ratio 0.75: 4 folds, each graph 3/4 of the triples, like a training epoch's). Without fact_ratio the
    graph is the whole training graph, as training then uses. The model leaves with the full graph attached.
    """
    train = torch.as_tensor(np.asarray(kg.train), dtype=torch.long)
    device = model.device
    ratio = float(cfg["train"].get("fact_ratio", 0.0) or 0.0)
    folds = max(2, int(round(1.0 / (1.0 - ratio)))) if ratio else 1
    fold_of = torch.randperm(len(train), generator=generator) % folds
    both = torch.cat([train, train])
    head_side = torch.cat([torch.zeros(len(train), dtype=torch.bool), torch.ones(len(train), dtype=torch.bool)])
    fold_both = torch.cat([fold_of, fold_of])
    width = int(model.dim)
    query, answer = torch.zeros(len(both), width), torch.zeros(len(both), width)
    chunk = max(1, int(cfg["train"]["eval_batch_size"]))
    was = model.training
    model.eval()
    try:
        for f in range(folds):
            model.attach_graph((train[fold_of != f] if folds > 1 else train).to(device))
            rows = (fold_both == f).nonzero().squeeze(1) if folds > 1 else torch.arange(len(both))
            for i in range(0, len(rows), chunk):
                r = rows[i : i + chunk]
                space = model.negative_space(both[r].to(device), head_side[r].to(device))
                query[r], answer[r] = space.query.cpu(), space.target.cpu()
    finally:
        model.attach_graph(train.to(device))
        model.train(was)
    return query.to(device), answer.to(device)


def fit_diffusion(
    kg: Any,
    model_or_embeddings: Any,
    zeta: Any,
    clusters: Any,
    cfg: Mapping[str, Any],
    generator: torch.Generator,
    diffusion: ConditionalDiffusion | None = None,
    epochs: int | None = None,
) -> tuple[ConditionalDiffusion, dict[str, Any]]:
    """Warm start: train the denoiser on fixed (pretrained) embeddings, both sides of every train triple.

    Returns the model and a report (loss per epoch). ``diffusion`` continues an existing model.
    """
    model = _as_model(model_or_embeddings)
    device = model.device
    if diffusion is None:
        diffusion = ConditionalDiffusion.from_config(
            kg.num_entities,
            entity_width(cfg["model"]) if getattr(model, "needs_graph", False) else model.entity_width,
            zeta,
            clusters,
            cfg,
        ).to(device)
    d = cfg["diffusion"]
    epochs = int(d["warmstart_epochs"] if epochs is None else epochs)
    bs = int(d["batch_size"])
    opt = torch.optim.Adam([p for p in diffusion.parameters() if p.requires_grad], lr=float(d["lr"]))
    train = torch.as_tensor(np.asarray(kg.train), dtype=torch.long)
    both = torch.cat([train, train])
    head_side = torch.cat([torch.zeros(len(train), dtype=torch.bool), torch.ones(len(train), dtype=torch.bool)])
    fixed = graph_warm_start_pairs(model, kg, cfg, generator) if getattr(model, "needs_graph", False) else None
    diffusion.ensure_scale(model.entity.weight.detach() if fixed is None else fixed[1])
    curve: list[float] = []
    start = time.perf_counter()
    diffusion.train()
    for _ in range(epochs):
        perm = torch.randperm(len(both), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(both), bs):
            idx = perm[i : i + bs]
            batch, heads = both[idx].to(device), head_side[idx].to(device)
            tgt, _ = diffusion_training_pairs(batch, heads)
            if fixed is None:
                with torch.no_grad():  # the embeddings are fixed data here
                    space = model.negative_space(batch, heads)
                query, x0 = space.query, space.target
            else:
                query, x0 = fixed[0][idx.to(fixed[0].device)], fixed[1][idx.to(fixed[1].device)]
            loss = diffusion.loss(x0, tgt, query, generator, heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        curve.append(total / max(count, 1))
    report = {
        "epochs": epochs,
        "loss_curve": curve,
        "final_loss": curve[-1] if curve else None,
        "examples_per_epoch": int(len(both)),
        "seconds": round(time.perf_counter() - start, 3),
        "data_scale": float(diffusion.data_scale),
        "loss": diffusion.loss_kind,
        "init_args": diffusion.init_args,
    }
    return diffusion, report


def save_diffusion(
    folder: str | Path,
    diffusion: ConditionalDiffusion,
    report: Mapping[str, Any],
    cfg: Mapping[str, Any],
    device: torch.device | str = "cpu",
    wall_seconds: float = 0.0,
    **extra: Any,
) -> Path:
    """Write ``diffusion.pt`` (weights + constructor arguments) and ``diffusion_report.json`` (+ provenance)."""
    from dans_kgc.provenance import provenance
    from dans_kgc.utils import torch_save, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in diffusion.state_dict().items()}
    torch_save(
        {"init_args": diffusion.init_args, "state": state, "stage_record": report.get("stage_record")},
        folder / DIFFUSION_FILE,
    )
    write_json(
        folder / REPORT_FILE, {**report, "provenance": provenance(cfg, torch.device(device), wall_seconds, **extra)}
    )
    return folder


def load_diffusion(folder: str | Path, map_location: str | torch.device = "cpu") -> ConditionalDiffusion:
    """Rebuild a saved ``ConditionalDiffusion`` (weights, zeta, clusters, data scale)."""
    path = Path(folder) / DIFFUSION_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no diffusion warm start here; run 'dans-kgc diffusion fit' first")
    ck = torch.load(path, map_location=map_location, weights_only=False)
    diff = ConditionalDiffusion(**ck["init_args"])
    diff.load_state_dict(ck["state"])
    return diff


def read_report(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / REPORT_FILE).read_text())


def entity_width(model_cfg: Mapping[str, Any]) -> int:
    """Entity width of a backbone config without building it (2*dim for complex-valued models)."""
    from dans_kgc.models import MODELS

    cls = MODELS[model_cfg["name"]]
    return int(cls.entity_width.fget(SimpleNamespace(dim=int(model_cfg["dim"]))))  # type: ignore[attr-defined]


__all__ = [
    "entity_beta_max",
    "linear_betas",
    "schedule",
    "q_sample",
    "band_checkpoints",
    "sinusoidal_embedding",
    "Denoiser",
    "ConditionalDiffusion",
    "snap_to_entities",
    "fit_diffusion",
    "save_diffusion",
    "load_diffusion",
    "read_report",
    "reverse_steps",
    "entity_width",
    "diffusion_training_pairs",
    "graph_warm_start_pairs",
]
