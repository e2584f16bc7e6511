"""The ``dans-kgc`` command line. Every stage of the Snakemake DAG is one subcommand here."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dans_kgc.config import ConfigError, load_config

log = logging.getLogger("dans_kgc")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


def _config(args: argparse.Namespace) -> dict[str, Any]:
    tracker = [f"tracker.name={args.tracker}"] if getattr(args, "tracker", None) else []  # --tracker: a shortcut
    dataset, recipe = getattr(args, "dataset", None), None
    if getattr(args, "backbone", None):
        from dans_kgc.recipes import recipe_record

        recipe = recipe_record(args.backbone, dataset)
    return load_config(args.config or [], [*(args.set or []), *tracker], dataset=dataset, recipe=recipe)


def _add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE_OR_FILE",
        help="import a module or .py file first (registers samplers, backbones, report builders), or "
        "read a .yaml file of backbone recipes; repeatable",
    )


def _add_config_args(p: argparse.ArgumentParser, backbone: bool = False) -> None:
    _add_plugin_arg(p)
    if backbone:
        p.add_argument(
            "--backbone",
            metavar="RECIPE",
            help="backbone recipe: {recipes} (dans_kgc/recipes.yaml; yours via --plugin FILE.yaml), "
            "applied before --config and --set, which win",
        )
    p.add_argument(
        "--config", action="append", metavar="YAML", help="config file(s) merged over the defaults, in order"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one key, e.g. --set train.epochs=50")


def _add_tracker_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracker",
        metavar="NAME",
        help="log parameters and per-epoch metrics to an experiment tracker: {trackers} (same as --set "
        "tracker.name=NAME; other tracker.* keys: dir, experiment, uri)",
    )


# ----------------------------------------------------------------------------------------
# shared argument parsing
# ----------------------------------------------------------------------------------------
def parse_tags(items: list[str] | None) -> dict[str, str]:
    """``--tag experiment=main --tag variant=dans`` -> labels the report builders group by."""
    tags = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--tag expects key=value, got '{item}'")
        k, v = item.split("=", 1)
        tags[k] = v
    return tags


def _train_stage(args: argparse.Namespace, cfg: dict[str, Any], stage: str, **resources: Any) -> int:
    from dans_kgc.pipeline import run_training

    pretrained = Path(args.pretrained) if getattr(args, "pretrained", None) else None
    run_training(
        cfg,
        args.dataset,
        Path(args.out),
        stage=stage,
        pretrained=pretrained,
        resume=args.resume,
        quiet=args.quiet,
        tags=parse_tags(getattr(args, "tag", None)),
        source=getattr(args, "source", None),
        **resources,
    )
    return 0


# ----------------------------------------------------------------------------------------
# subcommands
# ----------------------------------------------------------------------------------------
@command("data fetch")
def cmd_data_fetch(args: argparse.Namespace) -> int:
    from dans_kgc.datasets import fetch_dataset
    from dans_kgc.datasets.checksums import file_checksums
    from dans_kgc.datasets.custom import resolve_dataset

    cfg = _config(args)
    spec = resolve_dataset(args.name, cfg)
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
    tuner = Tuner(
        cfg,
        args.dataset,
        Path(args.out),
        trials=trials,
        storage=args.storage,
        study_name=args.study_name,
        pretrained=Path(args.pretrained) if args.pretrained else None,
        stage_resources=resources,
        quiet=args.quiet,
    )
    info = tuner.run()
    print(Path(args.out) / "best.yaml")
    log.info(
        "tune %s: %d/%d trials finished (%d complete, %d pruned), best valid MRR %.4f (trial %d)",
        info["study"],
        info["budget"]["trials_finished"],
        trials,
        info["budget"]["complete"],
        info["budget"]["pruned"],
        info["best"]["value"],
        info["best"]["trial"],
    )
    return 0


@command("evaluate")
def cmd_evaluate(args: argparse.Namespace) -> int:
    from dans_kgc.pipeline import evaluate_run

    r = evaluate_run(
        Path(args.run), args.split, out=Path(args.out) if args.out else None, save_ranks=args.ranks, quiet=args.quiet
    )
    print(
        f"{r['dataset']} {args.split}: MRR {r['mrr']:.4f}  H@1 {r['hits@1']:.4f}  "
        f"H@3 {r['hits@3']:.4f}  H@10 {r['hits@10']:.4f}  ({r['num_ranked']} rankings, {r['protocol']})"
    )
    return 0


@command("dam fit")
def cmd_dam_fit(args: argparse.Namespace) -> int:
    from dans_kgc.pipeline import fit_dam_stage

    fit_dam_stage(_config(args), args.dataset, args.pretrained, args.out, target_pretrained=args.target_pretrained)
    return 0


@command("diffusion fit")
def cmd_diffusion_fit(args: argparse.Namespace) -> int:
    """Stage 2 warm start: train the denoiser on the backbone's pretrained embeddings (own DAG stage)."""
    from dans_kgc.pipeline import fit_diffusion_stage

    fit_diffusion_stage(_config(args), args.dataset, args.pretrained, args.out, kind=args.kind, dam=args.dam)
    return 0


