"""The ``dans-kgc`` command line. Every stage of the Snakemake DAG is one subcommand here."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml

from dans_kgc.config import ConfigError, load_config, load_defaults, merge

log = logging.getLogger("dans_kgc")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return deco


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return load_config(args.config or [], args.set or [], dataset=getattr(args, "dataset", None))


def _add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", metavar="MODULE_OR_FILE",
                   help="import a module or .py file first (registers samplers, backbones, report builders); repeatable")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    _add_plugin_arg(p)
    p.add_argument("--config", action="append", metavar="YAML", help="config file(s) merged over the defaults, in order")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one key, e.g. --set train.epochs=50")


# ----------------------------------------------------------------------------------------
# shared run plumbing
# ----------------------------------------------------------------------------------------
def runtime(cfg: dict[str, Any]) -> Any:
    from dans_kgc.utils import resolve_device, set_threads

    set_threads(cfg["threads"])
    return resolve_device(cfg["device"])


def load_kg(cfg: dict[str, Any], name: str) -> tuple[Any, str]:
    """The dataset split for the configured protocol, fetched on demand; returns (kg, protocol)."""
    from dans_kgc.datasets.custom import open_dataset

    kg = open_dataset(name, cfg)
    protocol = cfg["protocol"] or kg.variant
    return kg, protocol


def save_run_config(out: Path, cfg: dict[str, Any], dataset: str) -> None:
    from dans_kgc.utils import write_text

    write_text(out / "config.yaml", yaml.safe_dump({"dataset": dataset, **cfg}, sort_keys=False))


def read_run_config(run: Path) -> tuple[dict[str, Any], str]:
    path = run / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no run config here; is {run} the output folder of 'dans-kgc train'?")
    data = yaml.safe_load(path.read_text())
    dataset = data.pop("dataset")
    return data, dataset


def parse_tags(items: Optional[list[str]]) -> dict[str, str]:
    """``--tag experiment=main --tag variant=dans`` -> labels the report builders group by."""
    tags = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--tag expects key=value, got '{item}'")
        k, v = item.split("=", 1)
        tags[k] = v
    return tags


def backbone_info(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``backbone`` field of run.json / metrics: name, training mode, label and calibration source."""
    from dans_kgc.baselines import calibration_source
    from dans_kgc.models import MODELS

    name, mode = cfg["model"]["name"], cfg["train"]["mode"]
    label = getattr(MODELS.get(name), "label", name)
    return {"name": name, "dim": cfg["model"]["dim"], "mode": mode,
            "label": f"{label} ({'1-N' if mode == 'one_to_n' else 'NS'})",
            "calibration_source": calibration_source(name)}


def _train_stage(args: argparse.Namespace, cfg: dict[str, Any], stage: str, **resources: Any) -> int:
    pretrained = Path(args.pretrained) if getattr(args, "pretrained", None) else None
    run_training(cfg, args.dataset, Path(args.out), stage=stage, pretrained=pretrained, resume=args.resume,
                 quiet=args.quiet, tags=parse_tags(getattr(args, "tag", None)),
                 source=getattr(args, "source", None), **resources)
    return 0


