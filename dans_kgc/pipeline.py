"""Training and evaluation runs, stage fits and diagnostics: what each ``dans-kgc`` command does.

The command line (``cli.py``) parses its arguments and calls one function here; ``dans-kgc tune`` calls
:func:`run_training` once per trial (as PyKEEN's ``pipeline`` under its ``hpo_pipeline``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dans_kgc import diagnostics as dg
from dans_kgc.band_probe import STREAM_SAMPLERS, diagnostics_generator
from dans_kgc.baselines import calibration_source
from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, read_checkpoint, stage_record_of
from dans_kgc.config import OPEN_MAPPINGS, load_config, load_defaults, merge, migrate_keys
from dans_kgc.dam import check_dam, fit_dam_from_run, load_clusters, load_zeta, save_dam
from dans_kgc.datasets.custom import open_dataset
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diffusion import DIFFUSION_FILE, REPORT_FILE, entity_width, fit_diffusion, save_diffusion
from dans_kgc.evaluation import evaluate
from dans_kgc.models import MODELS, KGEModel, build_model
from dans_kgc.provenance import provenance
from dans_kgc.sampling import build_sampler
from dans_kgc.sampling.dans import DiffusionSampler
from dans_kgc.sampling.dhns import dhns_diffusion
from dans_kgc.stages import backbone_of, check_record, stage_record
from dans_kgc.trackers import RunTracking, log_evaluation
from dans_kgc.training import CHECKPOINT, Trainer, build_run
from dans_kgc.utils import resolve_device, seed_everything, set_threads, write_json, write_text

log = logging.getLogger(__name__)


def runtime(cfg: Mapping[str, Any]) -> torch.device:
    """Sets the configured thread count; returns the configured device."""
    set_threads(cfg["threads"])
    return resolve_device(cfg["device"])


def load_kg(cfg: Mapping[str, Any], name: str) -> tuple[KnowledgeGraph, str]:
    """The dataset split for the configured protocol, fetched on demand; returns (kg, protocol)."""
    kg = open_dataset(name, cfg)
    protocol = cfg["protocol"] or kg.variant
    return kg, protocol


def save_run_config(out: Path, cfg: Mapping[str, Any], dataset: str) -> None:
    """``out/config.yaml``: the dataset, then every config key (a valid ``--config`` for that dataset)."""
    write_text(out / "config.yaml", yaml.safe_dump({"dataset": dataset, **cfg}, sort_keys=False))


def read_run_config(run: Path) -> tuple[dict[str, Any], str]:
    """The config a run recorded (``save_run_config``) and its dataset."""
    path = run / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no run config here; is {run} the output folder of 'dans-kgc train'?")
    # a run recorded by an older version may hold renamed keys: every reader gets today's names (with a warning)
    data = migrate_keys(yaml.safe_load(path.read_text()), str(path))
    dataset = data.pop("dataset")
    return data, dataset


def backbone_info(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``backbone`` field of run.json / metrics: name, training mode, label and calibration source."""
    name, mode = cfg["model"]["name"], cfg["train"]["mode"]
    label = getattr(MODELS.get(name), "label", name)
    return {
        "name": name,
        "dim": cfg["model"]["dim"],
        "mode": mode,
        "label": f"{label} ({'1-N' if mode == 'one_to_n' else 'NS'})",
        "calibration_source": calibration_source(name),
    }