@command("diagnose")
def cmd_diagnose(args: argparse.Namespace) -> int:
    """Denoiser quality, hardness per band and false negatives across samplers (dans_kgc/diagnostics.py)."""
    from dans_kgc.pipeline import diagnose

    paths = diagnose(
        args.out,
        run=args.run,
        warm_start=args.warm_start,
        pretrained=args.pretrained,
        dam=args.dam,
        dataset=args.dataset,
        triples=args.triples,
        seed=args.seed,
        at=args.at,
        samplers=[s.strip() for s in args.samplers.split(",") if s.strip()],
        config_files=args.config or [],
        overrides=args.set or [],
    )
    for path in paths:
        print(path)
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from dans_kgc.reports import build_report

    options = parse_tags(args.option)  # free KEY=VALUE options for plugin builders
    options.update(
        {
            "target_mrr": args.target_mrr,
            "target_fraction": args.target_fraction,
            "digits": args.digits,
            "split": args.split,
        }
    )
    written = build_report(
        args.kind,
        args.runs,
        args.out,
        title=args.title,
        experiments=args.experiment,
        plugins=args.plugin or (),
        **options,
    )
    for path in written:
        print(path)
    return 0


@command("plan")
def cmd_plan(args: argparse.Namespace) -> int:
    from dans_kgc.costs import load_cost_model, preset_cost
    from dans_kgc.planning import load_workflow_config, plan_jobs

    workflow_config = load_workflow_config(args.workflow_config, {"preset": args.preset})
    jobs = plan_jobs(workflow_config, args.preset, targets=args.targets)
    cost = preset_cost(jobs, load_cost_model(args.costs), data_root=workflow_config.get("data_root", "data"))
    if args.measured:
        if not Path(args.measured).is_dir():
            raise FileNotFoundError(
                f"--measured {args.measured}: no such folder (results/benchmarks, or a kept reference/P/benchmarks)"
            )
        cost.measure(jobs, args.measured)
    print(
        cost.markdown(
            f"{args.preset}`, target `{'all' if args.targets == 'all' else 'all_' + args.targets}", args.cores
        ),
        end="",
    )
    return 0


@command("results keep")
def cmd_results_keep(args: argparse.Namespace) -> int:
    from dans_kgc.results_store import keep, parse_size

    outcome = keep(
        args.preset,
        results_root=args.results_root,
        figures_root=args.figures,
        into=args.into,
        name=args.name,
        only=args.only or (),
        max_bytes=parse_size(args.max_size),
        dry_run=args.dry_run,
    )
    print(outcome.summary())
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(outcome.as_dict(), indent=1) + "\n")
    return 0


