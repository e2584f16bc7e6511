# Helpers of the DANS-KGC DAG: config validation, the run matrix (preset x dataset x
# experiment x variant x seed), the dans-kgc `--set` overrides each job passes (and so its
# `params:`, the rerun trigger), input functions and per-job resources. No rules here.
#
# Layout (see also config.yaml): results/{preset}/{dataset}/{pretrain,dam,diffusion/{dkey}}/,
# results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/, results/{preset}/{dataset}/diagnostics/
# {{experiment}/{variant}/seed{seed},warm_start/{dkey}}.{json,md,png}, results/{preset}/tables/,
# figures/{preset}/, logs/{rule}/{preset}/..., results/benchmarks/{rule}/{preset}/... .

import copy
import functools
import hashlib
import json
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
from dans_kgc.config import PER_DATASET, ConfigError, load_defaults, merge, recipe_overrides, validate_values
from dans_kgc.stages import DRAW_ONLY_SAMPLERS, TRANSE_SOURCES, fingerprint, flatten, pretrain_config, stage_keys

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
# Your own datasets (config `datasets`, dans-kgc's data.custom): absolute paths, since jobs may run elsewhere.
CUSTOM_DATASETS = {name: {**entry, "path": os.path.abspath(entry["path"])}
                   for name, entry in (config.get("datasets") or {}).items()}
for _ds, _entry in CUSTOM_DATASETS.items():
    if _ds.lower() in DATASETS:
        raise WorkflowError(f"config datasets.{_ds}: '{_ds}' is a registered dataset; give yours another name")
    _missing = [f for f in ("train.txt", "valid.txt", "test.txt") if not os.path.isfile(os.path.join(_entry["path"], f))]
    if _missing:
        raise WorkflowError(f"config datasets.{_ds}.path: {_entry['path']} has no {', '.join(_missing)} "
                            "(expected train.txt, valid.txt, test.txt and optionally facts.txt, entities.txt, relations.txt)")
DATASETS += list(CUSTOM_DATASETS)

# Plugins (config `plugins`): every job imports them first (--plugin); files made absolute, since jobs may
# run elsewhere. Part of every job's arguments, so adding or removing a plugin reruns the jobs.
PLUGINS = [os.path.abspath(p) if p.endswith(".py") or os.path.isfile(p) else p for p in config.get("plugins") or []]
PLUGIN_ARGS = [a for p in PLUGINS for a in ("--plugin", p)]
if PLUGINS:
    # imported here too, so the start-up check of model.name knows a plugin's backbone and a broken plugin
    # stops the workflow before any job (costs a torch import only when plugins are configured)
    from dans_kgc.plugins import PluginError, load_plugins

    try:
        load_plugins(PLUGINS)
    except PluginError as err:
        raise WorkflowError(f"config plugins: {err}") from None

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
# tuned: the main variants again, each from its sampler's best configuration of `dans-kgc tune` (tune.smk)
EXPERIMENTS = ("calibration", "main", "ablation", "sensitivity", "curriculum", "dam_inputs", "tuned")
# experiments whose variants a preset's `backbones:` list crosses with each backbone (variant@backbone)
CROSSED = ("main", "ablation", "sensitivity", "curriculum", "dam_inputs", "tuned")
# dam.* keys a variant may set (each DAM fit gets its own folder, see dam_key_of); the other dam.* and
# pretrain.* keys shape per-dataset stages and belong to a preset's overrides
VARIANT_DAM_KEYS = ("dam.semantic_source", "dam.target_source", "dam.short_epochs")
BACKBONE_SEP = "@"
_DEFAULTS = load_defaults()

if config["preset"] not in config["presets"]:
    raise WorkflowError(
        f"config key 'preset': '{config['preset']}' is not defined under 'presets' "
        f"(defined: {', '.join(config['presets'])})"
    )