def run_training(
    cfg: dict[str, Any],
    dataset: str,
    out: Path,
    *,
    stage: str = "train",
    pretrained: Path | None = None,
    resume: bool = False,
    quiet: bool = True,
    tags: dict[str, str] | None = None,
    source: str | None = None,
    on_validation: Callable[[int, float], None] | None = None,
    trainer_hook: Callable[[Any], None] | None = None,
    **resources: Any,
) -> dict[str, Any]:
    """One training run into ``out`` (config.yaml, trace.csv, checkpoint.pt, model_best.pt, run.json); returns
    the Trainer's summary. ``on_validation`` goes to the Trainer (dans-kgc tune prunes there); ``trainer_hook``
    sees the Trainer before it starts (tune writes a pruned trial's trace with it)."""
    start = time.perf_counter()
    device = runtime(cfg)
    kg, protocol = load_kg(cfg, dataset)
    if stage == "train" and pretrained is None and cfg["train"]["init_from_pretrained"]:
        # a replay of a run that started from Stage 0 silently trains from scratch without it
        log.warning(
            "train.init_from_pretrained is true but no --pretrained folder was given: the backbone starts from "
            "random init (pass the Stage-0 run with --pretrained, or set train.init_from_pretrained=false)"
        )
    model, sampler = build_run(cfg, kg, pretrained, **resources)  # checks the stage outputs before writing anything
    save_run_config(out, cfg, dataset)
    tracking = RunTracking(cfg, out, dataset=dataset, resume=resume, tags=tags)  # tracker.name: none -> no-op
    trainer = Trainer(
        cfg,
        kg,
        model,
        sampler,
        out,
        device,
        protocol,
        show_progress=not quiet,
        on_validation=on_validation,
        on_epoch=[tracking.log_epoch],
    )
    optimizer_from = None
    if stage == "train" and cfg["train"]["resume_optimizer"]:
        if pretrained is None or not cfg["train"]["init_from_pretrained"]:
            raise ValueError(
                "train.resume_optimizer: true carries Stage 0's Adam state into this run, so it needs the Stage-0 "
                "run (--pretrained) and train.init_from_pretrained: true"
            )
        optimizer_from = trainer.carry_optimizer(pretrained)  # a resumed run's own checkpoint replaces it in fit
    if trainer_hook is not None:
        trainer_hook(trainer)
    record = None
    if stage == "pretrain":
        record = stage_record("pretrain", cfg, kg, backbone_of(cfg["model"], cfg["train"]["mode"]), source=source)
        trainer.stage_record = record
    summary = tracking.track(trainer.fit, resume=resume)
    tuned = (cfg.get("tuned") or {}) if stage == "train" else {}  # pretraining reads no tuned configuration
    recipe = dict(cfg.get("recipe") or {})  # where the backbone keys came from (--backbone): a record, not a setting
    write_json(
        out / "run.json",
        {
            "stage": stage,
            "dataset": kg.name,
            "split_variant": kg.variant,
            "protocol": protocol,
            "model": cfg["model"]["name"],
            "backbone": backbone_info(cfg),
            "sampler": cfg["train"]["sampler"],
            "seed": cfg["seed"],
            "stage_record": record,
            "recipe": recipe if recipe.get("name") else None,
            # the stage folders this run read (dans-kgc diagnose and provenance find them here)
            "stages": {
                "pretrained": str(pretrained) if pretrained else None,
                "dam": resources.get("dam_dir"),
                "diffusion": resources.get("diffusion_dir"),
            },
            "tags": tags or {},
            "dataset_report": kg.report,
            "summary": summary,
            "provenance": provenance(
                cfg,
                device,
                time.perf_counter() - start,
                dataset_sha256=kg.report["sha256"],
                pretrained=str(pretrained / "model_best.pt") if pretrained else None,
                **({"optimizer_from": optimizer_from} if optimizer_from else {}),
                # a configuration from `dans-kgc tune` (best.yaml): its study, trial, objective
                **({"tuned_from": dict(tuned)} if tuned.get("study") else {}),
            ),
        },
    )
    log.info(
        "%s %s: best valid MRR %.4f at epoch %d (%s)",
        stage,
        out,
        summary["best_valid_mrr"],
        summary["best_epoch"],
        summary["stop_reason"],
    )
    return summary