# ----------------------------------------------------------------------------------------
# help: the valid names are read from the registries when a help is printed (plugins included),
# so building the parser imports no torch
# ----------------------------------------------------------------------------------------
def _names(names: Any) -> str:
    return ", ".join(sorted(names))


def _dataset_names() -> str:
    from dans_kgc.datasets.registry import DATASETS

    return _names(DATASETS) + ", or a name under the config's datasets key"


def _sampler_names() -> str:
    from dans_kgc.sampling import SAMPLERS

    return _names(SAMPLERS)


def _backbone_names() -> str:
    from dans_kgc.models import MODELS

    return _names(MODELS)


def _recipe_names() -> str:
    from dans_kgc.recipes import recipe_names

    return _names(recipe_names())


def _tracker_names() -> str:
    from dans_kgc.trackers import TRACKERS

    return _names(TRACKERS)


def _report_names() -> str:
    from dans_kgc.reports import REPORTS

    return _names(REPORTS)


# report options that are flags of `dans-kgc report`; any other builder option is --option KEY=VALUE
REPORT_FLAGS = {
    "digits": "--digits N",
    "split": "--split SPLIT",
    "target_mrr": "--target-mrr MRR",
    "target_fraction": "--target-fraction F",
}


def _report_builders() -> str:
    """Every registered report builder: name, table / figure, what it shows, the options it reads."""
    import textwrap

    from dans_kgc.reports import REPORTS

    width, indent = 100, " " * 24
    lines = []
    for name in sorted(REPORTS):
        spec = REPORTS[name]
        text = f"  {name:<21} {spec.kind}: {spec.help}" + (
            " (reads files, not run folders)" if spec.inputs == "files" else ""
        )
        lines += textwrap.wrap(text, width, subsequent_indent=indent)
        options = [f"{REPORT_FLAGS.get(k, f'--option {k}=VALUE')}: {v}" for k, v in spec.options.items()]
        if options:
            lines += textwrap.wrap(
                "options: " + "; ".join(options), width, initial_indent=indent, subsequent_indent=indent + "  "
            )
    return "\n".join(lines)


NAME_LISTS: dict[str, Callable[[], str]] = {
    "datasets": _dataset_names,
    "samplers": _sampler_names,
    "backbones": _backbone_names,
    "recipes": _recipe_names,
    "trackers": _tracker_names,
    "reports": _report_names,
    "report_builders": _report_builders,
}


def _fill_names(text: str) -> str:
    for key, names in NAME_LISTS.items():
        token = "{" + key + "}"
        if token in text:
            text = text.replace(token, names())
    return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written (examples) and fills in {datasets}, {samplers}, {backbones},
    {recipes}, {trackers}, {reports} and {report_builders} from the registries."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return _fill_names(super()._get_help_string(action) or "")

    def _format_text(self, text: str) -> str:
        return super()._format_text(_fill_names(text))


def _examples(*lines: str, more: str = "") -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines) + (f"\n\n{more}" if more else "")


