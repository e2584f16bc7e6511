"""Backbone registry. A new backbone is one subclass of ``KGEModel`` added to ``MODELS``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dans_kgc.models.base import KGEModel
from dans_kgc.models.bilinear import ComplEx, DistMult
from dans_kgc.models.convolutional import ConvE
from dans_kgc.models.gnn import RedGNN
from dans_kgc.models.quaternion import QuatE
from dans_kgc.models.translational import RotatE, TransE

MODELS: dict[str, type[KGEModel]] = {m.name: m for m in (TransE, RotatE, DistMult, ComplEx, QuatE, ConvE, RedGNN)}


def build_model(cfg: Mapping[str, Any], num_entities: int, num_relations: int) -> KGEModel:
    """Build the backbone described by the ``model`` config section."""
    if cfg["name"] not in MODELS:
        from dans_kgc.plugin_record import loaded_note

        raise KeyError(
            f"unknown backbone (model.name) '{cfg['name']}'; registered: {', '.join(sorted(MODELS))}; {loaded_note()}"
        )
    cls = MODELS[cfg["name"]]
    kw = {k: v for k, v in cfg.items() if k != "name"}
    return cls(num_entities, num_relations, **kw)


__all__ = ["KGEModel", "MODELS", "build_model", "TransE", "RotatE", "DistMult", "ComplEx", "QuatE", "ConvE", "RedGNN"]