def _memo(fn):
    """Memoise a pure function of (preset, variant overrides, ...) for one planning: the paper preset asks
    for the same stage keys tens of thousands of times (each a merge of the package defaults). Keyed by the
    arguments' JSON; each caller gets its own copy of the answer."""
    cache = {}

    @functools.wraps(fn)
    def wrapper(*args):
        key = json.dumps(args, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = fn(*args)
        return copy.deepcopy(cache[key])

    return wrapper


@_memo
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
STANDS_FOR = "stands_for"  # the tag listing experiment/variant pairs a shared run folder stands for


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


# what a backbone *is*: the DAG crosses and leaves out (variant, backbone) pairs by these, on every dataset alike
BACKBONE_IDENTITY_KEYS = ("model.name", "train.mode", "train.sampler")


def recipe(backbone, dataset=None):
    """A backbone's recipe (flat dans-kgc overrides) on one dataset: its shared keys, then the dataset's own entry
    of `per_dataset` (dataset None: the shared keys only)."""
    return recipe_overrides(config["backbones"][backbone], dataset)


@_memo
def experiment_variants(preset, experiment, dataset=None):
    """variant name -> dans-kgc overrides (flat, dotted keys) of one experiment in one preset, on one dataset
    (None: without any backbone recipe's dataset-specific keys; the same variants, the same sampler and mode)."""
    chosen = selection(preset, experiment)
    if chosen is None:
        return {}
    spec = config["experiments"][experiment]
    if experiment == "calibration":  # each backbone on its own, with its native loss and recipe
        variants = {name: {**(spec.get("base") or {}), **recipe(name, dataset)} for name in config.get("backbones") or {}}
    elif experiment == "sensitivity":
        grids = chosen.get("grid") or {}
        unknown = set(grids) - set(spec["grid"])
        if unknown:
            raise WorkflowError(f"config presets.{preset}.experiments.sensitivity.grid: unknown grid "
                                f"{', '.join(sorted(unknown))} (defined: {', '.join(spec['grid'])})")
        variants = {}
        for name, g in spec["grid"].items():
            if grids and name not in grids:  # a preset that lists grids runs those only
                continue
            if "points" in g:  # named points, each a set of overrides (K_b moves band_steps and margin_scales)
                points = {str(p): g["points"][str(p)] if str(p) in g["points"] else _unknown_point(preset, name, p, g)
                          for p in grids.get(name, list(g["points"]))}
                for point, ov in points.items():
                    variants[f"{name}{point}"] = {**(spec.get("base") or {}), **ov}
                continue
            for value in grids.get(name, g["values"]):
                variants[f"{name}{_name(value)}"] = {**(spec.get("base") or {}), g["key"]: value}
    elif experiment == "tuned":  # main's variants, each tuned first
        variants = dict(config["experiments"]["main"]["variants"])
    else:
        variants = dict(spec["variants"])
    wanted = chosen.get("variants")
    if wanted:
        unknown = [v for v in wanted if v not in variants]
        if unknown:
            raise WorkflowError(f"config presets.{preset}.experiments.{experiment}.variants: unknown variant(s) "
                                f"{', '.join(unknown)} (defined: {', '.join(variants)})")
        variants = {v: variants[v] for v in wanted}
    crossed = preset_cfg(preset).get("backbones")
    if crossed and experiment in CROSSED:
        variants = {f"{v}{BACKBONE_SEP}{b}": {**recipe(b, dataset), **ov} for b in crossed for v, ov in variants.items()
                    if not _left_out_of_crossing(preset, {**recipe(b), **ov})}
    return variants


def _unknown_point(preset, grid, point, spec):
    raise WorkflowError(f"config presets.{preset}.experiments.sensitivity.grid.{grid}: unknown point '{point}' "
                        f"(defined under experiments.sensitivity.grid.{grid}.points: {', '.join(map(str, spec['points']))})")


def _left_out_of_crossing(preset, variant_ov):
    """A (variant, backbone) pair the Trainer would refuse: a draw-only sampler on a 1-N backbone, or a sampler
    the backbone's model cannot run (config `unsupported_samplers`, with its reason)."""
    flat = effective(preset, variant_ov)
    unsupported = (config.get("unsupported_samplers") or {}).get(_value(flat, "model.name")) or {}
    return _draw_only_on_one_to_n(preset, variant_ov) or _value(flat, "train.sampler") in unsupported.get("samplers", [])


def _draw_only_on_one_to_n(preset, variant_ov):
    """A sampler that only picks discrete negatives means nothing on a 1-N backbone (which scores
    every entity): such a pair is left out of the crossing, as the Trainer would refuse it."""
    flat = effective(preset, variant_ov)
    return _value(flat, "train.mode") == "one_to_n" and _value(flat, "train.sampler") in DRAW_ONLY_SAMPLERS


def variant_tags(experiment, variant):
    """(variant, backbone) labels of a run folder name: calibration variants are backbones; a crossed
    variant is variant@backbone; otherwise the backbone is the preset's (None: not named)."""
    if experiment == "calibration":
        return variant, variant
    base, _, backbone = variant.partition(BACKBONE_SEP)
    return base, backbone or None


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
        # the sampler is the same on every dataset (per_dataset cannot set BACKBONE_IDENTITY_KEYS)
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


def variant_overrides(preset, experiment, variant, dataset=None):
    variants = experiment_variants(preset, experiment, dataset)
    if variant not in variants:
        raise WorkflowError(f"preset '{preset}' has no variant '{variant}' in experiment '{experiment}' "
                            f"(defined: {', '.join(variants) or 'none; the preset does not run this experiment'})")
    return variants[variant]


def effective(preset, variant_ov=None):
    """preset overrides, then variant overrides (flat dict)."""
    return {**preset_overrides(preset), **(variant_ov or {})}


def normalized_overrides(preset, variant_ov):
    """Variant overrides in a canonical form: the effective settings less the keys the preset leaves alone
    and the variant sets to the package default. Two runs of a preset with the same effective settings get
    the same form (sensitivity mu1.0, when diffusion.mu defaults to 1.0, and main dans). Only for comparing
    runs: a job's own `--set` list stays as configured (so no finished run's params change)."""
    given = preset_overrides(preset)
    return {k: v for k, v in effective(preset, variant_ov).items() if k in given or not _is_default(k, v)}


def _is_default(key, value):
    try:
        default = _value({}, key)
    except (KeyError, TypeError):  # a key the defaults do not know (a plugin's): keep it
        return False
    return isinstance(value, bool) == isinstance(default, bool) and value == default


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
    for name, spec in (config.get("backbones") or {}).items():
        _check_overrides(f"backbones.{name}", recipe(name))
        _check_dans_config(f"backbones.{name}", recipe(name))
        for ds, own in (spec.get(PER_DATASET) or {}).items():
            where = f"backbones.{name}.{PER_DATASET}.{ds}"
            if ds not in DATASETS:
                raise WorkflowError(f"config {where}: unknown dataset '{ds}' (registered: {', '.join(DATASETS)})")
            fixed = [k for k in own if k in BACKBONE_IDENTITY_KEYS]
            if fixed:
                raise WorkflowError(f"config {where}: key '{fixed[0]}' says what the backbone is, the same on every "
                                    f"dataset; set it in backbones.{name} (or define another backbone)")
            _check_overrides(where, own)
            _check_dans_config(where, recipe(name, ds))
    for preset, p in config["presets"].items():
        unknown = [b for b in p.get("backbones") or [] if b not in (config.get("backbones") or {})]
        if unknown:
            raise WorkflowError(f"config presets.{preset}.backbones: unknown backbone(s) {', '.join(unknown)} "
                                f"(defined under `backbones`: {', '.join(config.get('backbones') or {}) or 'none'})")
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
            for variant, ov in [kv for ds in [None, *experiment_datasets(preset, exp)]
                                for kv in experiment_variants(preset, exp, ds).items()]:
                where = f"experiments.{exp} variant '{variant}' (preset '{preset}')"
                _check_overrides(where, ov)
                for key in ov:
                    if key.startswith(("pretrain.", "dam.")) and key not in VARIANT_DAM_KEYS:
                        raise WorkflowError(f"config {where}: key '{key}' belongs to a per-dataset stage; "
                                            f"set it in presets.{preset}.overrides")
                _check_dans_config(where, effective(preset, ov))
    for sampler, stages in (config.get("sampler_stages") or {}).items():
        if "diffusion" in stages and sampler not in ("dans", "dhns"):
            raise WorkflowError(f"config sampler_stages.{sampler}: only dans and dhns have a diffusion warm start")


_validate_all()


# ------------------------------------------------------------------------------------------
# which dans-kgc keys each stage reads (its `params:`), so a change reruns only those jobs:
# declared once, in dans_kgc/stages.py, which the CLI uses for the stage records too
# ------------------------------------------------------------------------------------------
def train_filter(flat, sampler):
    """A training run reads everything except the settings of samplers it does not use."""
    out = {}
    for key, value in flat.items():
        if key.startswith("tune."):  # the search's budget: read by tune jobs only (tune_args)
            continue
        if key.startswith("samplers.") and not key.startswith(f"samplers.{sampler}."):
            continue
        if sampler not in ("dans", "dhns") and key.startswith(("dam.", "diffusion.", "dtm.", "dans.", "diagnostics.")):
            continue
        if sampler == "dhns" and key.startswith(("dam.", "dtm.")):
            continue
        out[key] = value
    return out


def set_args(flat):
    """Sorted `--set key=value` arguments (a list: stable, so usable as a rerun trigger)."""
    out = [f"device={config['device']}", f"data.root={config['data_root']}"]
    out += [f"{k}={_fmt(v)}" for k, v in sorted(flat.items())]
    return PLUGIN_ARGS + [a for item in out for a in ("--set", item)]


def shell_sets(args):
    return " ".join(shlex.quote(a) for a in args)


# ------------------------------------------------------------------------------------------
# stage outputs shared by runs: pretrainings, DAM fits, diffusion warm starts
# ------------------------------------------------------------------------------------------
def _resolved(flat):
    """The full dans-kgc config a job with these overrides sees."""
    return merge(_DEFAULTS, _nest(flat), "config")


@_memo
def pkey_of(preset, variant_ov, source):
    """Folder key of the Stage-0 pretraining a run reads: <backbone>-<hash of what it trains with>.

    source: backbone (the run's own backbone, for initialisation and the warm start) | transe
    (the base reading's TransE, DAM's default semantic source). Runs whose pretraining would be the same
    share one folder; the hash covers every key the pretrain stage reads (dans_kgc/stages.py).
    The base reading's TransE is a per-dataset stage: only the preset's overrides shape it, never a
    variant's or a backbone recipe's (variants cannot set pretrain.* or dam.* keys).
    """
    if source in TRANSE_SOURCES:
        flat = {**preset_overrides(preset), **{k: v for k, v in (variant_ov or {}).items() if k in VARIANT_DAM_KEYS}}
    else:
        flat = effective(preset, variant_ov)
    pcfg = pretrain_config(_resolved(flat), source)
    trained = stage_keys(flatten(pcfg), "pretrain")
    # the job's overrides: what it trains with, where that differs from the defaults (the CLI applies
    # pretrain_config again, which leaves these unchanged), so e.g. train.epochs of a TransE backbone,
    # which its Stage 0 replaces by pretrain.epochs, is no rerun trigger
    passed = {k: v for k, v in trained.items() if _value({}, k) != v}
    if source == "transe_short":  # the CLI derives train.epochs from it again
        passed["dam.short_epochs"] = _value(flat, "dam.short_epochs")
    return f"{pcfg['model']['name']}-{fingerprint(trained)[:8]}", source, passed


@_memo
def semantic_pkey(preset, variant_ov):
    return pkey_of(preset, variant_ov, _value(effective(preset, variant_ov), "dam.semantic_source"))


@_memo
def target_pkey(preset, variant_ov):
    """The pretraining whose ranks are DAM's target when dam.target_source names another source than the semantic
    one (then `dam fit` takes it as --target-pretrained, even where both sources train the same model); else None."""
    flat = effective(preset, variant_ov)
    source = _value(flat, "dam.target_source")
    if source in ("semantic", _value(flat, "dam.semantic_source")):
        return None
    return pkey_of(preset, variant_ov, source)


@_memo
def dam_key_of(preset, variant_ov):
    """Folder key of the DAM fit a run reads: its semantic pretraining's pkey, plus `_by_<target pkey>` when the
    observed-difficulty target comes from another pretraining (dam.target_source). Fits whose two pretrainings
    are the same run (e.g. semantic and target sources both TransE) share the plain folder."""
    target = target_pkey(preset, variant_ov)
    semantic = semantic_pkey(preset, variant_ov)[0]
    return semantic if target is None or target[0] == semantic else f"{semantic}_by_{target[0]}"


def needs_pretrain(preset, variant_ov):
    """A run reads its backbone's pretraining when it starts from it (train.init_from_pretrained)."""
    return bool(_value(effective(preset, variant_ov), "train.init_from_pretrained"))


DKEY_FIELDS = ["diffusion.mu", "diffusion.condition", "dans.use_dam"]


@_memo
def dkey_of(preset, variant_ov):
    """(dkey, kind, overrides) of the warm start a run uses.

    dans: dans-mu<mu>-<condition>-<dam|nodam>-<hash>; dhns: dhns-<hash>. The hash covers the other
    keys the warm start reads and the pretraining (and DAM) it is fitted on, so a T sweep or another
    backbone gets its own warm start.
    """
    sampler = run_sampler(preset, variant_ov)
    flat = effective(preset, variant_ov)
    # DAM keys act through the DAM folder (in `inputs` below); one spelt out at its default (dam_inputs'
    # full_transe) reads the same warm start as a run that does not set it
    relevant = {k: v for k, v in stage_keys(flat, f"diffusion_{sampler}").items()
                if not (k in VARIANT_DAM_KEYS and _is_default(k, v))}
    if sampler == "dans":
        mu, cond, use_dam = (_value(flat, k) for k in DKEY_FIELDS)
        key = f"dans-mu{_name(mu)}-{_name(cond)}-{'dam' if use_dam else 'nodam'}"
    else:
        key = sampler
    inputs = [pkey_of(preset, variant_ov, "backbone")[0]]
    if sampler == "dans":
        inputs.append(dam_key_of(preset, variant_ov))
    digest = fingerprint({**relevant, "inputs": inputs})[:6]
    return f"{key}-{digest}", sampler, relevant


def _all_variants(preset, dataset):
    for exp in EXPERIMENTS:
        if dataset in experiment_datasets(preset, exp):
            for variant, ov in experiment_variants(preset, exp, dataset).items():
                yield exp, variant, ov


def pretrainings(preset, dataset):
    """pkey -> (source, overrides) over every pretraining a preset's runs, DAM fits and warm starts read on one
    dataset."""
    out = {}
    for _, _, ov in _all_variants(preset, dataset):
        wanted = []
        if needs_pretrain(preset, ov) or needs(preset, ov, "diffusion"):
            wanted.append(pkey_of(preset, ov, "backbone"))
        if needs(preset, ov, "dam"):
            wanted.append(semantic_pkey(preset, ov))
            target = target_pkey(preset, ov)
            if target is not None:
                wanted.append(target)
        for key, source, flat in wanted:
            out.setdefault(key, (source, flat))
    return out


def dam_fits(preset, dataset):
    """DAM key -> (semantic pkey, target pkey or None, overrides) of each DAM fit a preset's runs read on one
    dataset."""
    out = {}
    for _, _, ov in _all_variants(preset, dataset):
        if needs(preset, ov, "dam"):
            target = target_pkey(preset, ov)
            out.setdefault(dam_key_of(preset, ov), (semantic_pkey(preset, ov)[0], target and target[0],
                                                    stage_keys(effective(preset, ov), "dam")))
    return out


def warm_starts(preset, dataset):
    """dkey -> (kind, overrides, backbone pkey, semantic pkey) over every run of a preset that needs one, on one
    dataset."""
    out = {}
    for _, _, ov in _all_variants(preset, dataset):
        if needs(preset, ov, "diffusion"):
            key, kind, flat = dkey_of(preset, ov)
            dam_key = dam_key_of(preset, ov) if kind == "dans" else None
            out[key] = (kind, flat, pkey_of(preset, ov, "backbone")[0], dam_key)
    return out


# ------------------------------------------------------------------------------------------
# paths
# ------------------------------------------------------------------------------------------
def run_dir(run):
    return f"results/{run.preset}/{run.dataset}/{run.experiment}/{run.variant}/seed{run.seed}"


def run_metrics(run):
    """The metrics of a run: those of its canonical run folder (one run per distinct setting, below)."""
    return f"{run_dir(canonical(run))}/metrics_test.json"


# ------------------------------------------------------------------------------------------
# one run per distinct setting: runs of a preset whose training would be the same (same dataset, seed,
# stage folders and effective --set overrides; tags do not count) train once, in the folder of the first
# of them in EXPERIMENTS order, calibration > main > ablation > sensitivity > ... (then variant, dataset, seed):
# e.g. ablation `full` and the sensitivity base points mu1.0 / eta0.5 read main/dans. The run's tags say
# which experiment/variant pairs it stands for (--tag stands_for=...), and the reports place it in each.
# ------------------------------------------------------------------------------------------
def train_settings(run):
    """What a training run computes, without where it goes or how it is labelled."""
    ov = normalized_overrides(run.preset, variant_overrides(run.preset, run.experiment, run.variant, run.dataset))
    flat = train_filter(effective(run.preset, ov), run_sampler(run.preset, ov))
    return {"dataset": run.dataset, "seed": run.seed, "stages": run_inputs(run, ov),
            "set": {k: _fmt(v) for k, v in sorted(flat.items())}}


@functools.lru_cache(maxsize=None)
def run_groups(preset):
    """canonical Run -> every Run of the preset with its settings (the canonical one first)."""
    by_key, groups = {}, {}
    for r in runs(preset):
        canon = by_key.setdefault(fingerprint(train_settings(r)), r)
        groups.setdefault(canon, []).append(r)
    return groups


@functools.lru_cache(maxsize=None)
def _canonical_table(preset):
    return {member: canon for canon, members in run_groups(preset).items() for member in members}


def canonical(run):
    """The run whose folder holds this run's results (itself unless an earlier run has its settings)."""
    return _canonical_table(run.preset).get(run, run)


def stands_for(run):
    """experiment/variant labels of every run a canonical run stands for."""
    return [f"{m.experiment}/{m.variant}" for m in run_groups(run.preset).get(canonical(run), [run])]


def unique(items):
    return list(dict.fromkeys(items))


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
    args = set_args(stage_keys(preset_overrides(wildcards.preset), "fetch"))
    if wildcards.dataset in CUSTOM_DATASETS:  # only the fetch needs the entry: later jobs read its manifest
        args += ["--set", f"data.custom={_fmt({wildcards.dataset: CUSTOM_DATASETS[wildcards.dataset]})}"]
    return shell_sets(args)


def fetch_checksums(wildcards):
    """SHA-256 of each file of your own dataset's folder (a params: rerun trigger: a changed file reruns the
    fetch, and its new record everything built on it); registered datasets: fixed by the registry, none."""
    entry = CUSTOM_DATASETS.get(wildcards.dataset)
    if entry is None:
        return {}
    folder = Path(entry["path"])
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.glob("*.txt"))
            if f.stem in ("entities", "relations", "facts", "train", "valid", "test")}