def run_training(cfg: dict[str, Any], dataset: str, out: Path, *, stage: str = "train",
                 pretrained: Optional[Path] = None, resume: bool = False, quiet: bool = True,
                 tags: Optional[dict[str, str]] = None, source: Optional[str] = None,
                 on_validation: Optional[Callable[[int, float], None]] = None,
                 trainer_hook: Optional[Callable[[Any], None]] = None, **resources: Any) -> dict[str, Any]:
    """One training run into ``out`` (config.yaml, trace.csv, checkpoint.pt, model_best.pt, run.json); returns
    the Trainer's summary. ``on_validation`` goes to the Trainer (dans-kgc tune prunes there); ``trainer_hook``
    sees the Trainer before it starts (tune writes a pruned trial's trace with it)."""
    from dans_kgc.provenance import provenance
    from dans_kgc.stages import backbone_of, stage_record
    from dans_kgc.training import Trainer, build_run
    from dans_kgc.utils import write_json

    start = time.perf_counter()
    device = runtime(cfg)
    kg, protocol = load_kg(cfg, dataset)
    model, sampler = build_run(cfg, kg, pretrained, **resources)  # checks the stage outputs before writing anything
    save_run_config(out, cfg, dataset)
    trainer = Trainer(cfg, kg, model, sampler, out, device, protocol, show_progress=not quiet,
                      on_validation=on_validation)
    if trainer_hook is not None:
        trainer_hook(trainer)
    record = None
    if stage == "pretrain":
        record = stage_record("pretrain", cfg, kg, backbone_of(cfg["model"], cfg["train"]["mode"]), source=source)
        trainer.stage_record = record
    summary = trainer.fit(resume=resume)
    tuned = (cfg.get("tuned") or {}) if stage == "train" else {}  # pretraining reads no tuned configuration
    write_json(out / "run.json", {
        "stage": stage, "dataset": kg.name, "split_variant": kg.variant, "protocol": protocol,
        "model": cfg["model"]["name"], "backbone": backbone_info(cfg), "sampler": cfg["train"]["sampler"],
        "seed": cfg["seed"], "stage_record": record,
        # the stage folders this run read (dans-kgc diagnose and provenance find them here)
        "stages": {"pretrained": str(pretrained) if pretrained else None, "dam": resources.get("dam_dir"),
                   "diffusion": resources.get("diffusion_dir")},
        "tags": tags or {}, "dataset_report": kg.report, "summary": summary,
        "provenance": provenance(cfg, device, time.perf_counter() - start, dataset_sha256=kg.report["sha256"],
                                 pretrained=str(pretrained / "model_best.pt") if pretrained else None,
                                 # a configuration from `dans-kgc tune` (best.yaml): its study, trial, objective
                                 **({"tuned_from": dict(tuned)} if tuned.get("study") else {})),
    })
    log.info("%s %s: best valid MRR %.4f at epoch %d (%s)", stage, out, summary["best_valid_mrr"],
             summary["best_epoch"], summary["stop_reason"])
    return summary


# ----------------------------------------------------------------------------------------
# subcommands
# ----------------------------------------------------------------------------------------
@command("data fetch")
def cmd_data_fetch(args: argparse.Namespace) -> int:
    from dans_kgc.datasets import fetch_dataset
    from dans_kgc.datasets.custom import resolve_dataset
    from dans_kgc.datasets.fetch import file_checksums

    cfg = _config(args)
    spec = resolve_dataset(args.name, cfg["data"])
    variant = args.variant or spec.variant_for(cfg["protocol"])
    out = fetch_dataset(args.name, cfg["data"]["root"], variant, cfg["data"]["mirror"], spec=spec)
    # the fetch record (the DAG's fetch.txt): the folder, then "SHA-256  file" of every file
    print(out)
    for filename, sha in file_checksums(out, spec, variant).items():
        print(f"{sha}  {filename}")
    return 0


@command("data stats")
def cmd_data_stats(args: argparse.Namespace) -> int:
    from dans_kgc.datasets.stats import dataset_statistics, write_table

    cfg = _config(args)
    table = dataset_statistics(args.names, cfg)
    write_table(table, args.out)
    print(table.to_string(index=False))
    return 0


@command("pretrain")
def cmd_pretrain(args: argparse.Namespace) -> int:
    from dans_kgc.stages import pretrain_config

    cfg = pretrain_config(_config(args), args.source)
    return _train_stage(args, cfg, "pretrain")


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from dans_kgc.sampling import stage_resources

    cfg = _config(args)
    resources = stage_resources(cfg, dam=args.dam, diffusion=args.diffusion)
    return _train_stage(args, cfg, "train", **resources)


