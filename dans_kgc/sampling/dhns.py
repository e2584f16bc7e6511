"""Non-adaptive diffusion baseline in the style of DHNS (Niu et al. 2025; docs/method.md, "The baselines").

The same machinery as DANS-KGC (``dans_kgc.diffusion``, ``DiffusionSampler``) with what DANS
adds taken out: one linear schedule for every entity (mu = 0, no DAM), a denoiser conditioned
on the backbone's query only (no type), negatives at fixed reverse steps with fixed loss
weights and margin scales (no curriculum). As in DHNS the hard-negative term is normalised by
the number of levels with non-zero weight. Differences from DHNS's code, on purpose: MSE
diffusion loss by default (``samplers.dhns.loss: l1`` for DHNS's), detached inputs (no gradient
from L_diff into the KGE embeddings), head and tail chains fed their own states, seeded, and
the same ``(1 - eta) L_rand + eta L_hard + L_diff`` combination as DANS-KGC so that only the
sampler differs between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diffusion import ConditionalDiffusion, entity_width
from dans_kgc.sampling.dans import DiffusionSampler, load_warm_start


def dhns_diffusion(num_entities: int, width: int, cfg: Mapping[str, Any]) -> ConditionalDiffusion:
    """The baseline's diffusion model: one schedule for all entities, query-only condition."""
    d, s = cfg["diffusion"], cfg["samplers"]["dhns"]
    return ConditionalDiffusion(
        num_entities,
        width,
        None,
        None,
        num_clusters=1,
        steps=int(s["T"]),
        beta_low=float(s["beta_low"]),
        beta_global=float(s["beta_high"]),
        mu=0.0,
        hidden=d["hidden"],
        time_dim=int(d["time_dim"]),
        type_dim=int(d["type_dim"]),
        condition="query",
        normalize=bool(d.get("normalize", True)),
        loss=str(s["loss"]),
        side_flag=bool(d["side_flag"]),
    )


class DHNSSampler(DiffusionSampler):
    """Diffusion negatives at fixed steps ``samplers.dhns.steps`` with static weights and margins."""

    name = "dhns"
    hard_loss_name = "l_dhns"
    level_weights: torch.Tensor  # buffers (register_buffer), declared for the type checker
    level_margins: torch.Tensor

    def __init__(
        self,
        kg: KnowledgeGraph,
        cfg: Mapping[str, Any],
        num_negatives: int,
        generator: torch.Generator,
        diffusion_dir: str | None = None,
        **_: Any,
    ):
        s = cfg["samplers"]["dhns"]
        if not (len(s["steps"]) == len(s["weights"]) == len(s["margin_scales"])):
            raise ValueError("samplers.dhns.steps, weights and margin_scales must have the same length")
        if any(int(k) < 0 or int(k) > int(s["T"]) for k in s["steps"]):
            raise ValueError(f"samplers.dhns.steps {s['steps']} must lie in [0, T = {s['T']}]")
        ans = dhns_diffusion(kg.num_entities, entity_width(cfg["model"]), cfg)
        if diffusion_dir:
            load_warm_start(ans, diffusion_dir, "dhns", kg, cfg)
        super().__init__(
            kg,
            cfg,
            num_negatives,
            generator,
            ans,
            [int(k) for k in s["steps"]],
            eta=float(s["eta"]),
            base_sampler=str(cfg["dans"]["base_sampler"]),
        )
        w = torch.as_tensor([float(x) for x in s["weights"]])
        self.register_buffer("level_weights", w / max(int((w != 0).sum()), 1), persistent=False)
        self.register_buffer(
            "level_margins",
            float(s["margin"]) * torch.as_tensor([float(x) for x in s["margin_scales"]]),
            persistent=False,
        )

    def band_weights(self, tau: float, target: torch.Tensor) -> torch.Tensor:
        return self.level_weights.expand(target.shape[0], -1)

    def band_margins(self) -> torch.Tensor:
        return self.level_margins


__all__ = ["DHNSSampler", "dhns_diffusion"]