def stats_inputs(wildcards):
    return [fetch_record(wildcards.preset, d) for d in preset_datasets(wildcards.preset)]


def stats_names(wildcards):
    return " ".join(preset_datasets(wildcards.preset))


def stats_sets(wildcards):
    return shell_sets(set_args(stage_keys(preset_overrides(wildcards.preset), "stats")))


# ------------------------------------------------------------------------------------------
# helpers of the stages
# ------------------------------------------------------------------------------------------
def _lookup(table, key, what, preset):
    if key not in table:
        raise WorkflowError(f"no {what} '{key}' in preset '{preset}' (defined: {', '.join(table) or 'none'})")
    return table[key]


def pretrain_dir(preset, dataset, pkey):
    return f"results/{preset}/{dataset}/pretrain/{pkey}"


def dam_dir(preset, dataset, dam_key):
    return f"results/{preset}/{dataset}/dam/{dam_key}"


def pretrain_args(wildcards):
    """dans-kgc arguments of a pretrain job (the script adds --resume and --set threads=N).

    Params functions take only `wildcards`: Snakemake does not track params derived from
    input or output files as rerun triggers.
    """
    source, flat = _lookup(pretrainings(wildcards.preset, wildcards.dataset), wildcards.pkey, "pretraining", wildcards.preset)
    out = pretrain_dir(wildcards.preset, wildcards.dataset, wildcards.pkey)
    return ["pretrain", "--dataset", wildcards.dataset, "--out", out, "--source", source, "--quiet", *set_args(flat)]


