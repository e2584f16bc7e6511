"""What each stage reads, and what each stage output says it was made for.

One declaration, two users:

* the DAG's planner (``dans_kgc/planning``) passes a stage only the overrides of keys it reads,
  as ``--set`` and as ``params:`` (Snakemake's rerun trigger), so changing a key reruns exactly
  the stages that read it;
* the CLI writes a *stage record* into every stage output (pretrain, DAM, diffusion warm start):
  backbone, dimension, dataset, split, and a fingerprint of the stage's keys. A later stage
  checks the record of what it is given and stops, naming both sides, when it was made for
  another backbone, space or dataset.

``tests/test_stages.py`` runs each stage on a config that records every key read and checks
the reads lie inside the declaration: a key a stage reads cannot be forgotten here unnoticed.
No torch import: the DAG parses this module at every start.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Samplers whose only effect is which discrete negatives are drawn or how they are weighted: a
# 1-N backbone scores every entity, so with one of these it would silently train as plain 1-N.
# The Trainer refuses the pair; the DAG leaves such pairs out of a preset's backbone crossing.
DRAW_ONLY_SAMPLERS = ("bernoulli", "self_adversarial", "nscaching")

# Keys no stage output depends on: where and how fast it runs, where files come from, where it is tracked.
RUNTIME_KEYS = ("threads", "device", "data.mirror", "tracker.name", "tracker.dir", "tracker.experiment", "tracker.uri")

# Patterns: an exact dotted key, or a prefix ending in ".". A stage reads a key when it
# matches an `include` pattern and no `exclude` pattern.
TRAIN_LOOP = ["train."]
STAGE_KEYS: dict[str, dict[str, list[str]]] = {
    "fetch": {"include": ["data.root", "protocol"]},
    "stats": {"include": ["data.root", "data.unseen_policy", "protocol"]},
    # Stage 0 trains a backbone (the base reading's TransE, or the configured backbone with its own recipe)
    "pretrain": {
        "include": ["seed", "protocol", "data.", "model.", "pretrain.", "train."],
        "exclude": ["train.sampler", "train.init_from_pretrained", "train.resume_optimizer"],
    },
    # pretrain.dim / model.*: which pretraining it expects (dam.semantic_source, checked by its stage record)
    "dam": {"include": ["seed", "protocol", "data.", "dam.", "model.", "pretrain.dim", "train.eval_batch_size"]},
    "diffusion_dans": {
        "include": [
            "seed",
            "protocol",
            "data.",
            "model.",
            "diffusion.",
            "dam.num_clusters",
            "dam.semantic_source",
            "pretrain.dim",
            "dans.use_dam",
        ],
        # band_steps: which reverse states a run keeps, not what the denoiser learns
        "exclude": [
            "diffusion.update_every",
            "diffusion.negatives",
            "diffusion.snap_filter",
            "diffusion.band_steps",
            "diffusion.band_placement",
            "diffusion.band_quantiles",
            "diffusion.reverse",
            "diffusion.chain_start",
            "diffusion.sample_fraction",
            "diffusion.sampling_steps",
            "diffusion.cache_epochs",
        ],
    },
    "diffusion_dhns": {
        "include": [
            "seed",
            "protocol",
            "data.",
            "model.",
            "diffusion.hidden",
            "diffusion.time_dim",
            "diffusion.type_dim",
            "diffusion.normalize",
            "diffusion.lr",
            "diffusion.side_flag",
            "diffusion.batch_size",
            "diffusion.warmstart_epochs",
            "samplers.dhns.",
        ]
    },
}
# The diffusion keys only a training run reads (reverse chain, joint updates), not its warm start.
JOINT_ONLY_DIFFUSION_KEYS = STAGE_KEYS["diffusion_dans"]["exclude"]


def matches(key: str, pattern: str) -> bool:
    return key == pattern or (pattern.endswith(".") and key.startswith(pattern))


@functools.cache  # pure in (stage, key); the DAG asks it millions of times planning a preset
def reads(stage: str, key: str) -> bool:
    """Whether ``stage`` reads the dotted config ``key``."""
    spec = STAGE_KEYS[stage]
    if key in RUNTIME_KEYS:
        return False
    return any(matches(key, p) for p in spec["include"]) and not any(matches(key, p) for p in spec.get("exclude", ()))


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def stage_keys(flat: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The entries of a flat (dotted) config that ``stage`` reads."""
    return {k: v for k, v in flat.items() if reads(stage, k)}