@command("tune")
def cmd_tune(args: argparse.Namespace) -> int:
    """Equal-budget hyper-parameter search of one sampler on one backbone and dataset (dans_kgc/tuning.py)."""
    from dans_kgc.sampling import stage_resources
    from dans_kgc.tuning import Tuner

    cfg = _config(args)
    trials = args.trials if args.trials is not None else int(cfg["tune"]["trials"])
    if trials < 1:
        raise ValueError(f"--trials {trials}: expected >= 1")
    cfg["tune"]["trials"] = trials
    resources = stage_resources(cfg, dam=args.dam, diffusion=args.diffusion)
    tuner = Tuner(cfg, args.dataset, Path(args.out), trials=trials, storage=args.storage, study_name=args.study_name,
                  pretrained=Path(args.pretrained) if args.pretrained else None, stage_resources=resources,
                  quiet=args.quiet)
    info = tuner.run()
    print(Path(args.out) / "best.yaml")
    log.info("tune %s: %d/%d trials finished (%d complete, %d pruned), best valid MRR %.4f (trial %d)", info["study"],
             info["budget"]["trials_finished"], trials, info["budget"]["complete"], info["budget"]["pruned"],
             info["best"]["value"], info["best"]["trial"])
    return 0


@command("evaluate")
def cmd_evaluate(args: argparse.Namespace) -> int:
    from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, read_checkpoint
    from dans_kgc.evaluation import evaluate
    from dans_kgc.provenance import provenance
    from dans_kgc.utils import write_json

    start = time.perf_counter()
    run = Path(args.run)
    cfg, dataset = read_run_config(run)
    cfg = merge(load_defaults(), cfg, str(run / "config.yaml"))  # keys added since the run get defaults
    device = runtime(cfg)
    kg, protocol = load_kg(cfg, dataset)
    # model_best.pt is only written by training: rerunning it is the one way to get a readable file back
    remedy = (f"rerun 'dans-kgc train --out {run}' (delete {run / 'checkpoint.pt'} too if it is damaged), "
              "then evaluate again")
    model = load_trained_model(run / BEST_MODEL, device, remedy)
    metrics, ranks = evaluate(model, kg, args.split, protocol, cfg["train"]["eval_batch_size"], device,
                              cfg["data"]["max_eval_triples"], progress=not args.quiet)
    best = read_checkpoint(run / BEST_MODEL, remedy=remedy)
    run_info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    result = {
        "dataset": kg.name, "model": cfg["model"]["name"], "backbone": backbone_info(cfg),
        "sampler": cfg["train"]["sampler"], "seed": cfg["seed"],
        "split": args.split, "mrr": metrics["mrr"], "hits@1": metrics["hits@1"], "hits@3": metrics["hits@3"],
        "hits@10": metrics["hits@10"], "num_ranked": metrics["num_ranked"], "tie_policy": metrics["tie_policy"],
        "protocol": protocol, "best_epoch": best["best_epoch"], "best_valid_mrr": best["best_valid_mrr"],
        "tags": run_info.get("tags", {}), "train_summary": run_info.get("summary"),
        "anchor_diagnostic": metrics.get("anchor_diagnostic", {}),
        "metrics": metrics, "dataset_report": kg.report,
        "provenance": provenance(cfg, device, time.perf_counter() - start, dataset_sha256=kg.report["sha256"]),
    }
    out = Path(args.out) if args.out else run / f"metrics_{args.split}.json"
    write_json(out, result)
    if args.ranks:
        import numpy as np

        np.savez_compressed(run / f"ranks_{args.split}.npz", **{f"{k}_{s}": v for k, d in
                            (("optimistic", ranks.optimistic), ("pessimistic", ranks.pessimistic)) for s, v in d.items()})
    print(f"{kg.name} {args.split}: MRR {metrics['mrr']:.4f}  H@1 {metrics['hits@1']:.4f}  "
          f"H@3 {metrics['hits@3']:.4f}  H@10 {metrics['hits@10']:.4f}  ({metrics['num_ranked']} rankings, {protocol})")
    return 0


@command("dam fit")
def cmd_dam_fit(args: argparse.Namespace) -> int:
    from dans_kgc.dam import fit_dam_from_run, save_dam

    cfg = _config(args)
    device = runtime(cfg)
    kg, _ = load_kg(cfg, args.dataset)
    result = fit_dam_from_run(kg, args.pretrained, cfg, device, target_dir=args.target_pretrained)
    save_dam(result, args.out)
    r = result.report
    log.info("DAM %s: held-out Spearman %.3f, MSE %.3g (%d train / %d held-out entities) -> %s", kg.name,
             r["holdout_spearman"], r["holdout_mse"], r["n_train"], r["n_holdout"], args.out)
    return 0