def dam_inputs(wildcards):
    semantic, target, _ = _lookup(dam_fits(wildcards.preset, wildcards.dataset), wildcards.damkey, "DAM fit", wildcards.preset)
    out = {"pretrain": f"{pretrain_dir(wildcards.preset, wildcards.dataset, semantic)}/run.json"}
    if target is not None:
        out["target"] = f"{pretrain_dir(wildcards.preset, wildcards.dataset, target)}/run.json"
    return out


def dam_args(wildcards):
    """--pretrained, --target-pretrained and --set arguments of `dans-kgc dam fit` (a shell string)."""
    semantic, target, flat = _lookup(dam_fits(wildcards.preset, wildcards.dataset), wildcards.damkey, "DAM fit", wildcards.preset)
    args = ["--pretrained", pretrain_dir(wildcards.preset, wildcards.dataset, semantic)]
    if target is not None:
        args += ["--target-pretrained", pretrain_dir(wildcards.preset, wildcards.dataset, target)]
    return shell_sets(args + set_args(flat))


def _warm_start(wildcards):
    return _lookup(warm_starts(wildcards.preset, wildcards.dataset), wildcards.dkey, "diffusion warm start", wildcards.preset)


def diffusion_inputs(wildcards):
    kind, _, pkey, dam_key = _warm_start(wildcards)
    out = {"pretrain": f"{pretrain_dir(wildcards.preset, wildcards.dataset, pkey)}/run.json"}
    if kind == "dans":
        out["dam"] = f"{dam_dir(wildcards.preset, wildcards.dataset, dam_key)}/entities.csv"
    return out