def evaluate_run(
    run: Path, split: str = "test", *, out: Path | None = None, save_ranks: bool = False, quiet: bool = True
) -> dict[str, Any]:
    """Filtered link-prediction metrics of a trained run folder on ``split``, written to ``out`` (default
    ``RUN/metrics_SPLIT.json``), with the optimistic and pessimistic ranks in ``RUN/ranks_SPLIT.npz`` when
    ``save_ranks``; returns what it wrote."""
    start = time.perf_counter()
    cfg, dataset = read_run_config(run)
    cfg = merge(load_defaults(), cfg, str(run / "config.yaml"))  # keys added since the run get defaults
    device = runtime(cfg)
    kg, protocol = load_kg(cfg, dataset)
    # model_best.pt is only written by training: rerunning it is the one way to get a readable file back
    remedy = (
        f"rerun 'dans-kgc train --out {run}' (delete {run / 'checkpoint.pt'} too if it is damaged), then evaluate again"
    )
    model = load_trained_model(run / BEST_MODEL, device, remedy)
    metrics, ranks = evaluate(
        model,
        kg,
        split,
        protocol,
        cfg["train"]["eval_batch_size"],
        device,
        cfg["data"]["max_eval_triples"],
        progress=not quiet,
    )
    best = read_checkpoint(run / BEST_MODEL, remedy=remedy)
    run_info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    result = {
        "dataset": kg.name,
        "model": cfg["model"]["name"],
        "backbone": backbone_info(cfg),
        "sampler": cfg["train"]["sampler"],
        "seed": cfg["seed"],
        "split": split,
        "mrr": metrics["mrr"],
        "hits@1": metrics["hits@1"],
        "hits@3": metrics["hits@3"],
        "hits@10": metrics["hits@10"],
        "num_ranked": metrics["num_ranked"],
        "tie_policy": metrics["tie_policy"],
        "protocol": protocol,
        "best_epoch": best["best_epoch"],
        "best_valid_mrr": best["best_valid_mrr"],
        "tags": run_info.get("tags", {}),
        "train_summary": run_info.get("summary"),
        "anchor_diagnostic": metrics.get("anchor_diagnostic", {}),
        "metrics": metrics,
        "dataset_report": kg.report,
        "provenance": provenance(cfg, device, time.perf_counter() - start, dataset_sha256=kg.report["sha256"]),
    }
    out = Path(out) if out else run / f"metrics_{split}.json"
    write_json(out, result)
    # a tracked run (tracker.json) gets these metrics too, at its last epoch
    log_evaluation(run, split, metrics, step=int((run_info.get("summary") or {}).get("epochs_run") or 0))
    if save_ranks:
        # typed Any: numpy's stub lets a **mapping fill savez's allow_pickle: bool too
        arrays: dict[str, Any] = {
            f"{k}_{s}": v
            for k, d in (("optimistic", ranks.optimistic), ("pessimistic", ranks.pessimistic))
            for s, v in d.items()
        }
        np.savez_compressed(run / f"ranks_{split}.npz", **arrays)
    return result


def fit_dam_stage(
    cfg: dict[str, Any],
    dataset: str,
    pretrained: str | Path,
    out: str | Path,
    *,
    target_pretrained: str | Path | None = None,
) -> dict[str, Any]:
    """Stage 1: zeta per entity from graph features and ``pretrained``'s embeddings, into ``out``; returns its
    report (held-out Spearman and MSE)."""
    device = runtime(cfg)
    kg, _ = load_kg(cfg, dataset)
    result = fit_dam_from_run(kg, pretrained, cfg, device, target_dir=target_pretrained)
    save_dam(result, out)
    r = result.report
    log.info(
        "DAM %s: held-out Spearman %.3f, MSE %.3g (%d train / %d held-out entities) -> %s",
        kg.name,
        r["holdout_spearman"],
        r["holdout_mse"],
        r["n_train"],
        r["n_holdout"],
        out,
    )
    return dict(r)