@command("diffusion fit")
def cmd_diffusion_fit(args: argparse.Namespace) -> int:
    """Stage 2 warm start: train the denoiser on the backbone's pretrained embeddings (own DAG stage)."""
    import numpy as np

    from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, stage_record_of
    from dans_kgc.diffusion import fit_diffusion, save_diffusion
    from dans_kgc.stages import backbone_of, check_record, stage_record
    from dans_kgc.utils import seed_everything

    start = time.perf_counter()
    cfg = _config(args)
    device = runtime(cfg)
    kg, _ = load_kg(cfg, args.dataset)
    pretrained = Path(args.pretrained) / BEST_MODEL
    backbone = backbone_of(cfg["model"])
    check_record(stage_record_of(args.pretrained), str(pretrained), kg=kg, backbone=backbone,
                 what="a diffusion warm start in this backbone's space")
    model = load_trained_model(pretrained, device)
    gen = seed_everything(cfg["seed"])
    n = kg.num_entities
    zeta = clusters = diffusion = None
    if args.kind == "dhns":  # the baseline's own model: one schedule, query-only condition, no DAM
        from dans_kgc.sampling.dhns import dhns_diffusion

        from dans_kgc.diffusion import entity_width

        diffusion = dhns_diffusion(n, entity_width(cfg["model"]), cfg).to(device)
    else:
        if args.dam:
            from dans_kgc.dam import check_dam, load_clusters, load_zeta

            check_dam(args.dam, kg, cfg, "this diffusion warm start")
            clusters = load_clusters(args.dam, n)
            zeta = load_zeta(args.dam, n) if cfg["dans"]["use_dam"] else np.full(n, 0.5, dtype=np.float32)
        elif cfg["dans"]["use_dam"]:
            raise ValueError("diffusion fit: --dam DIR is required (zeta and K-means types); "
                             "for the w/o DAM ablation without a DAM folder set dans.use_dam=false")
        else:
            zeta = np.full(n, 0.5, dtype=np.float32)
            log.warning("diffusion fit: no --dam; every entity gets the same type condition")
    diffusion, report = fit_diffusion(kg, model, zeta, clusters, cfg, gen, diffusion=diffusion)
    report.update({"dataset": kg.name, "kind": args.kind, "pretrained": str(pretrained), "dam": args.dam,
                   "use_dam": bool(cfg["dans"]["use_dam"]) if args.kind == "dans" else None,
                   "stage_record": stage_record(f"diffusion_{args.kind}", cfg, kg, backbone)})
    save_diffusion(args.out, diffusion, report, cfg, device, time.perf_counter() - start,
                   pretrained=str(pretrained), dam=args.dam)
    log.info("diffusion warm start %s (%s): %d epochs, final L_diff %.4f -> %s", kg.name, args.kind, report["epochs"],
             report["final_loss"] if report["final_loss"] is not None else float("nan"), args.out)
    return 0