def diffusion_args(wildcards):
    """--kind, --dam and --set arguments of `dans-kgc diffusion fit` (a shell string)."""
    kind, flat, _, dam_key = _warm_start(wildcards)
    args = ["--kind", kind]
    if kind == "dans":
        args += ["--dam", dam_dir(wildcards.preset, wildcards.dataset, dam_key)]
    return shell_sets(args + set_args(flat))


def run_of(wildcards):
    return Run(wildcards.preset, wildcards.dataset, wildcards.experiment, wildcards.variant, int(wildcards.seed))


def stage_inputs(preset, dataset, ov):
    """The data record and the stage outputs a training run (or a tune job: its trials) of a variant reads."""
    out = {"data": fetch_record(preset, dataset)}
    if needs_pretrain(preset, ov):
        out["pretrain"] = f"{pretrain_dir(preset, dataset, pkey_of(preset, ov, 'backbone')[0])}/run.json"
    if needs(preset, ov, "dam"):
        out["dam"] = f"{dam_dir(preset, dataset, dam_key_of(preset, ov))}/entities.csv"
    if needs(preset, ov, "diffusion"):
        out["diffusion"] = f"results/{preset}/{dataset}/diffusion/{dkey_of(preset, ov)[0]}/diffusion.pt"
    return out