def fit_diffusion_stage(
    cfg: dict[str, Any],
    dataset: str,
    pretrained: str | Path,
    out: str | Path,
    *,
    kind: str = "dans",
    dam: str | Path | None = None,
) -> dict[str, Any]:
    """Stage 2 warm start: the denoiser of sampler ``kind`` (dans | dhns) trained on ``pretrained``'s embeddings
    (with ``dam``'s zeta and K-means types for dans), into ``out``; returns its report."""
    start = time.perf_counter()
    device = runtime(cfg)
    kg, _ = load_kg(cfg, dataset)
    best = Path(pretrained) / BEST_MODEL
    backbone = backbone_of(cfg["model"])
    check_record(
        stage_record_of(pretrained),
        str(best),
        kg=kg,
        backbone=backbone,
        what="a diffusion warm start in this backbone's space",
    )
    model = load_trained_model(best, device)
    gen = seed_everything(cfg["seed"])
    n = kg.num_entities
    dam_dir = str(dam) if dam else None  # as the report and the provenance record it
    zeta = clusters = diffusion = None
    if kind == "dhns":  # the baseline's own model: one schedule, query-only condition, no DAM
        diffusion = dhns_diffusion(n, entity_width(cfg["model"]), cfg).to(device)
    else:
        if dam:
            check_dam(dam, kg, cfg, "this diffusion warm start")
            clusters = load_clusters(dam, n)
            zeta = load_zeta(dam, n) if cfg["dans"]["use_dam"] else np.full(n, 0.5, dtype=np.float32)
        elif cfg["dans"]["use_dam"]:
            raise ValueError(
                "diffusion fit: --dam DIR is required (zeta and K-means types); "
                "for the w/o DAM ablation without a DAM folder set dans.use_dam=false"
            )
        else:
            zeta = np.full(n, 0.5, dtype=np.float32)
            log.warning("diffusion fit: no --dam; every entity gets the same type condition")
    diffusion, report = fit_diffusion(kg, model, zeta, clusters, cfg, gen, diffusion=diffusion)
    report.update(
        {
            "dataset": kg.name,
            "kind": kind,
            "pretrained": str(best),
            "dam": dam_dir,
            "use_dam": bool(cfg["dans"]["use_dam"]) if kind == "dans" else None,
            "stage_record": stage_record(f"diffusion_{kind}", cfg, kg, backbone),
        }
    )
    save_diffusion(out, diffusion, report, cfg, device, time.perf_counter() - start, pretrained=str(best), dam=dam_dir)
    log.info(
        "diffusion warm start %s (%s): %d epochs, final L_diff %.4f -> %s",
        kg.name,
        kind,
        report["epochs"],
        report["final_loss"] if report["final_loss"] is not None else float("nan"),
        out,
    )
    return report