def _merge_recorded(cfg: dict[str, Any], recorded: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """``recorded`` (a config saved with a run or warm start) merged over ``cfg``; keys this version no
    longer has are dropped with a warning instead of stopping the command."""
    from dans_kgc.config import OPEN_MAPPINGS

    out = dict(cfg)
    for key, value in recorded.items():
        if key not in out:
            log.warning("%s: config key '%s' is unknown to this version of dans-kgc; ignored", source, prefix + key)
        elif isinstance(out[key], dict) and isinstance(value, Mapping) and prefix + key not in OPEN_MAPPINGS:
            out[key] = _merge_recorded(out[key], value, source, f"{prefix}{key}.")
        else:  # a value, or a mapping of the user's names (data.custom), taken whole
            out[key] = merge({key: out[key]}, {key: value}, source, prefix)[key]
    return out


def _diagnose_config(recorded: Mapping[str, Any], source: str, args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the recorded config, then --config files and --set overrides (checked like any config)."""
    return load_config(args.config or [], args.set or [], base=_merge_recorded(load_defaults(), recorded, source))


def _load_run_state(run: Path, cfg: dict[str, Any], kg: Any, at: str, device: Any) -> tuple[Any, Any, int, Path]:
    """(model, sampler state, epoch, file) of a run folder: its last checkpoint or its best model."""
    import torch

    from dans_kgc.checkpoints import BEST_MODEL, read_checkpoint
    from dans_kgc.models import build_model
    from dans_kgc.training import CHECKPOINT

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
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: the saved model does not fit the run's config ({str(err).splitlines()[0]})") from None
    model = model.to(device)
    model.attach_graph(torch.from_numpy(kg.train).to(device))  # a graph backbone propagates over the training graph
    return model.eval(), ck.get("sampler"), epoch, path


@command("diagnose")
def cmd_diagnose(args: argparse.Namespace) -> int:
    """Denoiser quality, hardness per band and false negatives across samplers (dans_kgc/diagnostics.py)."""
    import torch

    from dans_kgc import diagnostics as dg
    from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, stage_record_of
    from dans_kgc.diffusion import DIFFUSION_FILE, REPORT_FILE
    from dans_kgc.provenance import provenance
    from dans_kgc.sampling import build_sampler
    from dans_kgc.sampling.dans import DiffusionSampler
    from dans_kgc.stages import backbone_of, check_record

    start = time.perf_counter()
    if bool(args.run) == bool(args.warm_start):
        raise ValueError("diagnose: give either --run RUN_DIR (a training run) or --warm-start DIFFUSION_DIR "
                         "(with --pretrained PRETRAIN_DIR and --dataset D)")
    if args.triples <= 0:
        raise ValueError(f"diagnose: --triples must be > 0, got {args.triples}")
    trace = None
    if args.run:
        run = Path(args.run)
        if not run.is_dir():
            raise FileNotFoundError(f"{run}: no such run folder")
        recorded, dataset = read_run_config(run)
        cfg = _diagnose_config(recorded, str(run / "config.yaml"), args)
        info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
        tags = info.get("tags") or {}
        seed = cfg["diagnostics"]["seed"] if args.seed is None else args.seed
        name = cfg["train"]["sampler"]
        label = "/".join(str(tags[k]) for k in ("experiment", "variant") if tags.get(k)) or run.name
        title = f"{dataset} {label} seed {cfg['seed']}"
        if info.get("status") == "failed":  # a diverged run recorded by the DAG: say so, do not fail the job
            result = {"kind": dg.KIND, "settings": {"triples": args.triples, "seed": seed},
                      "subject": {"target": "run", "run": str(run), "status": "failed", "error": info.get("error"),
                                  "dataset": dataset, "sampler": name, "tags": tags, "title": title},
                      "denoiser": None, "bands": None, "false_negatives": {"rows": [], "not_built": {}},
                      "provenance": provenance(cfg, runtime(cfg), time.perf_counter() - start, run=str(run))}
            for path in dg.write_outputs(result, args.out):
                print(path)
            return 0
        device = runtime(cfg)
        kg, _ = load_kg(cfg, dataset)
        model, sampler_state, epoch, path = _load_run_state(run, cfg, kg, args.at, device)
        resources: dict[str, Any] = {}
        if name == "dans" and sampler_state and "ans.zeta" in sampler_state:
            resources = {"zeta": sampler_state["ans.zeta"].cpu().numpy(),
                         "clusters": sampler_state["ans.clusters"].cpu().numpy()}
        if name in dg.DIFFUSION_SAMPLERS and not sampler_state:
            raise ValueError(f"{path}: no sampler state saved; cannot rebuild this run's denoiser")
        sampler = build_sampler(name, kg, cfg, dg.diagnostics_generator(seed, dg.STREAM_SAMPLERS + 90), **resources)
        if sampler_state:
            try:
                sampler.load_state_dict(sampler_state)
            except RuntimeError as err:
                raise ValueError(f"{path}: the saved sampler state does not fit the run's config "
                                 f"({str(err).splitlines()[0]})") from None
        sampler = sampler.to(device)
        state = f"backbone and sampler at epoch {epoch} ({path.name})"
        own = (f"cache from the run checkpoint (epoch {epoch})" if name == "nscaching" else
               f"the run's denoiser, epoch {epoch}" if name in dg.DIFFUSION_SAMPLERS else "stateless")
        built = {name: (sampler, own)}
        trace = dg.trace_curves(run / "trace.csv")
        subject = {"target": "run", "run": str(run), "checkpoint": str(path), "epoch": epoch, "dataset": kg.name,
                   "split": kg.variant, "backbone": backbone_info(cfg)["label"], "sampler": name, "tags": tags,
                   "seed": cfg["seed"], "stages": info.get("stages"), "title": title, "state": state}
        where = {"run": str(run), "checkpoint": str(path)}
    else:
        ws = Path(args.warm_start)
        if not (ws / DIFFUSION_FILE).exists():
            raise FileNotFoundError(f"{ws / DIFFUSION_FILE}: no diffusion warm start here; run 'dans-kgc diffusion fit'")
        if not args.pretrained or not args.dataset:
            raise ValueError("diagnose --warm-start needs --pretrained PRETRAIN_DIR (its backbone) and --dataset D")
        report = json.loads((ws / REPORT_FILE).read_text()) if (ws / REPORT_FILE).exists() else {}
        recorded = dict((report.get("provenance") or {}).get("config") or {})
        kind = report.get("kind") or "dans"
        recorded["train"] = {**(recorded.get("train") or {}), "sampler": kind}
        cfg = _diagnose_config(recorded, str(ws / REPORT_FILE), args)
        seed = cfg["diagnostics"]["seed"] if args.seed is None else args.seed
        device = runtime(cfg)
        kg, _ = load_kg(cfg, args.dataset)
        pretrained = Path(args.pretrained)
        check_record(stage_record_of(pretrained), str(pretrained / BEST_MODEL), kg=kg, backbone=backbone_of(cfg["model"]),
                     what="diagnosing this warm start")
        model = load_trained_model(pretrained / BEST_MODEL, device)
        model.attach_graph(torch.as_tensor(kg.train, dtype=torch.long).to(device))  # a graph backbone's propagation graph
        resources = {"diffusion_dir": str(ws), **({"dam_dir": args.dam} if args.dam else {})}
        sampler = build_sampler(kind, kg, cfg, dg.diagnostics_generator(seed, dg.STREAM_SAMPLERS + 90), **resources)
        sampler = sampler.to(device)
        placed = sampler.refresh(model)  # measured band placement: bands placed on this backbone first
        built = {kind: (sampler, "warm start on the pretrained backbone")}
        # the backbone as its Stage 0 trained it: the warm start's config holds no train.* keys (its training mode)
        backbone = json.loads((pretrained / "run.json").read_text())["backbone"]["label"]
        subject = {"target": "warm_start", "warm_start": str(ws), "pretrained": str(pretrained), "dam": args.dam,
                   "dataset": kg.name, "split": kg.variant, "backbone": backbone, "sampler": kind,
                   "title": f"{kg.name} {kind} warm start {ws.name}", "state": "warm start on the pretrained backbone",
                   **({"band_placement": placed} if placed else {})}
        where = {"warm_start": str(ws), "pretrained": str(pretrained / BEST_MODEL), "dam": args.dam}
    wanted = [s.strip() for s in args.samplers.split(",") if s.strip()]
    fn_samplers, not_built = dg.comparison_samplers(kg, cfg, seed, built, wanted)
    diffusion = sampler if isinstance(sampler, DiffusionSampler) else None
    result = dg.run_diagnostics(kg, cfg, model, diffusion, fn_samplers, not_built, args.triples, seed)
    result["subject"] = subject
    result["trace"] = trace
    result["provenance"] = provenance(cfg, device, time.perf_counter() - start, **where)
    paths = dg.write_outputs(result, args.out)
    bands = result.get("bands")
    summary = (" / ".join(f"{r['quantile']:.3f}" for r in bands["rows"]) if bands else "no bands")
    log.info("diagnose %s: band entity quantiles %s; denoiser MSE ratio %s (%.1f s) -> %s.{json,md,png}",
             subject["title"], summary,
             f"{result['denoiser']['mean_ratio']:.3f}" if result.get("denoiser") else "-",
             time.perf_counter() - start, args.out)
    for path in paths:
        print(path)
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from dans_kgc.reports import build_report

    options = parse_tags(args.option)  # free KEY=VALUE options for plugin builders
    options.update({"target_mrr": args.target_mrr, "target_fraction": args.target_fraction, "digits": args.digits,
                    "split": args.split})
    written = build_report(args.kind, args.runs, args.out, title=args.title, experiments=args.experiment,
                           plugins=args.plugin or (), **options)
    for path in written:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dans-kgc", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch datasets and write their statistics").add_subparsers(dest="data_cmd", required=True)
    p = data.add_parser("fetch", help="fetch one dataset (mirror folder or canonical URL) and verify checksums")
    p.add_argument("name")
    p.add_argument("--variant", help="split variant (redgnn | kge); default from protocol / dataset")
    _add_config_args(p)
    p = data.add_parser("stats", help="the dataset statistics table (CSV + Markdown)")
    p.add_argument("names", nargs="+")
    p.add_argument("--out", required=True, help="output path without extension")
    _add_config_args(p)

    for name, helptext in (("pretrain", "Stage 0: TransE pretraining"), ("train", "train a backbone with a negative sampler")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--dataset", required=True)
        p.add_argument("--out", required=True, help="run folder (config, checkpoints, trace, best model)")
        p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--tag", action="append", metavar="KEY=VALUE",
                       help="label stored in run.json and metrics (e.g. experiment=main, variant=dans)")
        _add_config_args(p)
        if name == "pretrain":
            p.add_argument("--source", default="backbone", choices=("backbone", "transe", "transe_short", "random"),
                           help="backbone: the configured backbone with its own recipe (TransE: the base reading's Stage 0); "
                                "transe: the base reading's TransE whatever the backbone (DAM's semantic source); "
                                "transe_short: that TransE for dam.short_epochs epochs; random: untrained (0 epochs)")
        if name == "train":
            p.add_argument("--pretrained", help="Stage-0 run folder of this backbone (initialisation, "
                                                "train.init_from_pretrained)")
            p.add_argument("--dam", help="DAM output folder (zeta per entity)")
            p.add_argument("--diffusion", help="diffusion warm-start folder")

    p = sub.add_parser("tune", help="equal-budget hyper-parameter search of the configured sampler (Optuna)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="study folder (study.db, study.json, best.yaml, trials/NNNN/)")
    p.add_argument("--trials", type=int, help="trials in the study in total (default: config tune.trials); "
                                              "finished ones count, a rerun completes the rest")
    p.add_argument("--storage", help="Optuna RDB URL (default: sqlite:///OUT/study.db); e.g. "
                                     "postgresql://user@host/db for several workers on one study")
    p.add_argument("--study-name", help="default: DATASET-SAMPLER-MODEL")
    p.add_argument("--pretrained", help="Stage-0 run folder of this backbone (as for train)")
    p.add_argument("--dam", help="DAM output folder (sampler dans)")
    p.add_argument("--diffusion", help="diffusion warm-start folder (samplers dans, dhns)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_args(p)

    dam = sub.add_parser("dam", help="Stage 1: Difficulty Assessment Module").add_subparsers(dest="dam_cmd", required=True)
    p = dam.add_parser("fit", help="fit zeta per entity from graph features and pretrained embeddings")
    p.add_argument("--dataset", required=True)
    p.add_argument("--pretrained", required=True,
                   help="Stage-0 run folder of the semantic source (dam.semantic_source; holds model_best.pt)")
    p.add_argument("--target-pretrained", help="Stage-0 run folder whose ranks give the observed-difficulty target "
                                               "(required when dam.target_source is not 'semantic')")
    p.add_argument("--out", required=True, help="output folder (entities.csv, dam_report.json)")
    _add_config_args(p)

    diff = sub.add_parser("diffusion", help="Stage 2: diffusion warm start").add_subparsers(dest="diffusion_cmd", required=True)
    p = diff.add_parser("fit", help="train the conditional denoiser on the backbone's pretrained embeddings")
    p.add_argument("--dataset", required=True)
    p.add_argument("--pretrained", required=True, help="Stage-0 run folder of the backbone (holds model_best.pt)")
    p.add_argument("--dam", help="DAM output folder (zeta, K-means types); required unless dans.use_dam=false")
    p.add_argument("--kind", default="dans", choices=("dans", "dhns"), help="which sampler's denoiser to fit")
    p.add_argument("--out", required=True, help="output folder (diffusion.pt, diffusion_report.json)")
    _add_config_args(p)

    p = sub.add_parser("evaluate", help="filtered link-prediction metrics of a trained run")
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=("valid", "test"))
    p.add_argument("--out", help="metrics JSON path (default: RUN/metrics_SPLIT.json)")
    p.add_argument("--ranks", action="store_true", help="also store optimistic/pessimistic ranks (npz)")
    p.add_argument("--quiet", action="store_true")
    _add_plugin_arg(p)

    p = sub.add_parser("diagnose", help="how good are the negatives: denoiser quality, hardness per band, false "
                                        "negatives across samplers (PREFIX.json, .md, .png)")
    p.add_argument("--run", help="training run folder (config.yaml, run.json, checkpoint.pt / model_best.pt)")
    p.add_argument("--warm-start", help="diffusion warm-start folder (diffusion.pt), diagnosed on --pretrained")
    p.add_argument("--pretrained", help="with --warm-start: Stage-0 run folder of the backbone it was fitted on")
    p.add_argument("--dam", help="with --warm-start: DAM folder (zeta, K-means types; default: the warm start's own)")
    p.add_argument("--dataset", help="with --warm-start: the dataset")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json, PREFIX.md, PREFIX.png")
    p.add_argument("--triples", type=int, default=500, help="seeded sample of train triples (default 500)")
    p.add_argument("--seed", type=int, help="diagnostics seed (default: config diagnostics.seed)")
    p.add_argument("--at", default="last", choices=("last", "best"),
                   help="with --run: the last checkpoint (backbone + sampler of the same step; default) or the best "
                        "model (its sampler state is the final one)")
    p.add_argument("--samplers", default=",".join(("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns",
                                                   "dans")),
                   help="samplers of the false-negative table (comma-separated; diffusion ones only where built)")
    _add_config_args(p)

    p = sub.add_parser("report", help="a table or figure from run folders (main, ablation, efficiency, paper, "
                                      "sensitivity, curves, bands, or a plugin)")
    p.add_argument("kind", help="registered report builder (see dans_kgc/reports/__init__.py)")
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN_DIR",
                   help="run folders (a folder holding run folders is searched); missing ones show as missing cells")
    p.add_argument("--out", required=True, help="output path without extension (.csv/.md/.tex or .png/.pdf, .provenance.json)")
    p.add_argument("--title")
    p.add_argument("--experiment", action="append", help="tags.experiment to include (default: the report's own)")
    p.add_argument("--target-mrr", type=float, help="efficiency: absolute target validation MRR for time-to-target")
    p.add_argument("--target-fraction", type=float, default=0.9,
                   help="efficiency: without --target-mrr, target = this fraction of uniform's best validation MRR")
    p.add_argument("--digits", type=int, default=3, help="decimals in tables")
    p.add_argument("--split", default="test", choices=("valid", "test"), help="which metrics_SPLIT.json to read")
    _add_plugin_arg(p)
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="builder option, e.g. metric=hits@10, params=diffusion.mu, style=lines, targets=FILE")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sub_cmd = getattr(args, f"{args.command}_cmd", None)  # two-word commands: "data fetch", "dam fit", ...
    key = args.command + (f" {sub_cmd}" if sub_cmd else "")
    try:
        from dans_kgc.plugins import load_plugins

        load_plugins(args.plugin or ())  # before any registry is read: the config check reads MODELS
        return COMMANDS[key](args)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as err:
        log.error("%s", err)
        return 2
    except RuntimeError as err:  # the DAG's logs must name the failing run
        from dans_kgc.training import TrainingDivergedError

        if isinstance(err, TrainingDivergedError):
            log.error("%s", err)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
