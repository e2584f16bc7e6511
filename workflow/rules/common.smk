# Helpers of the DANS-KGC DAG: config validation, the run matrix (preset x dataset x
# experiment x variant x seed), the dans-kgc `--set` overrides each job passes (and so its
# `params:`, the rerun trigger), input functions and per-job resources. No rules here.
#
# Layout (see also config.yaml): results/{preset}/{dataset}/{pretrain,dam,diffusion/{dkey}}/,
# results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/, results/{preset}/tables/,
# figures/{preset}/, logs/{rule}/{preset}/..., results/benchmarks/{rule}/{preset}/... .

import hashlib
import os
import re
import shlex
import sys
from collections import namedtuple
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import dans_kgc
from dans_kgc.config import ConfigError, load_defaults, merge, validate_values

try:
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError:
    # say where: snakemake's message gives the schema's words but not the config key's path
    import jsonschema

    _schema = yaml.safe_load((Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml").read_text())
    _err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_schema).iter_errors(config))
    if _err is None:
        raise
    _where = ".".join(str(p) for p in _err.absolute_path) or "(top level)"
    raise WorkflowError(f"invalid config (config.yaml, --configfile or --config) at '{_where}': {_err.message}") from None

# Registered dataset names, read from the package's registry file directly: importing
# dans_kgc.datasets would import torch, seconds added to every Snakemake start (and to
# every cluster job, which parses this workflow again).
_REGISTRY = Path(dans_kgc.__file__).parent / "datasets" / "registry.yaml"
DATASETS = list(yaml.safe_load(_REGISTRY.read_text()))

# The shell commands call `dans-kgc`: put the folder of this Python first on the search
# path, so the workflow also works when started from a virtual environment that is not
# activated (its bin folder holds both snakemake and dans-kgc).
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, os.environ.get("PATH", "")]))

# Dataset mirror: config `data_mirror` wins over the environment variable; either way the
# jobs read it from DANS_KGC_DATA_MIRROR (declared with `envvars:` in the Snakefile, so
# cluster jobs get it too). Empty = download from the canonical URLs.
if config.get("data_mirror"):
    _mirror = os.path.abspath(config["data_mirror"])
    os.environ["DANS_KGC_DATA_MIRROR"] = _mirror
os.environ.setdefault("DANS_KGC_DATA_MIRROR", "")

# ------------------------------------------------------------------------------------------
# config checks beyond the schema
# ------------------------------------------------------------------------------------------
# Keys the workflow sets itself; a preset or variant may not override them.
MANAGED_KEYS = {
    "seed": "the preset's `seeds` list (one run per seed)",
    "threads": "the threads of each job (profiles: set-threads)",
    "device": "the top-level config key `device`",
    "data.root": "the top-level config key `data_root`",
    "data.mirror": "the top-level config key `data_mirror` or DANS_KGC_DATA_MIRROR",
}
EXPERIMENTS = ("main", "ablation", "sensitivity")
_DEFAULTS = load_defaults()

if config["preset"] not in config["presets"]:
    raise WorkflowError(
        f"config key 'preset': '{config['preset']}' is not defined under 'presets' "
        f"(defined: {', '.join(config['presets'])})"
    )