def _merge_recorded(cfg: dict[str, Any], recorded: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """``recorded`` (a config saved with a run or warm start) merged over ``cfg``; keys this version no
    longer has are dropped with a warning instead of stopping the command (renamed ones are read under their new
    names)."""
    out = dict(cfg)
    for key, value in (recorded if prefix else migrate_keys(recorded, source)).items():
        if key not in out:
            log.warning("%s: config key '%s' is unknown to this version of dans-kgc; ignored", source, prefix + key)
        elif isinstance(out[key], dict) and isinstance(value, Mapping) and prefix + key not in OPEN_MAPPINGS:
            out[key] = _merge_recorded(out[key], value, source, f"{prefix}{key}.")
        else:  # a value, or a mapping of the user's names (datasets), taken whole
            out[key] = merge({key: out[key]}, {key: value}, source, prefix)[key]
    return out


def _diagnose_config(
    recorded: Mapping[str, Any], source: str, config_files: Iterable[str | Path], overrides: Iterable[str]
) -> dict[str, Any]:
    """Defaults, then the recorded config, then --config files and --set overrides (checked like any config)."""
    return load_config(list(config_files), list(overrides), base=_merge_recorded(load_defaults(), recorded, source))


def _load_saved_state(module: torch.nn.Module, state: Mapping[str, Any], path: Path, what: str) -> None:
    """``module.load_state_dict(state)``; a state that does not fit stops with one line naming ``path``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the saved {what} does not fit the run's config ({str(err).splitlines()[0]})"
        ) from None


def _load_run_state(
    run: Path, cfg: dict[str, Any], kg: KnowledgeGraph, at: str, device: torch.device
) -> tuple[KGEModel, dict[str, Any] | None, int, Path]:
    """(model, sampler state, epoch, file) of a run folder: its last checkpoint or its best model."""
    path = run / CHECKPOINT if at == "last" and (run / CHECKPOINT).exists() else run / BEST_MODEL
    if not path.exists():
        raise FileNotFoundError(f"{run}: neither {CHECKPOINT} nor {BEST_MODEL}; has 'dans-kgc train' finished there?")
    ck = read_checkpoint(path, device)
    if path.name == CHECKPOINT:
        state, epoch, model_cfg = ck["model"], int(ck["epoch"]), cfg["model"]
    else:
        state, epoch, model_cfg = ck["model"], int(ck["best_epoch"]), ck.get("model_config", cfg["model"])
    n = state["entity.weight"].shape[0] if "entity.weight" in state else kg.num_entities  # a graph backbone has none
    if n != kg.num_entities:
        raise ValueError(f"{path}: the model has {n} entities but {kg.name}/{kg.variant} has {kg.num_entities}")
    model = build_model(model_cfg, kg.num_entities, kg.num_relations)
    _load_saved_state(model, state, path, "model")
    model = model.to(device)
    model.attach_graph(torch.from_numpy(kg.train).to(device))  # a graph backbone propagates over the training graph
    return model.eval(), ck.get("sampler"), epoch, path


def diagnose(
    out: str | Path,
    *,
    run: str | Path | None = None,
    warm_start: str | Path | None = None,
    pretrained: str | Path | None = None,
    dam: str | Path | None = None,
    dataset: str | None = None,
    triples: int = 500,
    seed: int | None = None,
    at: str = "last",
    samplers: Sequence[str] = dg.SAMPLER_ORDER,
    config_files: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
) -> list[Path]:
    """Denoiser quality, hardness per band and false negatives across ``samplers`` (dans_kgc/diagnostics.py)
    of a training ``run`` folder or a diffusion ``warm_start`` on its ``pretrained`` backbone, written to
    OUT.json, OUT.md, OUT.png; ``config_files`` and ``overrides`` go over the config the run recorded."""
    start = time.perf_counter()
    if bool(run) == bool(warm_start):
        raise ValueError(
            "diagnose: give either --run RUN_DIR (a training run) or --warm-start DIFFUSION_DIR "
            "(with --pretrained PRETRAIN_DIR and --dataset D)"
        )
    if triples <= 0:
        raise ValueError(f"diagnose: --triples must be > 0, got {triples}")
    trace = None
    if run:
        run = Path(run)
        if not run.is_dir():
            raise FileNotFoundError(f"{run}: no such run folder")
        recorded, dataset = read_run_config(run)
        cfg = _diagnose_config(recorded, str(run / "config.yaml"), config_files, overrides)
        info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
        tags = info.get("tags") or {}
        seed = cfg["diagnostics"]["seed"] if seed is None else seed
        name = cfg["train"]["sampler"]
        label = "/".join(str(tags[k]) for k in ("experiment", "variant") if tags.get(k)) or run.name
        title = f"{dataset} {label} seed {cfg['seed']}"
        if info.get("status") == "failed":  # a diverged run recorded by the DAG: say so, do not fail the job
            result: dict[str, Any] = {
                "kind": dg.KIND,
                "settings": {"triples": triples, "seed": seed},
                "subject": {
                    "target": "run",
                    "run": str(run),
                    "status": "failed",
                    "error": info.get("error"),
                    "dataset": dataset,
                    "sampler": name,
                    "tags": tags,
                    "title": title,
                },
                "denoiser": None,
                "bands": None,
                "false_negatives": {"rows": [], "not_built": {}},
                "provenance": provenance(cfg, runtime(cfg), time.perf_counter() - start, run=str(run)),
            }
            return dg.write_outputs(result, out)
        device = runtime(cfg)
        kg, _ = load_kg(cfg, dataset)
        model, sampler_state, epoch, path = _load_run_state(run, cfg, kg, at, device)
        resources: dict[str, Any] = {}
        if name == "dans" and sampler_state and "ans.zeta" in sampler_state:
            resources = {
                "zeta": sampler_state["ans.zeta"].cpu().numpy(),
                "clusters": sampler_state["ans.clusters"].cpu().numpy(),
            }
        if name in dg.DIFFUSION_SAMPLERS and not sampler_state:
            raise ValueError(f"{path}: no sampler state saved; cannot rebuild this run's denoiser")
        sampler = build_sampler(name, kg, cfg, diagnostics_generator(seed, STREAM_SAMPLERS + 90), **resources)
        if sampler_state:
            _load_saved_state(sampler, sampler_state, path, "sampler state")
        sampler = sampler.to(device)
        state = f"backbone and sampler at epoch {epoch} ({path.name})"
        own = (
            f"cache from the run checkpoint (epoch {epoch})"
            if name == "nscaching"
            else f"the run's denoiser, epoch {epoch}"
            if name in dg.DIFFUSION_SAMPLERS
            else "stateless"
        )
        built = {name: (sampler, own)}
        trace = dg.trace_curves(run / "trace.csv")
        subject = {
            "target": "run",
            "run": str(run),
            "checkpoint": str(path),
            "epoch": epoch,
            "dataset": kg.name,
            "split": kg.variant,
            "backbone": backbone_info(cfg)["label"],
            "sampler": name,
            "tags": tags,
            "seed": cfg["seed"],
            "stages": info.get("stages"),
            "title": title,
            "state": state,
        }
        where: dict[str, str | None] = {"run": str(run), "checkpoint": str(path)}
    else:
        ws = Path(str(warm_start))
        if not (ws / DIFFUSION_FILE).exists():
            raise FileNotFoundError(
                f"{ws / DIFFUSION_FILE}: no diffusion warm start here; run 'dans-kgc diffusion fit'"
            )
        if not pretrained or not dataset:
            raise ValueError("diagnose --warm-start needs --pretrained PRETRAIN_DIR (its backbone) and --dataset D")
        report = json.loads((ws / REPORT_FILE).read_text()) if (ws / REPORT_FILE).exists() else {}
        recorded = dict((report.get("provenance") or {}).get("config") or {})
        kind = report.get("kind") or "dans"
        recorded["train"] = {**(recorded.get("train") or {}), "sampler": kind}
        cfg = _diagnose_config(recorded, str(ws / REPORT_FILE), config_files, overrides)
        seed = cfg["diagnostics"]["seed"] if seed is None else seed
        device = runtime(cfg)
        kg, _ = load_kg(cfg, dataset)
        backbone_dir = Path(pretrained)
        check_record(
            stage_record_of(backbone_dir),
            str(backbone_dir / BEST_MODEL),
            kg=kg,
            backbone=backbone_of(cfg["model"]),
            what="diagnosing this warm start",
        )
        model = load_trained_model(backbone_dir / BEST_MODEL, device)
        model.attach_graph(
            torch.as_tensor(kg.train, dtype=torch.long).to(device)
        )  # a graph backbone's propagation graph
        dam_dir = str(dam) if dam else None
        resources = {"diffusion_dir": str(ws), **({"dam_dir": dam_dir} if dam_dir else {})}
        sampler = build_sampler(kind, kg, cfg, diagnostics_generator(seed, STREAM_SAMPLERS + 90), **resources)
        sampler = sampler.to(device)
        placed = sampler.refresh(model)  # measured band placement: bands placed on this backbone first
        built = {kind: (sampler, "warm start on the pretrained backbone")}
        # the backbone as its Stage 0 trained it: the warm start's config holds no train.* keys (its training mode)
        backbone = json.loads((backbone_dir / "run.json").read_text())["backbone"]["label"]
        subject = {
            "target": "warm_start",
            "warm_start": str(ws),
            "pretrained": str(backbone_dir),
            "dam": dam_dir,
            "dataset": kg.name,
            "split": kg.variant,
            "backbone": backbone,
            "sampler": kind,
            "title": f"{kg.name} {kind} warm start {ws.name}",
            "state": "warm start on the pretrained backbone",
            **({"band_placement": placed} if placed else {}),
        }
        where = {"warm_start": str(ws), "pretrained": str(backbone_dir / BEST_MODEL), "dam": dam_dir}
    fn_samplers, not_built = dg.comparison_samplers(kg, cfg, seed, built, samplers)
    diffusion = sampler if isinstance(sampler, DiffusionSampler) else None
    result = dg.run_diagnostics(kg, cfg, model, diffusion, fn_samplers, not_built, triples, seed)
    result["subject"] = subject
    result["trace"] = trace
    result["provenance"] = provenance(cfg, device, time.perf_counter() - start, **where)
    paths = dg.write_outputs(result, out)
    bands = result.get("bands")
    summary = " / ".join(f"{r['quantile']:.3f}" for r in bands["rows"]) if bands else "no bands"
    log.info(
        "diagnose %s: band entity quantiles %s; denoiser MSE ratio %s (%.1f s) -> %s.{json,md,png}",
        subject["title"],
        summary,
        f"{result['denoiser']['mean_ratio']:.3f}" if result.get("denoiser") else "-",
        time.perf_counter() - start,
        out,
    )
    return paths
