"""Sampler registry: ``SAMPLERS[name]`` -> class. Register a new sampler with ``register``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.sampling.base import NegativeSampler, StepContext
from dans_kgc.sampling.classic import BernoulliSampler, SelfAdversarialSampler, UniformSampler
from dans_kgc.sampling.dans import DANSSampler
from dans_kgc.sampling.dhns import DHNSSampler
from dans_kgc.sampling.nscaching import NSCachingSampler
from dans_kgc.sampling.uniform_term import UniformTermSampler

SAMPLERS: dict[str, type[NegativeSampler]] = {}


def register(cls: type[NegativeSampler]) -> type[NegativeSampler]:
    SAMPLERS[cls.name] = cls
    return cls


for _cls in (UniformSampler, BernoulliSampler, SelfAdversarialSampler):
    register(_cls)
register(NSCachingSampler)
register(DANSSampler)
register(DHNSSampler)
register(UniformTermSampler)


def build_sampler(
    name: str, kg: KnowledgeGraph, cfg: Mapping[str, Any], generator: torch.Generator, **resources: Any
) -> NegativeSampler:
    """Instantiate a registered sampler. ``resources`` carries stage outputs (DAM, diffusion warm start)."""
    if name not in SAMPLERS:
        from dans_kgc.plugin_record import loaded_note

        raise KeyError(f"unknown sampler '{name}'; registered: {', '.join(sorted(SAMPLERS))}; {loaded_note()}")
    cls = SAMPLERS[name]
    # Pass only the stage outputs this sampler's constructor takes (uniform ignores a DAM folder).
    accepted = inspect.signature(cls.__init__).parameters
    return cls(
        kg, cfg, cfg["train"]["num_negatives"], generator, **{k: v for k, v in resources.items() if k in accepted}
    )


__all__ = ["NegativeSampler", "StepContext", "SAMPLERS", "register", "build_sampler"]


def stage_resources(cfg: Mapping[str, Any], dam: str | None = None, diffusion: str | None = None) -> dict[str, Any]:
    """Outputs of earlier DAG stages a sampler needs (paths; the sampler loads them)."""
    out: dict[str, Any] = {}
    if dam:
        out["dam_dir"] = dam
    if diffusion:
        out["diffusion_dir"] = diffusion
    return out