STAGE_FLAGS = {"pretrain": "--pretrained", "dam": "--dam", "diffusion": "--diffusion"}


def stage_args(inputs):
    return [a for name, path in inputs.items() if name in STAGE_FLAGS for a in (STAGE_FLAGS[name], str(Path(path).parent))]


def run_inputs(run, ov):
    """The data record, the stage outputs and (a tuned run) the best configuration a training run reads."""
    out = stage_inputs(run.preset, run.dataset, ov)
    if run.experiment == "tuned":  # its configuration: the study's best trial
        out["best"] = f"{tune_dir(run.preset, run.dataset, run.variant)}/best.yaml"
    return out


def train_inputs(wildcards):
    run = run_of(wildcards)
    if canonical(run) != run:
        raise WorkflowError(f"{run_dir(run)} is not trained: it has the same effective settings as "
                            f"{run_dir(canonical(run))} (one run per distinct setting); request that folder")
    return run_inputs(run, variant_overrides(run.preset, run.experiment, run.variant, run.dataset))


def train_args(wildcards):
    """dans-kgc arguments of a training run (the script adds --resume and --set threads=N)."""
    run = run_of(wildcards)
    ov = variant_overrides(run.preset, run.experiment, run.variant, run.dataset)
    flat = train_filter(effective(run.preset, ov), run_sampler(run.preset, ov))
    inputs = train_inputs(wildcards)
    stages = stage_args(inputs)
    if run.experiment == "tuned":
        # best.yaml (--config) sets the searched keys; --set would override it, so those keys are left out here
        searched = tuned_keys(run.preset, ov, inputs)
        flat = {k: v for k, v in flat.items() if k not in searched}
        stages += ["--config", inputs["best"]]
    variant, backbone = variant_tags(run.experiment, run.variant)
    tags = ["--tag", f"experiment={run.experiment}", "--tag", f"variant={variant}"]
    if backbone:
        tags += ["--tag", f"backbone={backbone}"]
    if len(stands_for(run)) > 1:  # the other experiments/variants this run is (a label: the job script resumes)
        tags += ["--tag", f"{STANDS_FOR}={','.join(stands_for(run))}"]
    return ["train", "--dataset", run.dataset, "--out", run_dir(run), "--quiet", *stages, *tags,
            *set_args(flat), "--set", f"seed={run.seed}"]


# ------------------------------------------------------------------------------------------
# helpers of the tune stage (workflow/rules/tune.smk)
# ------------------------------------------------------------------------------------------
def tune_dir(preset, dataset, variant):
    return f"results/{preset}/{dataset}/tune/{variant}"


def tune_jobs(preset):
    """(dataset, variant) of every study a preset runs: one per variant of its `tuned` experiment."""
    return sorted({(r.dataset, r.variant) for r in runs(preset, ["tuned"])})


def tuned_keys(preset, ov, inputs):
    """The keys a variant's study searches (its best.yaml sets them): dans_kgc.tuning resolves the space."""
    from dans_kgc.tuning import space_keys

    given = [{"pretrain": "pretrained"}.get(name, name) for name in inputs if name in STAGE_FLAGS]
    return set(space_keys(_resolved(effective(preset, ov)), given))


def tune_inputs(wildcards):
    return stage_inputs(wildcards.preset, wildcards.dataset,
                        variant_overrides(wildcards.preset, "tuned", wildcards.variant, wildcards.dataset))


def tune_args(wildcards):
    """dans-kgc arguments of a tune job: the run's overrides + the preset's tune.* budget, the tuned runs'
    first seed, the stage inputs of the variant's runs (a shell string; the rule adds --set threads=N)."""
    preset, ds, variant = wildcards.preset, wildcards.dataset, wildcards.variant
    ov = variant_overrides(preset, "tuned", variant, ds)
    flat = effective(preset, ov)
    sets = {**train_filter(flat, run_sampler(preset, ov)), **{k: v for k, v in flat.items() if k.startswith("tune.")}}
    args = ["tune", "--dataset", ds, "--out", tune_dir(preset, ds, variant), "--quiet",
            "--study-name", f"{preset}-{ds}-{variant}", *stage_args(tune_inputs(wildcards)), *set_args(sets),
            "--set", f"seed={experiment_seeds(preset, 'tuned')[0]}"]
    return shell_sets(args)


# ------------------------------------------------------------------------------------------
# helpers of the reports
# ------------------------------------------------------------------------------------------
# output name -> (dans-kgc report KIND, experiments whose runs it reads, sampler filter)
TABLES = {
    "calibration": ("calibration", ["calibration"], None),
    "relations": ("relations", ["calibration"], None),  # each backbone's MRR and anchor diagnostic per relation
    "main": ("main", ["main"], None),
    "ablation": ("ablation", ["ablation"], None),
    "efficiency": ("efficiency", ["main"], None),
    "paper_vs_ours": ("paper", ["main", "ablation"], None),
    "hardness": ("hardness", ["main", "ablation"], None),  # band hardness at the end of training (diffusion runs)
    "curriculum": ("curriculum", ["curriculum"], None),  # open question: the curriculum's order and speed
    "dam_inputs": ("dam_inputs", ["dam_inputs"], None),  # open question Q2: DAM fitted on features of other quality
    "tuning": ("tuning", ["main", "tuned"], None),  # default vs tuned (+ the studies); presets with `tuned` only
    "efficiency_tuned": ("efficiency", ["tuned"], None),  # open question Q1: the training cost of the tuned runs
}
FIGURES = {
    "calibration_curves": ("calibration_curves", ["calibration"], None),
    "sensitivity": ("sensitivity", ["sensitivity"], None),
    "curves": ("curves", ["main"], None),
    "bands": ("bands", ["main", "ablation"], "dans"),
    "curriculum_bands": ("bands", ["curriculum"], "dans"),  # the band weights each curriculum applied
    "tuning_history": ("tuning_history", ["tuned"], None),  # reads the studies only
    "curves_tuned": ("curves", ["tuned"], None),  # open question Q1: validation MRR against wall time, tuned runs
}
TUNING_REPORTS = ("tuning", "tuning_history")  # built where a preset runs the `tuned` experiment