def _fmt(value):
    """A value as dans-kgc's `--set` parses it back (YAML): 'null' stays a string, None is null."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return text


def _name(value):
    """A grid value as part of a variant name (mu0.5, eta0.3)."""
    text = _fmt(value).replace(" ", "").replace("[", "").replace("]", "").replace(",", "-")
    return text.strip("'\"")


def _check_overrides(where, overrides):
    for key in overrides:
        if key in MANAGED_KEYS:
            raise WorkflowError(f"config {where}: key '{key}' is set by the workflow from {MANAGED_KEYS[key]}")


def _nest(flat):
    """{"train.epochs": 2} -> {"train": {"epochs": 2}} (what dans-kgc's --set parsing builds)."""
    nested = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _check_dans_config(where, flat):
    """What `dans-kgc --set k=v ...` would say about these overrides (as dans_kgc.config.load_config)."""
    try:
        validate_values(merge(_DEFAULTS, _nest(flat), f"config {where}"))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


# ------------------------------------------------------------------------------------------
# the run matrix
# ------------------------------------------------------------------------------------------
Run = namedtuple("Run", "preset dataset experiment variant seed")


def preset_cfg(preset):
    return config["presets"][preset]


def preset_overrides(preset):
    return dict(preset_cfg(preset).get("overrides") or {})


def selection(preset, experiment):
    """The preset's selection for an experiment, or None when the preset does not run it."""
    chosen = (preset_cfg(preset).get("experiments") or {}).get(experiment)
    if chosen is None or experiment not in config["experiments"]:
        return None
    return chosen


def experiment_variants(preset, experiment):
    """variant name -> dans-kgc overrides (flat, dotted keys) of one experiment in one preset."""
    chosen = selection(preset, experiment)
    if chosen is None:
        return {}
    spec = config["experiments"][experiment]
    if experiment == "sensitivity":
        grids = chosen.get("grid") or {}
        unknown = set(grids) - set(spec["grid"])
        if unknown:
            raise WorkflowError(f"config presets.{preset}.experiments.sensitivity.grid: unknown grid "
                                f"{', '.join(sorted(unknown))} (defined: {', '.join(spec['grid'])})")
        variants = {}
        for name, g in spec["grid"].items():
            for value in grids.get(name, g["values"]):
                variants[f"{name}{_name(value)}"] = {**(spec.get("base") or {}), g["key"]: value}
    else:
        variants = dict(spec["variants"])
    wanted = chosen.get("variants")
    if wanted:
        unknown = [v for v in wanted if v not in variants]
        if unknown:
            raise WorkflowError(f"config presets.{preset}.experiments.{experiment}.variants: unknown variant(s) "
                                f"{', '.join(unknown)} (defined: {', '.join(variants)})")
        variants = {v: variants[v] for v in wanted}
    return variants


def experiment_datasets(preset, experiment):
    chosen = selection(preset, experiment) or {}
    return list(chosen.get("datasets") or preset_cfg(preset)["datasets"])


def experiment_seeds(preset, experiment):
    chosen = selection(preset, experiment) or {}
    return list(chosen.get("seeds") or preset_cfg(preset)["seeds"])


def runs(preset, experiments=EXPERIMENTS, sampler=None):
    """Every training run of a preset (optionally of some experiments / one sampler)."""
    out = []
    for exp in experiments:
        for variant, ov in experiment_variants(preset, exp).items():
            if sampler is not None and run_sampler(preset, ov) != sampler:
                continue
            for ds in experiment_datasets(preset, exp):
                for seed in experiment_seeds(preset, exp):
                    out.append(Run(preset, ds, exp, variant, seed))
    return out


def preset_datasets(preset):
    """Every dataset a preset touches (its list plus any experiment-specific ones)."""
    seen = list(preset_cfg(preset)["datasets"])
    for exp in EXPERIMENTS:
        if selection(preset, exp) is not None:
            seen += [d for d in experiment_datasets(preset, exp) if d not in seen]
    return seen


def variant_overrides(preset, experiment, variant):
    variants = experiment_variants(preset, experiment)
    if variant not in variants:
        raise WorkflowError(f"preset '{preset}' has no variant '{variant}' in experiment '{experiment}' "
                            f"(defined: {', '.join(variants) or 'none; the preset does not run this experiment'})")
    return variants[variant]


def effective(preset, variant_ov=None):
    """preset overrides, then variant overrides (flat dict)."""
    return {**preset_overrides(preset), **(variant_ov or {})}


def _value(flat, key):
    """The effective value of a dotted dans-kgc key: override if given, else package default."""
    if key in flat:
        return flat[key]
    node = _DEFAULTS
    for part in key.split("."):
        node = node[part]
    return node


def run_sampler(preset, variant_ov):
    return _value(effective(preset, variant_ov), "train.sampler")


def needs(preset, variant_ov, stage):
    return stage in (config.get("sampler_stages") or {}).get(run_sampler(preset, variant_ov), [])


def _validate_all():
    for preset, p in config["presets"].items():
        _check_overrides(f"presets.{preset}.overrides", p.get("overrides") or {})
        for ds in p["datasets"]:
            if ds not in DATASETS:
                raise WorkflowError(f"config presets.{preset}.datasets: unknown dataset '{ds}' "
                                    f"(registered: {', '.join(DATASETS)})")
        _check_dans_config(f"presets.{preset}.overrides", preset_overrides(preset))
        for exp in EXPERIMENTS:
            for ds in experiment_datasets(preset, exp):
                if ds not in DATASETS:
                    raise WorkflowError(f"config presets.{preset}.experiments.{exp}.datasets: unknown dataset '{ds}'")
            for variant, ov in experiment_variants(preset, exp).items():
                where = f"experiments.{exp} variant '{variant}' (preset '{preset}')"
                _check_overrides(where, ov)
                for key in ov:
                    if key.startswith(("pretrain.", "dam.")):
                        raise WorkflowError(f"config {where}: key '{key}' belongs to a per-dataset stage; "
                                            f"set it in presets.{preset}.overrides")
                _check_dans_config(where, effective(preset, ov))
    for sampler, stages in (config.get("sampler_stages") or {}).items():
        if "diffusion" in stages and sampler not in ("dans", "dhns"):
            raise WorkflowError(f"config sampler_stages.{sampler}: only dans and dhns have a diffusion warm start")


_validate_all()


# ------------------------------------------------------------------------------------------
# which dans-kgc keys each stage reads (its `params:`), so a change reruns only those jobs
# ------------------------------------------------------------------------------------------
# A key ending in "." is a prefix. Exclusions are conservative: only keys a stage provably
# ignores are dropped (dropping one it reads would silently run it with the default).
TRAIN_LOOP_KEYS = ["train.sampler", "train.epochs", "train.lr", "train.batch_size", "train.num_negatives",
                   "train.margin", "train.loss", "train.adversarial_temperature", "train.init_from_pretrained",
                   "train.eval_every", "train.patience", "train.checkpoint_every", "train.max_seconds",
                   "train.fail_on_nan"]
# diffusion keys only the training run reads (the reverse chain and joint updates), not the warm start
JOINT_ONLY_DIFFUSION_KEYS = ["diffusion.update_every", "diffusion.snap", "diffusion.snap_filter",
                             "diffusion.sample_fraction", "diffusion.sampling_steps"]
STAGE_KEYS = {
    "fetch": {"include": ["data.", "protocol"], "exclude": ["data.mirror", "data.unseen_policy",
                                                            "data.max_eval_triples"]},
    "stats": {"include": ["data.", "protocol"], "exclude": ["data.mirror", "data.max_eval_triples"]},
    "pretrain": {"exclude": ["samplers.", "dam.", "diffusion.", "dtm.", "dans.", "model.name", "model.dim",
                             "model.p_norm"] + [k for k in TRAIN_LOOP_KEYS if k not in (
                                 "train.eval_every", "train.patience", "train.checkpoint_every",
                                 "train.max_seconds", "train.fail_on_nan")]},
    "dam": {"exclude": ["samplers.", "diffusion.", "dtm.", "dans."] + TRAIN_LOOP_KEYS},
    "diffusion_dans": {"exclude": ["samplers.", "dtm.", "dans.eta", "dans.base_sampler"] + TRAIN_LOOP_KEYS
                       + JOINT_ONLY_DIFFUSION_KEYS},
    "diffusion_dhns": {"exclude": ["samplers.nscaching.", "dam.", "dtm.", "dans."] + TRAIN_LOOP_KEYS
                       + JOINT_ONLY_DIFFUSION_KEYS},
}


def _match(key, pattern):
    return key == pattern or (pattern.endswith(".") and key.startswith(pattern))


def stage_filter(flat, stage):
    spec = STAGE_KEYS[stage]
    out = {}
    for key, value in flat.items():
        if "include" in spec and not any(_match(key, p) for p in spec["include"]):
            continue
        if any(_match(key, p) for p in spec.get("exclude", ())):
            continue
        out[key] = value
    return out


def train_filter(flat, sampler):
    """A training run reads everything except the settings of samplers it does not use."""
    out = {}
    for key, value in flat.items():
        if key.startswith("samplers.") and not key.startswith(f"samplers.{sampler}."):
            continue
        if sampler not in ("dans", "dhns") and key.startswith(("dam.", "diffusion.", "dtm.", "dans.")):
            continue
        if sampler == "dhns" and key.startswith(("dam.", "dtm.")):
            continue
        out[key] = value
    return out


def set_args(flat):
    """Sorted `--set key=value` arguments (a list: stable, so usable as a rerun trigger)."""
    out = [f"device={config['device']}", f"data.root={config['data_root']}"]
    out += [f"{k}={_fmt(v)}" for k, v in sorted(flat.items())]
    return [a for item in out for a in ("--set", item)]


def shell_sets(args):
    return " ".join(shlex.quote(a) for a in args)


# ------------------------------------------------------------------------------------------
# diffusion warm starts: one per dataset and per distinct diffusion-relevant setting
# ------------------------------------------------------------------------------------------
DKEY_FIELDS = ["diffusion.mu", "diffusion.condition", "dans.use_dam"]


def dkey_of(preset, variant_ov):
    """(dkey, kind, overrides) of the warm start a run uses.

    dans: dans-mu<mu>-<condition>-<dam|nodam>; dhns: dhns. A variant that also changes other
    keys the warm start reads gets a short hash suffix (e.g. a T sweep: dans-mu1.0-ccd-dam-3fa2c1).
    """
    sampler = run_sampler(preset, variant_ov)
    stage = f"diffusion_{sampler}"
    relevant = stage_filter(variant_ov, stage)
    extra = {k: v for k, v in relevant.items() if k not in DKEY_FIELDS and k != "train.sampler"}
    if sampler == "dans":
        flat = effective(preset, variant_ov)
        mu, cond, use_dam = (_value(flat, k) for k in DKEY_FIELDS)
        fixed = {"diffusion.mu": mu, "diffusion.condition": cond, "dans.use_dam": use_dam}
        key = f"dans-mu{_name(mu)}-{_name(cond)}-{'dam' if use_dam else 'nodam'}"
    else:
        fixed = {}
        key = sampler
    if extra:
        digest = hashlib.sha1(yaml.safe_dump(extra, sort_keys=True).encode()).hexdigest()[:6]
        key = f"{key}-{digest}"
    return key, sampler, {**fixed, **extra}


def warm_starts(preset):
    """dkey -> (kind, variant-level overrides) over every run of a preset that needs one."""
    out = {}
    for exp in EXPERIMENTS:
        for variant, ov in experiment_variants(preset, exp).items():
            if needs(preset, ov, "diffusion"):
                key, kind, extra = dkey_of(preset, ov)
                out[key] = (kind, extra)
    return out


# ------------------------------------------------------------------------------------------
# paths
# ------------------------------------------------------------------------------------------
def run_dir(run):
    return f"results/{run.preset}/{run.dataset}/{run.experiment}/{run.variant}/seed{run.seed}"


def run_metrics(run):
    return f"{run_dir(run)}/metrics_test.json"


def fetch_record(preset, dataset):
    return f"results/{preset}/{dataset}/data/fetch.txt"


def output_prefix(wildcards, output):
    """Output path without extension (the CLI's --out PREFIX)."""
    return str(Path(output[0]).with_suffix(""))


def output_dir(wildcards, output):
    return str(Path(output[0]).parent)


def input_dir(name):
    """The folder of a named input (a stage's output folder, the CLI's --pretrained DIR)."""
    def get(wildcards, input):
        return str(Path(input[name]).parent)

    return get


# ------------------------------------------------------------------------------------------
# helpers of the data stage
# ------------------------------------------------------------------------------------------
def fetch_sets(wildcards):
    return shell_sets(set_args(stage_filter(preset_overrides(wildcards.preset), "fetch")))


def stats_inputs(wildcards):
    return [fetch_record(wildcards.preset, d) for d in preset_datasets(wildcards.preset)]


def stats_names(wildcards):
    return " ".join(preset_datasets(wildcards.preset))


def stats_sets(wildcards):
    return shell_sets(set_args(stage_filter(preset_overrides(wildcards.preset), "stats")))


# ------------------------------------------------------------------------------------------
# helpers of the stages
# ------------------------------------------------------------------------------------------
def pretrain_args(wildcards):
    """dans-kgc arguments of a pretrain job (the script adds --resume and --set threads=N).

    Params functions take only `wildcards`: Snakemake does not track params derived from
    input or output files as rerun triggers.
    """
    sets = set_args(stage_filter(preset_overrides(wildcards.preset), "pretrain"))
    out = f"results/{wildcards.preset}/{wildcards.dataset}/pretrain"
    return ["pretrain", "--dataset", wildcards.dataset, "--out", out, "--quiet", *sets]


def dam_sets(wildcards):
    return shell_sets(set_args(stage_filter(preset_overrides(wildcards.preset), "dam")))


def _warm_start(wildcards):
    starts = warm_starts(wildcards.preset)
    if wildcards.dkey not in starts:
        raise WorkflowError(f"no diffusion warm start '{wildcards.dkey}' in preset '{wildcards.preset}' "
                            f"(defined: {', '.join(starts) or 'none'})")
    return starts[wildcards.dkey]


def diffusion_inputs(wildcards):
    kind, _ = _warm_start(wildcards)
    out = {"pretrain": f"results/{wildcards.preset}/{wildcards.dataset}/pretrain/run.json"}
    if kind == "dans":
        out["dam"] = f"results/{wildcards.preset}/{wildcards.dataset}/dam/entities.csv"
    return out


def diffusion_args(wildcards):
    """--kind, --dam and --set arguments of `dans-kgc diffusion fit` (a shell string)."""
    kind, extra = _warm_start(wildcards)
    flat = stage_filter({**preset_overrides(wildcards.preset), **extra}, f"diffusion_{kind}")
    args = ["--kind", kind]
    if kind == "dans":
        args += ["--dam", f"results/{wildcards.preset}/{wildcards.dataset}/dam"]
    return shell_sets(args + set_args(flat))


def run_of(wildcards):
    return Run(wildcards.preset, wildcards.dataset, wildcards.experiment, wildcards.variant, int(wildcards.seed))


def train_inputs(wildcards):
    run = run_of(wildcards)
    ov = variant_overrides(run.preset, run.experiment, run.variant)
    base = f"results/{run.preset}/{run.dataset}"
    out = {"pretrain": f"{base}/pretrain/run.json"}
    if needs(run.preset, ov, "dam"):
        out["dam"] = f"{base}/dam/entities.csv"
    if needs(run.preset, ov, "diffusion"):
        out["diffusion"] = f"{base}/diffusion/{dkey_of(run.preset, ov)[0]}/diffusion.pt"
    return out


def train_args(wildcards):
    """dans-kgc arguments of a training run (the script adds --resume and --set threads=N)."""
    run = run_of(wildcards)
    ov = variant_overrides(run.preset, run.experiment, run.variant)
    flat = train_filter(effective(run.preset, ov), run_sampler(run.preset, ov))
    flags = {"pretrain": "--pretrained", "dam": "--dam", "diffusion": "--diffusion"}
    stages = [a for name, path in train_inputs(wildcards).items() for a in (flags[name], str(Path(path).parent))]
    tags = ["--tag", f"experiment={run.experiment}", "--tag", f"variant={run.variant}"]
    return ["train", "--dataset", run.dataset, "--out", run_dir(run), "--quiet", *stages, *tags,
            *set_args(flat), "--set", f"seed={run.seed}"]


# ------------------------------------------------------------------------------------------
# helpers of the reports
# ------------------------------------------------------------------------------------------
# output name -> (dans-kgc report KIND, experiments whose runs it reads, sampler filter)
TABLES = {
    "main": ("main", ["main"], None),
    "ablation": ("ablation", ["ablation"], None),
    "efficiency": ("efficiency", ["main"], None),
    "paper_vs_ours": ("paper", ["main", "ablation"], None),
}
FIGURES = {
    "sensitivity": ("sensitivity", ["sensitivity"], None),
    "curves": ("curves", ["main"], None),
    "bands": ("bands", ["main", "ablation"], "dans"),
}


def report_runs(preset, name):
    kind, exps, sampler = {**TABLES, **FIGURES}[name]
    return runs(preset, exps, sampler=sampler)


def report_inputs(wildcards):
    name = getattr(wildcards, "table", None) or wildcards.figure
    return [run_metrics(r) for r in report_runs(wildcards.preset, name)]


def report_args(wildcards, input):
    name = getattr(wildcards, "table", None) or wildcards.figure
    kind = {**TABLES, **FIGURES}[name][0]
    return shell_sets([kind, "--runs", *[str(Path(p).parent) for p in input]])


def table_targets(preset):
    out = [f"results/{preset}/tables/table1_datasets.{ext}" for ext in ("csv", "md")]
    for name in TABLES:
        if report_runs(preset, name):
            out += [f"results/{preset}/tables/{name}.{ext}" for ext in ("csv", "md", "tex")]
    return out


def figure_targets(preset):
    out = []
    for name in FIGURES:
        if report_runs(preset, name):
            out += [f"figures/{preset}/{name}.{ext}" for ext in ("png", "pdf")]
    return out


# ------------------------------------------------------------------------------------------
# resources and threads
# ------------------------------------------------------------------------------------------
DEFAULT_RESOURCES = {"mem_mb": 2000, "runtime": 30}


def _resources(preset, group):
    table = preset_cfg(preset).get("resources") or {}
    return {**DEFAULT_RESOURCES, **(table.get("default") or {}), **(table.get(group) or {})}


def mem_mb(group):
    def get(wildcards, attempt):
        return _resources(wildcards.preset, group)["mem_mb"]

    return get


def runtime(group):
    """Minutes; grows with the attempt number (profiles set `retries`)."""
    def get(wildcards, attempt):
        return _resources(wildcards.preset, group)["runtime"] * attempt

    return get


# torch-using jobs ask for one GPU when the config says device: cuda
GPUS = 1 if config["device"] == "cuda" else 0


def _alternatives(names):
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


wildcard_constraints:
    preset=_alternatives(config["presets"]),
    dataset=_alternatives(DATASETS),
    experiment=_alternatives(EXPERIMENTS),
    seed=r"\d+",
    variant=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dkey=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    table=_alternatives(TABLES),
    figure=_alternatives(FIGURES),