def fingerprint(values: Mapping[str, Any]) -> str:
    """Short, stable hash of a flat key -> value mapping."""
    text = json.dumps(dict(sorted(values.items())), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------
# stage records
# ----------------------------------------------------------------------------------------
def backbone_of(model_cfg: Mapping[str, Any], mode: str = "negative_sampling") -> dict[str, Any]:
    """The backbone identity a stage output was made in: name, dimension, training mode."""
    return {"name": str(model_cfg["name"]), "dim": int(model_cfg["dim"]), "mode": str(mode)}


def stage_record(
    stage: str, cfg: Mapping[str, Any], kg: Any, backbone: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    """What a stage output was made for (stored in its files; checked by ``check_record``)."""
    keys = stage_keys(flatten(cfg), stage)
    return {
        "stage": stage,
        "backbone": dict(backbone),
        "dataset": kg.name,
        "split": kg.variant,
        "num_entities": int(kg.num_entities),
        "num_relations": int(kg.num_relations),
        "fingerprint": fingerprint(keys),
        "keys": keys,
        **extra,
    }


class StageMismatchError(ValueError):
    """A stage output given to a later stage was made for another backbone, space or dataset."""


def _describe(rec: Mapping[str, Any]) -> str:
    b = rec.get("backbone") or {}
    return f"{b.get('name')} (dim {b.get('dim')}) on {rec.get('dataset')}/{rec.get('split')}"


def check_record(
    record: Mapping[str, Any] | None,
    where: str,
    *,
    kg: Any,
    backbone: Mapping[str, Any] | None = None,
    what: str = "this run",
) -> None:
    """Stop unless ``record`` (read from ``where``) was made for ``kg`` and, if given, ``backbone``.

    ``backbone`` compares name and dim (the space); the training mode may differ (a 1-N run may
    start from a negative-sampling pretraining of the same backbone).
    """
    mine = {"dataset": kg.name, "split": kg.variant, "num_entities": int(kg.num_entities)}
    if record is None:
        need = _describe({"backbone": dict(backbone or {}), **mine}) if backbone else f"{kg.name}/{kg.variant}"
        raise StageMismatchError(
            f"{where}: no stage record (made by an older dans-kgc or by hand), but {what} "
            f"needs an output made for {need}; rerun that stage"
        )
    bad = [k for k, v in mine.items() if record.get(k) != v]
    if backbone is not None:
        theirs = record.get("backbone") or {}
        bad += [f"backbone.{k}" for k in ("name", "dim") if theirs.get(k) != backbone.get(k)]
    if bad:
        want = {"backbone": dict(backbone or record.get("backbone") or {}), "dataset": kg.name, "split": kg.variant}
        raise StageMismatchError(
            f"{where} was made for {_describe(record)}, but {what} needs {_describe(want)} "
            f"(differs in {', '.join(bad)}); pass the output made for this backbone and dataset, or refit it"
        )


def differing_keys(record: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """Keys of the record's stage whose values differ from ``cfg``'s (for log messages)."""
    mine = stage_keys(flatten(cfg), record["stage"])
    theirs = record.get("keys") or {}
    return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))


# ----------------------------------------------------------------------------------------
# Stage 0: which backbone is pretrained
# ----------------------------------------------------------------------------------------
PRETRAIN_SOURCES = ("backbone", "transe", "transe_short", "random")
# The base reading's TransE at three budgets (the paper's open question on DAM's inputs): the full pretraining,
# a short one (dam.short_epochs) and none at all (its random initialisation)
TRANSE_SOURCES = ("transe", "transe_short", "random")


def pretrain_config(cfg: Mapping[str, Any], source: str = "backbone") -> dict[str, Any]:
    """Stage 0's run config: which backbone is pretrained, with which recipe.

    ``transe`` (and ``backbone`` when the backbone is TransE): the base reading's Stage 0, TransE of
    dimension ``pretrain.dim`` with uniform negatives and margin loss, ``pretrain.*`` settings.
    ``backbone`` for any other model: the configured backbone with its own recipe (``model.*``,
    ``train.*``: mode, loss, lr, batch, negatives, regularisation) and uniform negatives for
    ``pretrain.backbone_epochs`` epochs (null: ``pretrain.epochs``); the run that starts from it then continues
    in the same space.
    ``transe_short``: that TransE for ``dam.short_epochs`` epochs; ``random``: for 0 epochs (its
    initialisation), both only as DAM's semantic source.
    """
    if source not in PRETRAIN_SOURCES:
        raise ValueError(f"pretrain source {source!r}; expected one of {', '.join(PRETRAIN_SOURCES)}")
    out = copy.deepcopy(dict(cfg))
    p = cfg["pretrain"]
    if source in TRANSE_SOURCES or cfg["model"]["name"] == "transe":
        # read only by transe_short: its epochs land in train.epochs, which the stage fingerprint covers
        epochs = (
            int(cfg["dam"]["short_epochs"]) if source == "transe_short" else 0 if source == "random" else p["epochs"]
        )
        out["model"] = {
            **cfg["model"],
            "name": "transe",
            "dim": p["dim"],
            "p_norm": p["p_norm"],
            "regularizer": "none",
            "reg_weight": 0.0,
        }
        out["train"] = {
            **cfg["train"],
            "mode": "negative_sampling",
            "epochs": epochs,
            "lr": p["lr"],
            "batch_size": p["batch_size"],
            "num_negatives": p["num_negatives"],
            "margin": p["margin"],
            "loss": "margin",
            "sampler": "uniform",
        }
    else:
        epochs = p["epochs"] if p.get("backbone_epochs") is None else p["backbone_epochs"]
        out["train"] = {**cfg["train"], "epochs": epochs, "sampler": "uniform"}
    return out


def pretrained_backbone(cfg: Mapping[str, Any], source: str = "backbone") -> dict[str, Any]:
    """The backbone (name, dim, mode) that ``pretrain_config(cfg, source)`` trains."""
    p = pretrain_config(cfg, source)
    return backbone_of(p["model"], p["train"]["mode"])


def semantic_backbone(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The pretraining DAM reads its semantic features from (``dam.semantic_source``)."""
    return pretrained_backbone(cfg, str(cfg["dam"]["semantic_source"]))


def target_source(cfg: Mapping[str, Any]) -> str:
    """The pretraining whose ranks give DAM's observed-difficulty target (``dam.target_source``;
    ``semantic``: the semantic source's own model)."""
    src = str(cfg["dam"]["target_source"])
    return str(cfg["dam"]["semantic_source"]) if src == "semantic" else src