def report_runs(preset, name):
    kind, exps, sampler = {**TABLES, **FIGURES}[name]
    if name in TUNING_REPORTS and not runs(preset, ["tuned"]):
        return []
    return runs(preset, exps, sampler=sampler)


def report_inputs(wildcards):
    name = getattr(wildcards, "table", None) or wildcards.figure
    out = [] if name == "tuning_history" else unique(run_metrics(r) for r in report_runs(wildcards.preset, name))
    if name in TUNING_REPORTS:  # the study folders (study.json); report_args passes their folders
        out += [f"{tune_dir(wildcards.preset, ds, v)}/study.json" for ds, v in tune_jobs(wildcards.preset)]
    return out


def report_args(wildcards, input):
    name = getattr(wildcards, "table", None) or wildcards.figure
    kind, exps, _ = {**TABLES, **FIGURES}[name]
    experiments = [a for e in exps for a in ("--experiment", e)]  # a builder may serve several experiments
    return shell_sets([kind, *PLUGIN_ARGS, *experiments, "--runs", *[str(Path(p).parent) for p in input]])


def table_targets(preset):
    out = [f"results/{preset}/tables/table1_datasets.{ext}" for ext in ("csv", "md")]
    for name in TABLES:
        if report_runs(preset, name):
            out += [f"results/{preset}/tables/{name}.{ext}" for ext in ("csv", "md", "tex")]
    return out + diagnose_targets(preset, "tables")


# ------------------------------------------------------------------------------------------
# helpers of the diagnostics (workflow/rules/diagnose.smk)
# ------------------------------------------------------------------------------------------
DIAGNOSE_DEFAULTS = {"triples": 500, "seed": 0, "experiments": list(EXPERIMENTS), "warm_starts": True}
DIAGNOSE_EXTS = (".json", ".md", ".png")


def diagnose_cfg(preset=None):
    """The top-level `diagnose` settings, then the preset's own `diagnose` entry (e.g. the quick preset
    diagnoses fewer experiments, on fewer triples, to stay a short first run)."""
    own = (preset_cfg(preset).get("diagnose") or {}) if preset else {}
    return {**DIAGNOSE_DEFAULTS, **(config.get("diagnose") or {}), **own}


# the sensitivity sweep's runs are trained for its figure only: their diagnoses go with the figures,
# the other experiments' with the tables (so all_tables still trains no sensitivity run)
DIAGNOSE_GROUPS = {"tables": [e for e in EXPERIMENTS if e != "sensitivity"], "figures": ["sensitivity"]}


def diagnosed_runs(preset, group=None):
    """Every diffusion-using training run (sampler dans or dhns) of the experiments `diagnose.experiments`
    lists (and of one target group: tables | figures)."""
    wanted = [e for e in diagnose_cfg(preset)["experiments"] if e in EXPERIMENTS]
    chosen = unique(canonical(r) for r in runs(preset, wanted)
                    if needs(preset, variant_overrides(preset, r.experiment, r.variant, r.dataset), "diffusion"))
    if group is None:
        return chosen
    # a shared run folder (one run per distinct setting) is diagnosed once, with the tables when any run it
    # stands for belongs to them
    def group_of(c):
        members = {m.experiment for m in run_groups(preset).get(c, [c])} & set(wanted)
        return "tables" if members & set(DIAGNOSE_GROUPS["tables"]) else "figures"

    return [c for c in chosen if group_of(c) == group]


def diagnosed_warm_starts(preset, group=None):
    """(dataset, dkey) of every warm start those runs read (none when `diagnose.warm_starts` is false);
    a warm start shared by both groups belongs to the tables."""
    if not diagnose_cfg(preset)["warm_starts"]:
        return []
    out = []
    for r in diagnosed_runs(preset, group):
        key = (r.dataset, dkey_of(preset, variant_overrides(preset, r.experiment, r.variant, r.dataset))[0])
        if key not in out:
            out.append(key)
    if group == "figures":
        out = [k for k in out if k not in diagnosed_warm_starts(preset, "tables")]
    return out


def diagnose_run_prefix(run):
    return f"results/{run.preset}/{run.dataset}/diagnostics/{run.experiment}/{run.variant}/seed{run.seed}"


def diagnose_warm_start_prefix(preset, dataset, dkey):
    return f"results/{preset}/{dataset}/diagnostics/warm_start/{dkey}"


def diagnose_files(preset, group):
    """The diagnose outputs of one target group (JSON, Markdown, PNG per diagnosis)."""
    prefixes = [diagnose_run_prefix(r) for r in diagnosed_runs(preset, group)]
    prefixes += [diagnose_warm_start_prefix(preset, ds, dkey) for ds, dkey in diagnosed_warm_starts(preset, group)]
    return [p + ext for p in prefixes for ext in DIAGNOSE_EXTS]


def diagnose_targets(preset, group):
    """all_tables: the diagnoses of the table experiments' runs + the table gathering them;
    all_figures: the sensitivity runs' diagnoses."""
    files = diagnose_files(preset, group)
    if group == "tables" and files:
        files += [f"results/{preset}/tables/diagnostics.{ext}" for ext in ("csv", "md")]
    return files