def _parser(sub: Any, name: str, helptext: str, epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=helptext,
        description=helptext[:1].upper() + helptext[1:] + ".",
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


DATASET_HELP = "dataset name: {datasets}"
NAMES_EPILOG = (
    "samplers (--set train.sampler=NAME): {samplers}\n"
    "backbones (--set model.name=NAME): {backbones}\n"
    "backbone recipes (--backbone NAME): {recipes}\n"
    "datasets (--dataset NAME): {datasets}"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dans-kgc",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=_examples(
            "dans-kgc data fetch umls",
            "dans-kgc pretrain --dataset umls --out runs/umls/pretrain",
            "dans-kgc train --dataset umls --out runs/umls/uniform --pretrained runs/umls/pretrain",
            "dans-kgc evaluate --run runs/umls/uniform",
            "dans-kgc report main --runs runs/umls --out tables/main",
            more="Each command explains itself: dans-kgc COMMAND --help. Every key of the defaults "
            "(dans_kgc/defaults.yaml)\ncan be set with --config FILE or --set KEY=VALUE.",
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one stage of the study")

    data_parser = _parser(
        sub,
        "data",
        "fetch datasets and write their statistics",
        _examples("dans-kgc data fetch umls", "dans-kgc data stats umls nations --out tables/datasets"),
    )
    data = data_parser.add_subparsers(dest="data_cmd", required=True, metavar="ACTION", help="fetch | stats")
    p = _parser(
        data,
        "fetch",
        "fetch one dataset (mirror folder or canonical URL) and verify checksums",
        _examples(
            "dans-kgc data fetch umls",
            "dans-kgc data fetch fb15k-237 --variant kge",
            more="Prints the dataset folder, then 'SHA-256  FILE' of each file. Offline: set "
            "DANS_KGC_DATA_MIRROR to a mirror folder.",
        ),
    )
    p.add_argument("name", help=DATASET_HELP)
    p.add_argument("--variant", help="split variant (redgnn | kge); default from protocol / dataset")
    _add_config_args(p)
    p = _parser(
        data,
        "stats",
        "the dataset statistics table (CSV + Markdown)",
        _examples("dans-kgc data stats umls nations kinship --out tables/datasets"),
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="datasets, one or more: {datasets}")
    p.add_argument("--out", required=True, help="output path without extension")
    _add_config_args(p)

    for name, helptext, epilog in (
        (
            "pretrain",
            "Stage 0: pretrain a backbone (TransE by default) with uniform negatives",
            _examples(
                "dans-kgc pretrain --dataset umls --out runs/umls/pretrain",
                "dans-kgc pretrain --dataset umls --out runs/umls/pretrain-rotate --set model.name=rotate",
                more=NAMES_EPILOG,
            ),
        ),
        (
            "train",
            "train a backbone with a negative sampler",
            _examples(
                "dans-kgc train --dataset umls --out runs/umls/uniform --set train.sampler=uniform",
                "dans-kgc train --dataset umls --out runs/umls/dans --pretrained runs/umls/pretrain \\",
                "    --dam runs/umls/dam --diffusion runs/umls/diffusion --set train.sampler=dans",
                "dans-kgc train --dataset umls --out runs/umls/rotate --set model.name=rotate --tracker mlflow",
                more=NAMES_EPILOG + "\ntrackers (--tracker NAME): {trackers}",
            ),
        ),
    ):
        p = _parser(sub, name, helptext, epilog)
        p.add_argument("--dataset", required=True, help=DATASET_HELP)
        p.add_argument("--out", required=True, help="run folder (config, checkpoints, trace, best model)")
        p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument(
            "--tag",
            action="append",
            metavar="KEY=VALUE",
            help="label stored in run.json and metrics (e.g. experiment=main, variant=dans)",
        )
        _add_config_args(p, backbone=True)
        _add_tracker_arg(p)
        if name == "pretrain":
            p.add_argument(
                "--source",
                default="backbone",
                choices=("backbone", "transe", "transe_short", "random"),
                help="backbone: the configured backbone with its own recipe (TransE: the base reading's "
                "Stage 0); transe: the base reading's TransE whatever the backbone (DAM's semantic "
                "source); transe_short: that TransE for dam.short_epochs epochs; random: untrained "
                "(0 epochs)",
            )
        if name == "train":
            p.add_argument(
                "--pretrained", help="Stage-0 run folder of this backbone (initialisation, train.init_from_pretrained)"
            )
            p.add_argument("--dam", help="DAM output folder (zeta per entity)")
            p.add_argument("--diffusion", help="diffusion warm-start folder")

    p = _parser(
        sub,
        "tune",
        "equal-budget hyper-parameter search of the configured sampler (Optuna)",
        _examples(
            "dans-kgc tune --dataset umls --out studies/umls-uniform --trials 20 "
            "--set train.sampler=uniform --set tune.epochs=50",
            "dans-kgc train --dataset umls --out runs/umls/uniform-tuned --config studies/umls-uniform/best.yaml",
            more=NAMES_EPILOG + "\ntrackers (--tracker NAME, one tracked run per trial): {trackers}",
        ),
    )
    p.add_argument("--dataset", required=True, help=DATASET_HELP)
    p.add_argument("--out", required=True, help="study folder (study.db, study.json, best.yaml, trials/NNNN/)")
    p.add_argument(
        "--trials",
        type=int,
        help="trials in the study in total (default: config tune.trials); "
        "finished ones count, a rerun completes the rest",
    )
    p.add_argument(
        "--storage",
        help="Optuna RDB URL (default: sqlite:///OUT/study.db); e.g. "
        "postgresql://user@host/db for several workers on one study",
    )
    p.add_argument("--study-name", help="default: DATASET-SAMPLER-MODEL")
    p.add_argument("--pretrained", help="Stage-0 run folder of this backbone (as for train)")
    p.add_argument("--dam", help="DAM output folder (sampler dans)")
    p.add_argument("--diffusion", help="diffusion warm-start folder (samplers dans, dhns)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_args(p, backbone=True)
    _add_tracker_arg(p)

    dam_parser = _parser(
        sub,
        "dam",
        "Stage 1: Difficulty Assessment Module",
        _examples("dans-kgc dam fit --dataset umls --pretrained runs/umls/pretrain --out runs/umls/dam"),
    )
    dam = dam_parser.add_subparsers(dest="dam_cmd", required=True, metavar="ACTION", help="fit")
    p = _parser(
        dam,
        "fit",
        "fit zeta per entity from graph features and pretrained embeddings",
        _examples("dans-kgc dam fit --dataset umls --pretrained runs/umls/pretrain --out runs/umls/dam"),
    )
    p.add_argument("--dataset", required=True, help=DATASET_HELP)
    p.add_argument(
        "--pretrained",
        required=True,
        help="Stage-0 run folder of the semantic source (dam.semantic_source; holds model_best.pt)",
    )
    p.add_argument(
        "--target-pretrained",
        help="Stage-0 run folder whose ranks give the observed-difficulty target "
        "(required when dam.target_source is not 'semantic')",
    )
    p.add_argument("--out", required=True, help="output folder (entities.csv, dam_report.json)")
    _add_config_args(p, backbone=True)

    diff_parser = _parser(
        sub,
        "diffusion",
        "Stage 2: diffusion warm start",
        _examples(
            "dans-kgc diffusion fit --dataset umls --pretrained runs/umls/pretrain "
            "--dam runs/umls/dam --out runs/umls/diffusion"
        ),
    )
    diff = diff_parser.add_subparsers(dest="diffusion_cmd", required=True, metavar="ACTION", help="fit")
    p = _parser(
        diff,
        "fit",
        "train the conditional denoiser on the backbone's pretrained embeddings",
        _examples(
            "dans-kgc diffusion fit --dataset umls --pretrained runs/umls/pretrain --dam runs/umls/dam "
            "--out runs/umls/diffusion",
            "dans-kgc diffusion fit --dataset umls --pretrained runs/umls/pretrain --kind dhns "
            "--out runs/umls/diffusion-dhns",
        ),
    )
    p.add_argument("--dataset", required=True, help=DATASET_HELP)
    p.add_argument("--pretrained", required=True, help="Stage-0 run folder of the backbone (holds model_best.pt)")
    p.add_argument("--dam", help="DAM output folder (zeta, K-means types); required unless dans.use_dam=false")
    p.add_argument("--kind", default="dans", choices=("dans", "dhns"), help="which sampler's denoiser to fit")
    p.add_argument("--out", required=True, help="output folder (diffusion.pt, diffusion_report.json)")
    _add_config_args(p, backbone=True)

    p = _parser(
        sub,
        "evaluate",
        "filtered link-prediction metrics of a trained run",
        _examples(
            "dans-kgc evaluate --run runs/umls/uniform",
            "dans-kgc evaluate --run runs/umls/uniform --split valid --ranks",
            more="Writes RUN/metrics_SPLIT.json; a run trained with a tracker (RUN/tracker.json) gets "
            "the metrics\nthere too (SPLIT/mrr, SPLIT/hits@10, ...).",
        ),
    )
    p.add_argument("--run", required=True, help="run folder of 'dans-kgc train' (config.yaml, model_best.pt)")
    p.add_argument("--split", default="test", choices=("valid", "test"), help="which split to rank")
    p.add_argument("--out", help="metrics JSON path (default: RUN/metrics_SPLIT.json)")
    p.add_argument("--ranks", action="store_true", help="also store optimistic/pessimistic ranks (npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_plugin_arg(p)

    p = _parser(
        sub,
        "diagnose",
        "how good are the negatives: denoiser quality, hardness per band, false "
        "negatives across samplers (PREFIX.json, .md, .png)",
        _examples(
            "dans-kgc diagnose --run runs/umls/dans --out diagnostics/umls-dans",
            "dans-kgc diagnose --warm-start runs/umls/diffusion --pretrained runs/umls/pretrain "
            "--dataset umls --out diagnostics/umls-warm-start",
            more="samplers (--samplers): {samplers}",
        ),
    )
    p.add_argument("--run", help="training run folder (config.yaml, run.json, checkpoint.pt / model_best.pt)")
    p.add_argument("--warm-start", help="diffusion warm-start folder (diffusion.pt), diagnosed on --pretrained")
    p.add_argument("--pretrained", help="with --warm-start: Stage-0 run folder of the backbone it was fitted on")
    p.add_argument("--dam", help="with --warm-start: DAM folder (zeta, K-means types; default: the warm start's own)")
    p.add_argument("--dataset", help="with --warm-start: the dataset, one of {datasets}")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json, PREFIX.md, PREFIX.png")
    p.add_argument("--triples", type=int, default=500, help="seeded sample of train triples (default 500)")
    p.add_argument("--seed", type=int, help="diagnostics seed (default: config diagnostics.seed)")
    p.add_argument(
        "--at",
        default="last",
        choices=("last", "best"),
        help="with --run: the last checkpoint (backbone + sampler of the same step; default) or the best "
        "model (its sampler state is the final one)",
    )
    p.add_argument(
        "--samplers",
        default=",".join(("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans")),
        help="samplers of the false-negative table (comma-separated; diffusion ones only where built; "
        "default %(default)s); registered: {samplers}",
    )
    _add_config_args(p)

    p = _parser(
        sub,
        "plan",
        "a preset's jobs per dataset and stage and their predicted CPU hours, before it runs",
        _examples(
            "dans-kgc plan --preset quick",
            "dans-kgc plan --preset paper --targets tables --cores 32",
            "dans-kgc plan --preset twin --measured reference/twin/benchmarks",
            more="Prices the planner's jobs with the per-stage fits of benchmarks/bench_scale.py "
            "(--costs); jobs\nthe benchmark cannot price are listed as not modelled.",
        ),
    )
    p.add_argument("--preset", required=True, help="a preset of the workflow config (paper, quick, ...)")
    p.add_argument("--workflow-config", default="config.yaml", help="the workflow config (default config.yaml)")
    p.add_argument(
        "--costs",
        default="benchmarks/results/bench_scale.json",
        help="per-stage fits from benchmarks/bench_scale.py (run it on your machine for your numbers)",
    )
    p.add_argument("--cores", type=int, default=8, help="jobs at a time, for the wall-time bound (default 8)")
    p.add_argument(
        "--measured",
        metavar="DIR",
        help="set what the jobs measured beside the prediction: Snakemake's benchmark records in DIR "
        "(results/benchmarks, or a kept reference/P/benchmarks)",
    )
    p.add_argument(
        "--targets",
        default="all",
        choices=("all", "tables", "figures"),
        help="the Snakefile target priced: all (default), tables (all_tables) or figures (all_figures)",
    )
    _add_plugin_arg(p)

    p = _parser(
        sub,
        "report",
        "a table or figure from run folders, made by a registered report builder (KIND)",
        _examples(
            "dans-kgc report main --runs results/tiny/runs --out tables/main",
            "dans-kgc report efficiency --runs results/tiny/runs --out tables/efficiency --target-fraction 0.8",
            "dans-kgc report sensitivity --runs runs --out figures/sensitivity --option params=diffusion.mu,dans.eta",
            "dans-kgc report loss_table --plugin my_report.py --runs runs --out tables/loss",
            more="report builders (KIND; a table writes .csv/.md/.tex, a figure .png/.pdf; "
            "--plugin adds more):\n{report_builders}",
        ),
    )
    p.add_argument("kind", metavar="KIND", help="registered report builder: {reports}")
    p.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="RUN_DIR",
        help="run folders (a folder holding run folders is searched); missing ones show as missing cells",
    )
    p.add_argument(
        "--out", required=True, help="output path without extension (.csv/.md/.tex or .png/.pdf, .provenance.json)"
    )
    p.add_argument("--title", help="caption / figure title (default: the builder's)")
    p.add_argument("--experiment", action="append", help="tags.experiment to include (default: the report's own)")
    p.add_argument("--target-mrr", type=float, help="efficiency: absolute target validation MRR for time-to-target")
    p.add_argument(
        "--target-fraction",
        type=float,
        default=0.9,
        help="efficiency: without --target-mrr, target = this fraction of uniform's best validation MRR",
    )
    p.add_argument("--digits", type=int, default=3, help="decimals in tables")
    p.add_argument("--split", default="test", choices=("valid", "test"), help="which metrics_SPLIT.json to read")
    _add_plugin_arg(p)
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="builder option, e.g. metric=hits@10, params=diffusion.mu, style=lines, targets=FILE "
        "(each builder's options: see the list below)",
    )

    results_parser = _parser(
        sub, "results", "committed reference results", _examples("dans-kgc results keep --preset fidelity")
    )
    results = results_parser.add_subparsers(dest="results_cmd", required=True, metavar="ACTION", help="keep")
    p = _parser(
        results,
        "keep",
        "copy a preset's run files (small ones), tables and figures into INTO/NAME with a "
        "MANIFEST.json; replaces only what it kept itself",
        _examples(
            "dans-kgc results keep --preset fidelity",
            "dans-kgc results keep --preset quick --only umls/main --only tables --dry-run",
            more="Reads results/PRESET (the DAG's run folders and tables) and figures/PRESET; the "
            "snakemake target\nkeep_results runs it after the preset's tables and figures.",
        ),
    )
    p.add_argument("--preset", required=True, help="the workflow preset whose results to keep")
    p.add_argument("--from", dest="results_root", default="results", help="the DAG's results root (default results)")
    p.add_argument("--figures", default="figures", help="the DAG's figures root (default figures)")
    p.add_argument("--into", default="reference", help="reference root (default reference)")
    p.add_argument("--name", help="folder below --into (default: the preset)")
    p.add_argument(
        "--only",
        action="append",
        metavar="PATH",
        help="keep only DATASET[/EXPERIMENT[/VARIANT...]], tables, figures or benchmarks[/RULE] (shell wildcards; "
        "repeatable)",
    )
    p.add_argument("--max-size", default="1MB", help="larger files are skipped and listed (default 1MB)")
    p.add_argument("--dry-run", action="store_true", help="print what it would copy, write nothing")
    p.add_argument("--report", help="also write the outcome as JSON to this file")
    p.set_defaults(plugin=None)
    return parser


def _load_plugins_for_help(argv: list[str]) -> None:
    """``--plugin X --help``: import the plugins first, so the help lists what they register."""
    plugins = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--plugin"]
    plugins += [a.split("=", 1)[1] for a in argv if a.startswith("--plugin=")]
    from dans_kgc.reports import load_plugins

    load_plugins(plugins)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        _load_plugins_for_help(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