def report_diagnostics_inputs(wildcards):
    return [f for f in diagnose_files(wildcards.preset, "tables") if f.endswith(".json")]


def diagnose_common_args(preset):
    d = diagnose_cfg(preset)
    return ["--triples", str(d["triples"]), "--seed", str(d["seed"]), *set_args({})]


def diagnose_args(wildcards):
    """--triples, --seed and --set arguments of `dans-kgc diagnose --run` (its config is the run's own)."""
    return shell_sets(diagnose_common_args(wildcards.preset))


def diagnose_warm_start_inputs(wildcards):
    kind, _, pkey, dam_key = _warm_start(wildcards)
    out = {"diffusion": f"results/{wildcards.preset}/{wildcards.dataset}/diffusion/{wildcards.dkey}/diffusion.pt",
           "pretrain": f"{pretrain_dir(wildcards.preset, wildcards.dataset, pkey)}/run.json"}
    if kind == "dans":
        out["dam"] = f"{dam_dir(wildcards.preset, wildcards.dataset, dam_key)}/entities.csv"
    return out


def diagnose_warm_start_args(wildcards):
    """Arguments of `dans-kgc diagnose --warm-start` (its config is the warm start's recorded one)."""
    kind, _, pkey, dam_key = _warm_start(wildcards)
    args = ["--warm-start", f"results/{wildcards.preset}/{wildcards.dataset}/diffusion/{wildcards.dkey}",
            "--pretrained", pretrain_dir(wildcards.preset, wildcards.dataset, pkey), "--dataset", wildcards.dataset]
    if kind == "dans":
        args += ["--dam", dam_dir(wildcards.preset, wildcards.dataset, dam_key)]
    return shell_sets(args + diagnose_common_args(wildcards.preset))


def figure_targets(preset):
    out = []
    for name in FIGURES:
        if report_runs(preset, name):
            out += [f"figures/{preset}/{name}.{ext}" for ext in ("png", "pdf")]
    return out + diagnose_targets(preset, "figures")


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
    variant=r"[A-Za-z0-9][A-Za-z0-9_.@-]*",
    dkey=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    pkey=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    table=_alternatives(TABLES),
    figure=_alternatives(FIGURES),


# ------------------------------------------------------------------------------------------
# Snakemake's report (snakemake --report report.zip): the targets of all / all_tables / all_figures flagged
# with report(), one caption per table or figure kind (workflow/report/KIND.rst)
# ------------------------------------------------------------------------------------------
def reported(paths):
    """The targets, with every table (.csv) and figure (.png) flagged for the report."""
    out = []
    for p in paths:
        path = Path(p)
        if path.suffix == ".csv" and path.parent.name == "tables":
            out.append(report(p, caption=f"workflow/report/{path.stem}.rst", category="Tables",
                              labels={"table": path.stem}))
        elif path.suffix == ".png" and p.startswith("figures/"):
            out.append(report(p, caption=f"workflow/report/{path.stem}.rst", category="Figures",
                              subcategory="Paper figures", labels={"figure": path.stem}))
        elif path.suffix == ".png" and "diagnostics" in path.parts:
            name = Path(*path.with_suffix("").parts[path.parts.index("diagnostics") + 1:]).as_posix()
            out.append(report(p, caption="workflow/report/diagnosis.rst", category="Figures",
                              subcategory="Diagnoses", labels={"dataset": path.parts[2], "diagnosis": name}))
        else:
            out.append(p)
    return out


# ------------------------------------------------------------------------------------------
# SLURM status polling (onstart, Snakefile)
# ------------------------------------------------------------------------------------------
# Without slurmdbd the profiles poll job states with `squeue`. slurmctld lists a finished job for
# MinJobAge seconds after it ends; snakemake-executor-plugin-slurm counts a job that squeue no longer
# lists as still queued, so a job forgotten before the next status check is waited for forever. The
# plugin's checks are at most 180 s apart (its max_sleep_time); below 3 x the first interval it switches
# to sacct, which fails without accounting. So MinJobAge must exceed both, with a margin for the queries.
SLURM_MAX_POLL_GAP = 180
SLURM_POLL_MARGIN = 60


def slurm_min_job_age():
    """MinJobAge of the cluster in seconds (`scontrol show config`), None when it cannot be read."""
    import subprocess

    try:
        text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^MinJobAge\s*=\s*(\d+)\s*(sec|min|hour)?", text, re.MULTILINE)
    if not m:
        return None
    return int(m.group(1)) * {"min": 60, "hour": 3600}.get(m.group(2), 1)


def check_slurm_polling():
    """Stop before submitting anything when squeue could forget a finished job before Snakemake polls."""
    plugin, settings = workflow.executor_plugin, workflow.executor_settings
    if plugin is None or plugin.name != "slurm" or getattr(settings, "status_command", None) != "squeue":
        return
    age = slurm_min_job_age()
    init = getattr(settings, "init_seconds_before_status_checks", None) or 40
    needed = max(SLURM_MAX_POLL_GAP, 3 * init) + SLURM_POLL_MARGIN
    if age is not None and age < needed:
        raise WorkflowError(
            f"SLURM MinJobAge={age}s is below {needed}s: squeue would forget finished jobs before Snakemake's "
            f"next status check (up to {SLURM_MAX_POLL_GAP}s apart) and the workflow would wait for them forever; "
            "set MinJobAge=3600 in slurm.conf and run `scontrol reconfigure`, or poll with "
            "--slurm-status-command sacct where slurmdbd accounting is set up")
