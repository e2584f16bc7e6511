"""The planner: the workflow config (config.yaml as a dict) -> runs, stage folders, one run per distinct setting,
and each job's dans-kgc arguments and inputs. See ``dans_kgc.planning`` for the layout and the public API."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml

import dans_kgc
from dans_kgc.config import (
    PER_DATASET,
    ConfigError,
    apply_per_dataset,
    merge,
    validate_values,
)
from dans_kgc.planning.overrides import (
    Flat,
    defaults,
    fmt,
    is_default,
    json_memo,
    name_part,
    nest,
    resolved,
    train_filter,
    value,
)
from dans_kgc.recipes import recipe_entries
from dans_kgc.stages import (
    DRAW_ONLY_SAMPLERS,
    TRANSE_SOURCES,
    fingerprint,
    flatten,
    pretrain_config,
    stage_keys,
)


class PlanError(ValueError):
    """The workflow config cannot be planned, or a job was asked for that the plan does not have (one line:
    the config key and what was expected)."""


# Keys the workflow sets itself; a preset or variant may not override them.
MANAGED_KEYS = {
    "seed": "the preset's `seeds` list (one run per seed)",
    "threads": "the threads of each job (profiles: set-threads)",
    "device": "the top-level config key `device`",
    "data.root": "the top-level config key `data_root`",
    "data.mirror": "the top-level config key `data_mirror` or DANS_KGC_DATA_MIRROR",
}
# tuned: the main variants again, each from its sampler's best configuration of `dans-kgc tune`
EXPERIMENTS = (
    "calibration",
    "main",
    "ablation",
    "sensitivity",
    "curriculum",
    "dam_inputs",
    "tuned",
)
# experiments whose variants a preset's `backbones:` list crosses with each backbone (variant@backbone)
CROSSED = ("main", "ablation", "sensitivity", "curriculum", "dam_inputs", "tuned")
# dam.* keys a variant may set (each DAM fit gets its own folder, see dam_key_of); the other dam.* and
# pretrain.* keys shape per-dataset stages and belong to a preset's overrides
VARIANT_DAM_KEYS = ("dam.semantic_source", "dam.target_source", "dam.short_epochs")
BACKBONE_SEP = "@"
# what a backbone *is*: the DAG crosses and leaves out (variant, backbone) pairs by these, on every dataset alike
BACKBONE_IDENTITY_KEYS = ("model.name", "train.mode", "train.sampler")
STANDS_FOR = "stands_for"  # the tag listing experiment/variant pairs a shared run folder stands for
DKEY_FIELDS = ["diffusion.mu", "diffusion.condition", "dans.use_dam"]
STAGE_FLAGS = {"pretrain": "--pretrained", "dam": "--dam", "diffusion": "--diffusion"}

# report output name -> (dans-kgc report KIND, experiments whose runs it reads, sampler filter)
TABLES = {
    "calibration": ("calibration", ["calibration"], None),
    # each backbone's MRR and anchor diagnostic per relation
    "relations": ("relations", ["calibration"], None),
    "main": ("main", ["main"], None),
    "ablation": ("ablation", ["ablation"], None),
    "efficiency": ("efficiency", ["main"], None),
    "paper_vs_ours": ("paper", ["main", "ablation"], None),
    # band hardness at the end of training (diffusion runs)
    "hardness": ("hardness", ["main", "ablation"], None),
    # the curriculum's order and speed
    "curriculum": ("curriculum", ["curriculum"], None),
    # DAM fitted on features of other quality
    "dam_inputs": ("dam_inputs", ["dam_inputs"], None),
    # default vs tuned (+ the studies); presets with `tuned` only
    "tuning": ("tuning", ["main", "tuned"], None),
    # the training cost of the tuned runs
    "efficiency_tuned": ("efficiency", ["tuned"], None),
}
FIGURES = {
    "calibration_curves": ("calibration_curves", ["calibration"], None),
    "sensitivity": ("sensitivity", ["sensitivity"], None),
    "curves": ("curves", ["main"], None),
    "bands": ("bands", ["main", "ablation"], "dans"),
    # the band weights each curriculum applied
    "curriculum_bands": ("bands", ["curriculum"], "dans"),
    # reads the studies only
    "tuning_history": ("tuning_history", ["tuned"], None),
    # validation MRR against wall time, tuned runs
    "curves_tuned": ("curves", ["tuned"], None),
}
# built where a preset runs the `tuned` experiment
TUNING_REPORTS = ("tuning", "tuning_history")

DIAGNOSE_DEFAULTS = {
    "triples": 500,
    "seed": 0,
    "experiments": list(EXPERIMENTS),
    "warm_starts": True,
}
DIAGNOSE_EXTS = (".json", ".md", ".png")
# the sensitivity sweep's runs are trained for its figure only: their diagnoses go with the figures,
# the other experiments' with the tables (so all_tables still trains no sensitivity run)
DIAGNOSE_GROUPS = {
    "tables": [e for e in EXPERIMENTS if e != "sensitivity"],
    "figures": ["sensitivity"],
}
DEFAULT_RESOURCES = {"mem_mb": 2000, "runtime": 30}
CUSTOM_DATASET_FILES = ("entities", "relations", "facts", "train", "valid", "test")

# the package's registry of dataset names, read as a file: importing dans_kgc.datasets would import torch,
# seconds added to every Snakemake start (and to every cluster job, which parses the workflow again)
REGISTRY = Path(dans_kgc.__file__).parent / "datasets" / "registry.yaml"

M = TypeVar("M", bound=Callable[..., Any])


def backbone_recipes(config: Mapping[str, Any]) -> dict[str, Any]:
    """The named backbone recipes (name -> flat dans-kgc overrides, optionally with `per_dataset`): dans-kgc's
    (dans_kgc/recipes.yaml and those plugins register), then the workflow config's own `backbones:`, where an
    entry with a known name replaces that recipe whole (in its place). Every reader of the recipes goes through
    here."""
    return {**recipe_entries(), **(config.get("backbones") or {})}


class Run(NamedTuple):
    """One training run of the matrix preset x dataset x experiment x variant x seed."""

    preset: str
    dataset: str
    experiment: str
    variant: str
    seed: int


def _memo(method: M) -> M:
    """json_memo per planner: the method's answers are pure in its arguments for one workflow config."""

    @functools.wraps(method)
    def wrapper(self: Planner, *args: Any) -> Any:
        memoised = self._memos.get(method.__name__)
        if memoised is None:
            memoised = self._memos[method.__name__] = json_memo(functools.partial(method, self))
        return memoised(*args)

    return wrapper  # type: ignore[return-value]


def unique(items: Any) -> list:
    return list(dict.fromkeys(items))


def variant_tags(experiment: str, variant: str) -> tuple[str, str | None]:
    """(variant, backbone) labels of a run folder name: calibration variants are backbones; a crossed
    variant is variant@backbone; otherwise the backbone is the preset's (None: not named)."""
    if experiment == "calibration":
        return variant, variant
    base, _, backbone = variant.partition(BACKBONE_SEP)
    return base, backbone or None


# ------------------------------------------------------------------------------------------
# paths (the rules' output patterns, workflow/rules/*.smk)
# ------------------------------------------------------------------------------------------
def fetch_record(preset: str, dataset: str) -> str:
    return f"results/{preset}/{dataset}/data/fetch.txt"


def pretrain_dir(preset: str, dataset: str, pkey: str) -> str:
    return f"results/{preset}/{dataset}/pretrain/{pkey}"


def dam_dir(preset: str, dataset: str, dam_key: str) -> str:
    return f"results/{preset}/{dataset}/dam/{dam_key}"


def diffusion_dir(preset: str, dataset: str, dkey: str) -> str:
    return f"results/{preset}/{dataset}/diffusion/{dkey}"


def run_dir(run: Run) -> str:
    return f"results/{run.preset}/{run.dataset}/{run.experiment}/{run.variant}/seed{run.seed}"


def tune_dir(preset: str, dataset: str, variant: str) -> str:
    return f"results/{preset}/{dataset}/tune/{variant}"


def diagnose_run_prefix(run: Run) -> str:
    return f"results/{run.preset}/{run.dataset}/diagnostics/{run.experiment}/{run.variant}/seed{run.seed}"


def diagnose_warm_start_prefix(preset: str, dataset: str, dkey: str) -> str:
    return f"results/{preset}/{dataset}/diagnostics/warm_start/{dkey}"


def stage_args(inputs: Mapping[str, str]) -> list[str]:
    """--pretrained / --dam / --diffusion DIR of the stage outputs among a job's inputs."""
    return [
        a for name, path in inputs.items() if name in STAGE_FLAGS for a in (STAGE_FLAGS[name], str(Path(path).parent))
    ]


class Planner:
    """Plans the DAG of one workflow config (config.yaml as a dict, after its schema check).

    Constructing it checks the config beyond the schema (datasets, backbones, presets, variants, every variant's
    dans-kgc overrides as the CLI would) and raises PlanError naming the key. ``load_plugins``: import the config's
    plugins (their backbones and samplers are valid names then); relative paths are read from the working folder.
    """

    def __init__(self, config: Mapping[str, Any], *, load_plugins: bool = True) -> None:
        self.config = config
        self._memos: dict[str, Callable[..., Any]] = {}
        self._groups: dict[str, dict[Run, list[Run]]] = {}
        self._canonical: dict[str, dict[Run, Run]] = {}
        self.datasets = list(yaml.safe_load(REGISTRY.read_text()))
        # your own datasets (config `datasets`, dans-kgc's data.custom): absolute paths, since jobs may run elsewhere
        self.custom_datasets = {
            name: {**entry, "path": os.path.abspath(entry["path"])}
            for name, entry in (config.get("datasets") or {}).items()
        }
        for ds, entry in self.custom_datasets.items():
            if ds.lower() in self.datasets:
                raise PlanError(f"config datasets.{ds}: '{ds}' is a registered dataset; give yours another name")
            missing = [
                f for f in ("train.txt", "valid.txt", "test.txt") if not os.path.isfile(os.path.join(entry["path"], f))
            ]
            if missing:
                raise PlanError(
                    f"config datasets.{ds}.path: {entry['path']} has no {', '.join(missing)} (expected "
                    "train.txt, valid.txt, test.txt and optionally facts.txt, entities.txt, relations.txt)"
                )
        self.datasets += list(self.custom_datasets)
        # plugins (config `plugins`): every job imports them first (--plugin); files made absolute, since jobs may
        # run elsewhere. Part of every job's arguments, so adding or removing a plugin reruns the jobs.
        self.plugins = [
            os.path.abspath(p) if p.endswith(".py") or os.path.isfile(p) else p for p in config.get("plugins") or []
        ]
        self.plugin_args = [a for p in self.plugins for a in ("--plugin", p)]
        if self.plugins and load_plugins:
            # so the check of model.name knows a plugin's backbone and a broken plugin stops the planning
            # (costs a torch import only when plugins are configured)
            from dans_kgc.plugins import PluginError
            from dans_kgc.plugins import load_plugins as load

            try:
                load(self.plugins)
            except PluginError as err:
                raise PlanError(f"config plugins: {err}") from None
        # after the plugins, whose recipes count too
        self.recipes = backbone_recipes(config)
        if "preset" in config:
            self.check_preset(config["preset"])
        self._validate()

    # --------------------------------------------------------------------------------------
    # the config
    # --------------------------------------------------------------------------------------
    def check_preset(self, preset: str) -> None:
        if preset not in self.config["presets"]:
            raise PlanError(
                f"config key 'preset': '{preset}' is not defined under 'presets' "
                f"(defined: {', '.join(self.config['presets'])})"
            )

    def preset_cfg(self, preset: str) -> dict[str, Any]:
        return self.config["presets"][preset]

    def preset_overrides(self, preset: str) -> Flat:
        return dict(self.preset_cfg(preset).get("overrides") or {})

    def selection(self, preset: str, experiment: str) -> dict[str, Any] | None:
        """The preset's selection for an experiment, or None when the preset does not run it."""
        chosen = (self.preset_cfg(preset).get("experiments") or {}).get(experiment)
        if chosen is None or experiment not in self.config["experiments"]:
            return None
        return chosen

    def recipe(self, backbone: str, dataset: str | None = None) -> Flat:
        """A backbone's recipe (flat dans-kgc overrides) on one dataset: its shared keys, then the dataset's own
        entry of `per_dataset` (dataset None: the shared keys only)."""
        return apply_per_dataset(self.recipes[backbone], dataset)

    def effective(self, preset: str, variant_ov: Mapping[str, Any] | None = None) -> Flat:
        """preset overrides, then variant overrides (flat dict)."""
        return {**self.preset_overrides(preset), **(variant_ov or {})}

    def normalized_overrides(self, preset: str, variant_ov: Mapping[str, Any]) -> Flat:
        """Variant overrides in a canonical form: the effective settings less the keys the preset leaves alone
        and the variant sets to the package default. Two runs of a preset with the same effective settings get
        the same form (sensitivity mu1.0, when diffusion.mu defaults to 1.0, and main dans). Only for comparing
        runs: a job's own `--set` list stays as configured (so no finished run's params change)."""
        given = self.preset_overrides(preset)
        return {k: v for k, v in self.effective(preset, variant_ov).items() if k in given or not is_default(k, v)}

    def run_sampler(self, preset: str, variant_ov: Mapping[str, Any]) -> str:
        return value(self.effective(preset, variant_ov), "train.sampler")

    def needs(self, preset: str, variant_ov: Mapping[str, Any], stage: str) -> bool:
        return stage in (self.config.get("sampler_stages") or {}).get(self.run_sampler(preset, variant_ov), [])

    def needs_pretrain(self, preset: str, variant_ov: Mapping[str, Any]) -> bool:
        """A run reads its backbone's pretraining when it starts from it (train.init_from_pretrained)."""
        return bool(value(self.effective(preset, variant_ov), "train.init_from_pretrained"))

    # --------------------------------------------------------------------------------------
    # the run matrix
    # --------------------------------------------------------------------------------------
    @_memo
    def experiment_variants(self, preset: str, experiment: str, dataset: str | None = None) -> dict[str, Flat]:
        """variant name -> dans-kgc overrides (flat, dotted keys) of one experiment in one preset, on one dataset
        (None: without any backbone recipe's dataset-specific keys; the same variants, the same sampler and mode)."""
        chosen = self.selection(preset, experiment)
        if chosen is None:
            return {}
        spec = self.config["experiments"][experiment]
        if experiment == "calibration":  # each backbone on its own, with its native loss and recipe
            variants = {name: {**(spec.get("base") or {}), **self.recipe(name, dataset)} for name in self.recipes}
        elif experiment == "sensitivity":
            variants = self._sensitivity_variants(preset, chosen, spec)
        elif experiment == "tuned":  # main's variants, each tuned first
            variants = dict(self.config["experiments"]["main"]["variants"])
        else:
            variants = dict(spec["variants"])
        wanted = chosen.get("variants")
        if wanted:
            unknown = [v for v in wanted if v not in variants]
            if unknown:
                raise PlanError(
                    f"config presets.{preset}.experiments.{experiment}.variants: unknown variant(s) "
                    f"{', '.join(unknown)} (defined: {', '.join(variants)})"
                )
            variants = {v: variants[v] for v in wanted}
        crossed = self.preset_cfg(preset).get("backbones")
        if crossed and experiment in CROSSED:
            variants = {
                f"{v}{BACKBONE_SEP}{b}": {**self.recipe(b, dataset), **ov}
                for b in crossed
                for v, ov in variants.items()
                if not self._left_out_of_crossing(preset, {**self.recipe(b), **ov})
            }
        return variants

    def _sensitivity_variants(self, preset: str, chosen: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Flat]:
        grids = chosen.get("grid") or {}
        unknown = set(grids) - set(spec["grid"])
        if unknown:
            raise PlanError(
                f"config presets.{preset}.experiments.sensitivity.grid: unknown grid "
                f"{', '.join(sorted(unknown))} (defined: {', '.join(spec['grid'])})"
            )
        variants = {}
        for name, g in spec["grid"].items():
            if grids and name not in grids:  # a preset that lists grids runs those only
                continue
            if "points" in g:  # named points, each a set of overrides (K_b moves band_steps and margin_scales)
                for point in map(str, grids.get(name, list(g["points"]))):
                    if point not in g["points"]:
                        raise PlanError(
                            f"config presets.{preset}.experiments.sensitivity.grid.{name}: unknown point '{point}' "
                            f"(defined under experiments.sensitivity.grid.{name}.points: "
                            f"{', '.join(map(str, g['points']))})"
                        )
                    variants[f"{name}{point}"] = {
                        **(spec.get("base") or {}),
                        **g["points"][point],
                    }
                continue
            for val in grids.get(name, g["values"]):
                variants[f"{name}{name_part(val)}"] = {
                    **(spec.get("base") or {}),
                    g["key"]: val,
                }
        return variants

    def _left_out_of_crossing(self, preset: str, variant_ov: Mapping[str, Any]) -> bool:
        """A (variant, backbone) pair the Trainer would refuse: a draw-only sampler on a 1-N backbone (which
        scores every entity, so the sampler would mean nothing), or a sampler the backbone's model cannot run
        (config `unsupported_samplers`, with its reason)."""
        flat = self.effective(preset, variant_ov)
        unsupported = (self.config.get("unsupported_samplers") or {}).get(value(flat, "model.name")) or {}
        sampler = value(flat, "train.sampler")
        return (
            value(flat, "train.mode") == "one_to_n" and sampler in DRAW_ONLY_SAMPLERS
        ) or sampler in unsupported.get("samplers", [])

    def experiment_datasets(self, preset: str, experiment: str) -> list[str]:
        chosen = self.selection(preset, experiment) or {}
        return list(chosen.get("datasets") or self.preset_cfg(preset)["datasets"])

    def experiment_seeds(self, preset: str, experiment: str) -> list[int]:
        chosen = self.selection(preset, experiment) or {}
        return list(chosen.get("seeds") or self.preset_cfg(preset)["seeds"])

    def runs(
        self,
        preset: str,
        experiments: tuple[str, ...] | list[str] = EXPERIMENTS,
        sampler: str | None = None,
    ) -> list[Run]:
        """Every training run of a preset (optionally of some experiments / one sampler)."""
        out = []
        for exp in experiments:
            # the sampler is the same on every dataset (per_dataset cannot set BACKBONE_IDENTITY_KEYS)
            for variant, ov in self.experiment_variants(preset, exp).items():
                if sampler is not None and self.run_sampler(preset, ov) != sampler:
                    continue
                for ds in self.experiment_datasets(preset, exp):
                    for seed in self.experiment_seeds(preset, exp):
                        out.append(Run(preset, ds, exp, variant, seed))
        return out

    def preset_datasets(self, preset: str) -> list[str]:
        """Every dataset a preset touches (its list plus any experiment-specific ones)."""
        seen = list(self.preset_cfg(preset)["datasets"])
        for exp in EXPERIMENTS:
            if self.selection(preset, exp) is not None:
                seen += [d for d in self.experiment_datasets(preset, exp) if d not in seen]
        return seen

    def variant_overrides(self, preset: str, experiment: str, variant: str, dataset: str | None = None) -> Flat:
        variants = self.experiment_variants(preset, experiment, dataset)
        if variant not in variants:
            raise PlanError(
                f"preset '{preset}' has no variant '{variant}' in experiment '{experiment}' "
                f"(defined: {', '.join(variants) or 'none; the preset does not run this experiment'})"
            )
        return variants[variant]

    def run_overrides(self, run: Run) -> Flat:
        return self.variant_overrides(run.preset, run.experiment, run.variant, run.dataset)

    def _all_variants(self, preset: str, dataset: str) -> Iterator[tuple[str, str, Flat]]:
        for exp in EXPERIMENTS:
            if dataset in self.experiment_datasets(preset, exp):
                for variant, ov in self.experiment_variants(preset, exp, dataset).items():
                    yield exp, variant, ov

    # --------------------------------------------------------------------------------------
    # config checks beyond the schema
    # --------------------------------------------------------------------------------------
    def _validate(self) -> None:
        recipes = self.recipes
        for name, spec in recipes.items():
            if "model.name" not in spec:  # only a config entry can lack it: the package's are checked on import
                whole = f" (it replaces the registered recipe '{name}' whole)" if name in recipe_entries() else ""
                raise PlanError(
                    f"config backbones.{name}: no model.name; a recipe names the backbone it sets up{whole}"
                )
            self._check_overrides(f"backbones.{name}", self.recipe(name))
            self._check_dans_config(f"backbones.{name}", self.recipe(name))
            for ds, own in (spec.get(PER_DATASET) or {}).items():
                where = f"backbones.{name}.{PER_DATASET}.{ds}"
                if ds not in self.datasets:
                    raise PlanError(f"config {where}: unknown dataset '{ds}' (registered: {', '.join(self.datasets)})")
                fixed = [k for k in own if k in BACKBONE_IDENTITY_KEYS]
                if fixed:
                    raise PlanError(
                        f"config {where}: key '{fixed[0]}' says what the backbone is, the same on every "
                        f"dataset; set it in backbones.{name} (or define another backbone)"
                    )
                self._check_overrides(where, own)
                self._check_dans_config(where, self.recipe(name, ds))
        for preset, p in self.config["presets"].items():
            unknown = [b for b in p.get("backbones") or [] if b not in recipes]
            if unknown:
                raise PlanError(
                    f"config presets.{preset}.backbones: unknown backbone(s) {', '.join(unknown)} "
                    f"(known: {', '.join(recipes)}; dans-kgc's, your plugins' and config `backbones`)"
                )
            self._check_overrides(f"presets.{preset}.overrides", p.get("overrides") or {})
            for ds in p["datasets"]:
                if ds not in self.datasets:
                    raise PlanError(
                        f"config presets.{preset}.datasets: unknown dataset '{ds}' "
                        f"(registered: {', '.join(self.datasets)})"
                    )
            self._check_dans_config(f"presets.{preset}.overrides", self.preset_overrides(preset))
            for exp in EXPERIMENTS:
                self._validate_experiment(preset, exp)
        for sampler, stages in (self.config.get("sampler_stages") or {}).items():
            if "diffusion" in stages and sampler not in ("dans", "dhns"):
                raise PlanError(f"config sampler_stages.{sampler}: only dans and dhns have a diffusion warm start")

    def _validate_experiment(self, preset: str, exp: str) -> None:
        for ds in self.experiment_datasets(preset, exp):
            if ds not in self.datasets:
                raise PlanError(f"config presets.{preset}.experiments.{exp}.datasets: unknown dataset '{ds}'")
        for variant, ov in [
            kv
            for ds in [None, *self.experiment_datasets(preset, exp)]
            for kv in self.experiment_variants(preset, exp, ds).items()
        ]:
            where = f"experiments.{exp} variant '{variant}' (preset '{preset}')"
            self._check_overrides(where, ov)
            for key in ov:
                if key.startswith(("pretrain.", "dam.")) and key not in VARIANT_DAM_KEYS:
                    raise PlanError(
                        f"config {where}: key '{key}' belongs to a per-dataset stage; "
                        f"set it in presets.{preset}.overrides"
                    )
            self._check_dans_config(where, self.effective(preset, ov))

    @staticmethod
    def _check_overrides(where: str, overrides: Mapping[str, Any]) -> None:
        for key in overrides:
            if key in MANAGED_KEYS:
                raise PlanError(f"config {where}: key '{key}' is set by the workflow from {MANAGED_KEYS[key]}")

    @staticmethod
    def _check_dans_config(where: str, flat: Mapping[str, Any]) -> None:
        """What `dans-kgc --set k=v ...` would say about these overrides (as dans_kgc.config.load_config)."""
        try:
            validate_values(merge(defaults(), nest(flat), f"config {where}"))
        except ConfigError as err:
            raise PlanError(str(err)) from None

    # --------------------------------------------------------------------------------------
    # stage outputs shared by runs: pretrainings, DAM fits, diffusion warm starts
    # --------------------------------------------------------------------------------------
    @_memo
    def pkey_of(self, preset: str, variant_ov: Mapping[str, Any], source: str) -> tuple[str, str, Flat]:
        """(pkey, source, overrides) of the Stage-0 pretraining a run reads; pkey = <backbone>-<hash of what it
        trains with>.

        source: backbone (the run's own backbone, for initialisation and the warm start) | transe
        (the base reading's TransE, DAM's default semantic source). Runs whose pretraining would be the same
        share one folder; the hash covers every key the pretrain stage reads (dans_kgc/stages.py).
        The base reading's TransE is a per-dataset stage: only the preset's overrides shape it, never a
        variant's or a backbone recipe's (variants cannot set pretrain.* or dam.* keys).
        """
        if source in TRANSE_SOURCES:
            flat = {
                **self.preset_overrides(preset),
                **{k: v for k, v in (variant_ov or {}).items() if k in VARIANT_DAM_KEYS},
            }
        else:
            flat = self.effective(preset, variant_ov)
        pcfg = pretrain_config(resolved(flat), source)
        trained = stage_keys(flatten(pcfg), "pretrain")
        # the job's overrides: what it trains with, where that differs from the defaults (the CLI applies
        # pretrain_config again, which leaves these unchanged), so e.g. train.epochs of a TransE backbone,
        # which its Stage 0 replaces by pretrain.epochs, is no rerun trigger
        passed = {k: v for k, v in trained.items() if value({}, k) != v}
        if source == "transe_short":  # the CLI derives train.epochs from it again
            passed["dam.short_epochs"] = value(flat, "dam.short_epochs")
        return f"{pcfg['model']['name']}-{fingerprint(trained)[:8]}", source, passed

    @_memo
    def semantic_pkey(self, preset: str, variant_ov: Mapping[str, Any]) -> tuple[str, str, Flat]:
        return self.pkey_of(
            preset,
            variant_ov,
            value(self.effective(preset, variant_ov), "dam.semantic_source"),
        )

    @_memo
    def target_pkey(self, preset: str, variant_ov: Mapping[str, Any]) -> tuple[str, str, Flat] | None:
        """The pretraining whose ranks are DAM's target when dam.target_source names another source than the
        semantic one (then `dam fit` takes it as --target-pretrained, even where both sources train the same
        model); else None."""
        flat = self.effective(preset, variant_ov)
        source = value(flat, "dam.target_source")
        if source in ("semantic", value(flat, "dam.semantic_source")):
            return None
        return self.pkey_of(preset, variant_ov, source)

    @_memo
    def dam_key_of(self, preset: str, variant_ov: Mapping[str, Any]) -> str:
        """Folder key of the DAM fit a run reads: its semantic pretraining's pkey, plus `_by_<target pkey>` when
        the observed-difficulty target comes from another pretraining (dam.target_source). Fits whose two
        pretrainings are the same run (e.g. semantic and target sources both TransE) share the plain folder."""
        target = self.target_pkey(preset, variant_ov)
        semantic = self.semantic_pkey(preset, variant_ov)[0]
        return semantic if target is None or target[0] == semantic else f"{semantic}_by_{target[0]}"

    @_memo
    def dkey_of(self, preset: str, variant_ov: Mapping[str, Any]) -> tuple[str, str, Flat]:
        """(dkey, kind, overrides) of the warm start a run uses.

        dans: dans-mu<mu>-<condition>-<dam|nodam>-<hash>; dhns: dhns-<hash>. The hash covers the other
        keys the warm start reads and the pretraining (and DAM) it is fitted on, so a T sweep or another
        backbone gets its own warm start.
        """
        sampler = self.run_sampler(preset, variant_ov)
        flat = self.effective(preset, variant_ov)
        # DAM keys act through the DAM folder (in `inputs` below); one spelt out at its default (dam_inputs'
        # full_transe) reads the same warm start as a run that does not set it
        relevant = {
            k: v
            for k, v in stage_keys(flat, f"diffusion_{sampler}").items()
            if not (k in VARIANT_DAM_KEYS and is_default(k, v))
        }
        if sampler == "dans":
            mu, cond, use_dam = (value(flat, k) for k in DKEY_FIELDS)
            key = f"dans-mu{name_part(mu)}-{name_part(cond)}-{'dam' if use_dam else 'nodam'}"
        else:
            key = sampler
        inputs = [self.pkey_of(preset, variant_ov, "backbone")[0]]
        if sampler == "dans":
            inputs.append(self.dam_key_of(preset, variant_ov))
        digest = fingerprint({**relevant, "inputs": inputs})[:6]
        return f"{key}-{digest}", sampler, relevant

    def pretrainings(self, preset: str, dataset: str) -> dict[str, tuple[str, Flat]]:
        """pkey -> (source, overrides) over every pretraining a preset's runs, DAM fits and warm starts read on
        one dataset."""
        out: dict[str, tuple[str, Flat]] = {}
        for _, _, ov in self._all_variants(preset, dataset):
            wanted = []
            if self.needs_pretrain(preset, ov) or self.needs(preset, ov, "diffusion"):
                wanted.append(self.pkey_of(preset, ov, "backbone"))
            if self.needs(preset, ov, "dam"):
                wanted.append(self.semantic_pkey(preset, ov))
                target = self.target_pkey(preset, ov)
                if target is not None:
                    wanted.append(target)
            for key, source, flat in wanted:
                out.setdefault(key, (source, flat))
        return out

    def dam_fits(self, preset: str, dataset: str) -> dict[str, tuple[str, str | None, Flat]]:
        """DAM key -> (semantic pkey, target pkey or None, overrides) of each DAM fit a preset's runs read on one
        dataset."""
        out: dict[str, tuple[str, str | None, Flat]] = {}
        for _, _, ov in self._all_variants(preset, dataset):
            if self.needs(preset, ov, "dam"):
                target = self.target_pkey(preset, ov)
                out.setdefault(
                    self.dam_key_of(preset, ov),
                    (
                        self.semantic_pkey(preset, ov)[0],
                        target and target[0],
                        stage_keys(self.effective(preset, ov), "dam"),
                    ),
                )
        return out

    def warm_starts(self, preset: str, dataset: str) -> dict[str, tuple[str, Flat, str, str | None]]:
        """dkey -> (kind, overrides, backbone pkey, DAM key or None) over every run of a preset that needs one,
        on one dataset."""
        out = {}
        for _, _, ov in self._all_variants(preset, dataset):
            if self.needs(preset, ov, "diffusion"):
                key, kind, flat = self.dkey_of(preset, ov)
                dam_key = self.dam_key_of(preset, ov) if kind == "dans" else None
                out[key] = (
                    kind,
                    flat,
                    self.pkey_of(preset, ov, "backbone")[0],
                    dam_key,
                )
        return out

    def _lookup(self, table: Mapping[str, Any], key: str, what: str, preset: str) -> Any:
        if key not in table:
            raise PlanError(f"no {what} '{key}' in preset '{preset}' (defined: {', '.join(table) or 'none'})")
        return table[key]

    def pretraining(self, preset: str, dataset: str, pkey: str) -> tuple[str, Flat]:
        return self._lookup(self.pretrainings(preset, dataset), pkey, "pretraining", preset)

    def dam_fit(self, preset: str, dataset: str, dam_key: str) -> tuple[str, str | None, Flat]:
        return self._lookup(self.dam_fits(preset, dataset), dam_key, "DAM fit", preset)

    def warm_start(self, preset: str, dataset: str, dkey: str) -> tuple[str, Flat, str, str | None]:
        return self._lookup(self.warm_starts(preset, dataset), dkey, "diffusion warm start", preset)

    # --------------------------------------------------------------------------------------
    # one run per distinct setting: runs of a preset whose training would be the same (same dataset, seed,
    # stage folders and effective --set overrides; tags do not count) train once, in the folder of the first
    # of them in EXPERIMENTS order, calibration > main > ablation > sensitivity > ... (then variant, dataset,
    # seed): e.g. ablation `full` and the sensitivity base points mu1.0 / eta0.5 read main/dans. The run's tags
    # say which experiment/variant pairs it stands for (--tag stands_for=...), and the reports place it in each.
    # --------------------------------------------------------------------------------------
    def train_settings(self, run: Run) -> dict[str, Any]:
        """What a training run computes, without where it goes or how it is labelled."""
        ov = self.normalized_overrides(run.preset, self.run_overrides(run))
        flat = train_filter(self.effective(run.preset, ov), self.run_sampler(run.preset, ov))
        return {
            "dataset": run.dataset,
            "seed": run.seed,
            "stages": self.run_inputs(run, ov),
            "set": {k: fmt(v) for k, v in sorted(flat.items())},
        }

    def run_groups(self, preset: str) -> dict[Run, list[Run]]:
        """canonical Run -> every Run of the preset with its settings (the canonical one first)."""
        if preset not in self._groups:
            by_key: dict[str, Run] = {}
            groups: dict[Run, list[Run]] = {}
            for r in self.runs(preset):
                canon = by_key.setdefault(fingerprint(self.train_settings(r)), r)
                groups.setdefault(canon, []).append(r)
            self._groups[preset] = groups
        return self._groups[preset]

    def canonical(self, run: Run) -> Run:
        """The run whose folder holds this run's results (itself unless an earlier run has its settings)."""
        if run.preset not in self._canonical:
            self._canonical[run.preset] = {
                member: canon for canon, members in self.run_groups(run.preset).items() for member in members
            }
        return self._canonical[run.preset].get(run, run)

    def stands_for(self, run: Run) -> list[str]:
        """experiment/variant labels of every run a canonical run stands for."""
        return [f"{m.experiment}/{m.variant}" for m in self.run_groups(run.preset).get(self.canonical(run), [run])]

    def run_metrics(self, run: Run) -> str:
        """The metrics of a run: those of its canonical run folder (one run per distinct setting)."""
        return f"{run_dir(self.canonical(run))}/metrics_test.json"

    # --------------------------------------------------------------------------------------
    # the jobs' arguments (without --set threads=N, which each rule adds) and inputs
    # --------------------------------------------------------------------------------------
    def set_args(self, flat: Mapping[str, Any]) -> list[str]:
        """The plugins and sorted `--set key=value` arguments (a list: stable, so usable as a rerun trigger)."""
        out = [
            f"device={self.config['device']}",
            f"data.root={self.config['data_root']}",
        ]
        out += [f"{k}={fmt(v)}" for k, v in sorted(flat.items())]
        return self.plugin_args + [a for item in out for a in ("--set", item)]

    def fetch_args(self, preset: str, dataset: str) -> list[str]:
        """The --set arguments of `dans-kgc data fetch DATASET`."""
        args = self.set_args(stage_keys(self.preset_overrides(preset), "fetch"))
        if dataset in self.custom_datasets:  # only the fetch needs the entry: later jobs read its manifest
            args += [
                "--set",
                f"data.custom={fmt({dataset: self.custom_datasets[dataset]})}",
            ]
        return args

    def fetch_checksums(self, dataset: str) -> dict[str, str]:
        """SHA-256 of each file of your own dataset's folder (a rerun trigger: a changed file reruns the fetch,
        and its new record everything built on it); registered datasets: fixed by the registry, none."""
        entry = self.custom_datasets.get(dataset)
        if entry is None:
            return {}
        folder = Path(entry["path"])
        return {
            f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.glob("*.txt"))
            if f.stem in CUSTOM_DATASET_FILES
        }

    def stats_inputs(self, preset: str) -> list[str]:
        return [fetch_record(preset, ds) for ds in self.preset_datasets(preset)]

    def stats_args(self, preset: str) -> list[str]:
        """The --set arguments of `dans-kgc data stats`."""
        return self.set_args(stage_keys(self.preset_overrides(preset), "stats"))

    def pretrain_args(self, preset: str, dataset: str, pkey: str) -> list[str]:
        """dans-kgc arguments of a pretrain job (the job script adds --resume and --set threads=N)."""
        source, flat = self.pretraining(preset, dataset, pkey)
        return [
            "pretrain",
            "--dataset",
            dataset,
            "--out",
            pretrain_dir(preset, dataset, pkey),
            "--source",
            source,
            "--quiet",
            *self.set_args(flat),
        ]

    def dam_inputs(self, preset: str, dataset: str, dam_key: str) -> dict[str, str]:
        semantic, target, _ = self.dam_fit(preset, dataset, dam_key)
        out = {"pretrain": f"{pretrain_dir(preset, dataset, semantic)}/run.json"}
        if target is not None:
            out["target"] = f"{pretrain_dir(preset, dataset, target)}/run.json"
        return out

    def dam_args(self, preset: str, dataset: str, dam_key: str) -> list[str]:
        """--pretrained, --target-pretrained and --set arguments of `dans-kgc dam fit`."""
        semantic, target, flat = self.dam_fit(preset, dataset, dam_key)
        args = ["--pretrained", pretrain_dir(preset, dataset, semantic)]
        if target is not None:
            args += ["--target-pretrained", pretrain_dir(preset, dataset, target)]
        return args + self.set_args(flat)

    def diffusion_inputs(self, preset: str, dataset: str, dkey: str) -> dict[str, str]:
        """The pretraining (and DAM fit) a warm start is fitted on (its diagnosis reads the same)."""
        kind, _, pkey, dam_key = self.warm_start(preset, dataset, dkey)
        out = {"pretrain": f"{pretrain_dir(preset, dataset, pkey)}/run.json"}
        if kind == "dans" and dam_key is not None:  # a dans warm start always has one
            out["dam"] = f"{dam_dir(preset, dataset, dam_key)}/entities.csv"
        return out

    def diffusion_args(self, preset: str, dataset: str, dkey: str) -> list[str]:
        """--kind, --dam and --set arguments of `dans-kgc diffusion fit`."""
        kind, flat, _, dam_key = self.warm_start(preset, dataset, dkey)
        args = ["--kind", kind]
        if kind == "dans" and dam_key is not None:
            args += ["--dam", dam_dir(preset, dataset, dam_key)]
        return args + self.set_args(flat)

    def stage_inputs(self, preset: str, dataset: str, ov: Mapping[str, Any]) -> dict[str, str]:
        """The data record and the stage outputs a training run (or a tune job: its trials) of a variant reads."""
        out = {"data": fetch_record(preset, dataset)}
        if self.needs_pretrain(preset, ov):
            out["pretrain"] = f"{pretrain_dir(preset, dataset, self.pkey_of(preset, ov, 'backbone')[0])}/run.json"
        if self.needs(preset, ov, "dam"):
            out["dam"] = f"{dam_dir(preset, dataset, self.dam_key_of(preset, ov))}/entities.csv"
        if self.needs(preset, ov, "diffusion"):
            out["diffusion"] = f"{diffusion_dir(preset, dataset, self.dkey_of(preset, ov)[0])}/diffusion.pt"
        return out

    def run_inputs(self, run: Run, ov: Mapping[str, Any]) -> dict[str, str]:
        """The data record, the stage outputs and (a tuned run) the best configuration a training run reads."""
        out = self.stage_inputs(run.preset, run.dataset, ov)
        if run.experiment == "tuned":  # its configuration: the study's best trial
            out["best"] = f"{tune_dir(run.preset, run.dataset, run.variant)}/best.yaml"
        return out

    def train_inputs(self, run: Run) -> dict[str, str]:
        if self.canonical(run) != run:
            raise PlanError(
                f"{run_dir(run)} is not trained: it has the same effective settings as "
                f"{run_dir(self.canonical(run))} (one run per distinct setting); request that folder"
            )
        return self.run_inputs(run, self.run_overrides(run))

    def train_overrides(self, run: Run) -> Flat:
        """The --set overrides of a training run (less device, data.root and seed, which every run gets)."""
        ov = self.run_overrides(run)
        flat = train_filter(self.effective(run.preset, ov), self.run_sampler(run.preset, ov))
        if run.experiment == "tuned":
            # best.yaml (--config) sets the searched keys; --set would override it, so those keys are left out
            searched = self.tuned_keys(run.preset, ov, self.train_inputs(run))
            flat = {k: v for k, v in flat.items() if k not in searched}
        return flat

    def train_args(self, run: Run) -> list[str]:
        """dans-kgc arguments of a training run (the job script adds --resume and --set threads=N)."""
        inputs = self.train_inputs(run)
        stages = stage_args(inputs)
        if run.experiment == "tuned":
            stages += ["--config", inputs["best"]]
        variant, backbone = variant_tags(run.experiment, run.variant)
        tags = ["--tag", f"experiment={run.experiment}", "--tag", f"variant={variant}"]
        if backbone:
            tags += ["--tag", f"backbone={backbone}"]
        labels = self.stands_for(run)
        if len(labels) > 1:  # the other experiments/variants this run is (a label: the job script resumes)
            tags += ["--tag", f"{STANDS_FOR}={','.join(labels)}"]
        return [
            "train",
            "--dataset",
            run.dataset,
            "--out",
            run_dir(run),
            "--quiet",
            *stages,
            *tags,
            *self.set_args(self.train_overrides(run)),
            "--set",
            f"seed={run.seed}",
        ]

    # --------------------------------------------------------------------------------------
    # the tune stage
    # --------------------------------------------------------------------------------------
    def tune_jobs(self, preset: str) -> list[tuple[str, str]]:
        """(dataset, variant) of every study a preset runs: one per variant of its `tuned` experiment."""
        return sorted({(r.dataset, r.variant) for r in self.runs(preset, ["tuned"])})

    def tuned_keys(self, preset: str, ov: Mapping[str, Any], inputs: Mapping[str, str]) -> set[str]:
        """The keys a variant's study searches (its best.yaml sets them): dans_kgc.tuning resolves the space."""
        from dans_kgc.tuning import space_keys

        given = [{"pretrain": "pretrained"}.get(name, name) for name in inputs if name in STAGE_FLAGS]
        return set(space_keys(resolved(self.effective(preset, ov)), given))

    def tune_inputs(self, preset: str, dataset: str, variant: str) -> dict[str, str]:
        return self.stage_inputs(preset, dataset, self.variant_overrides(preset, "tuned", variant, dataset))

    def tune_overrides(self, preset: str, dataset: str, variant: str) -> Flat:
        """The run's overrides + the preset's tune.* budget (the same for every sampler)."""
        ov = self.variant_overrides(preset, "tuned", variant, dataset)
        flat = self.effective(preset, ov)
        return {
            **train_filter(flat, self.run_sampler(preset, ov)),
            **{k: v for k, v in flat.items() if k.startswith("tune.")},
        }

    def tune_args(self, preset: str, dataset: str, variant: str) -> list[str]:
        """dans-kgc arguments of a tune job: its overrides, the tuned runs' first seed, the stage inputs of the
        variant's runs (the rule adds --set threads=N)."""
        return [
            "tune",
            "--dataset",
            dataset,
            "--out",
            tune_dir(preset, dataset, variant),
            "--quiet",
            "--study-name",
            f"{preset}-{dataset}-{variant}",
            *stage_args(self.tune_inputs(preset, dataset, variant)),
            *self.set_args(self.tune_overrides(preset, dataset, variant)),
            "--set",
            f"seed={self.experiment_seeds(preset, 'tuned')[0]}",
        ]

    # --------------------------------------------------------------------------------------
    # reports
    # --------------------------------------------------------------------------------------
    def report_runs(self, preset: str, name: str) -> list[Run]:
        _, exps, sampler = {**TABLES, **FIGURES}[name]
        if name in TUNING_REPORTS and not self.runs(preset, ["tuned"]):
            return []
        return self.runs(preset, exps, sampler=sampler)

    def report_inputs(self, preset: str, name: str) -> list[str]:
        """The metrics a table or figure reads (and the study.json of each tuned variant for the tuning ones)."""
        out = [] if name == "tuning_history" else unique(self.run_metrics(r) for r in self.report_runs(preset, name))
        if name in TUNING_REPORTS:  # the study folders; report_args passes their folders
            out += [f"{tune_dir(preset, ds, v)}/study.json" for ds, v in self.tune_jobs(preset)]
        return out

    def report_args(self, preset: str, name: str) -> list[str]:
        """`dans-kgc report` arguments (less --out) of a table or figure."""
        kind, exps, _ = {**TABLES, **FIGURES}[name]
        # a builder may serve several experiments
        experiments = [a for e in exps for a in ("--experiment", e)]
        runs = [str(Path(p).parent) for p in self.report_inputs(preset, name)]
        return [kind, *self.plugin_args, *experiments, "--runs", *runs]

    def table_targets(self, preset: str) -> list[str]:
        out = [f"results/{preset}/tables/table1_datasets.{ext}" for ext in ("csv", "md")]
        for name in TABLES:
            if self.report_runs(preset, name):
                out += [f"results/{preset}/tables/{name}.{ext}" for ext in ("csv", "md", "tex")]
        return out + self.diagnose_targets(preset, "tables")

    def figure_targets(self, preset: str) -> list[str]:
        out = []
        for name in FIGURES:
            if self.report_runs(preset, name):
                out += [f"figures/{preset}/{name}.{ext}" for ext in ("png", "pdf")]
        return out + self.diagnose_targets(preset, "figures")

    # --------------------------------------------------------------------------------------
    # diagnostics
    # --------------------------------------------------------------------------------------
    def diagnose_cfg(self, preset: str | None = None) -> dict[str, Any]:
        """The top-level `diagnose` settings, then the preset's own `diagnose` entry (e.g. the quick preset
        diagnoses fewer experiments, on fewer triples, to stay a short first run)."""
        own = (self.preset_cfg(preset).get("diagnose") or {}) if preset else {}
        return {**DIAGNOSE_DEFAULTS, **(self.config.get("diagnose") or {}), **own}

    def diagnosed_runs(self, preset: str, group: str | None = None) -> list[Run]:
        """Every diffusion-using training run (sampler dans or dhns) of the experiments `diagnose.experiments`
        lists (and of one target group: tables | figures)."""
        wanted = [e for e in self.diagnose_cfg(preset)["experiments"] if e in EXPERIMENTS]
        chosen = unique(
            self.canonical(r)
            for r in self.runs(preset, wanted)
            if self.needs(preset, self.run_overrides(r), "diffusion")
        )
        if group is None:
            return chosen

        # a shared run folder (one run per distinct setting) is diagnosed once, with the tables when any run it
        # stands for belongs to them
        def group_of(c: Run) -> str:
            members = {m.experiment for m in self.run_groups(preset).get(c, [c])} & set(wanted)
            return "tables" if members & set(DIAGNOSE_GROUPS["tables"]) else "figures"

        return [c for c in chosen if group_of(c) == group]

    def diagnosed_warm_starts(self, preset: str, group: str | None = None) -> list[tuple[str, str]]:
        """(dataset, dkey) of every warm start those runs read (none when `diagnose.warm_starts` is false);
        a warm start shared by both groups belongs to the tables."""
        if not self.diagnose_cfg(preset)["warm_starts"]:
            return []
        out = []
        for r in self.diagnosed_runs(preset, group):
            key = (r.dataset, self.dkey_of(preset, self.run_overrides(r))[0])
            if key not in out:
                out.append(key)
        if group == "figures":
            out = [k for k in out if k not in self.diagnosed_warm_starts(preset, "tables")]
        return out

    def diagnose_files(self, preset: str, group: str) -> list[str]:
        """The diagnose outputs of one target group (JSON, Markdown, PNG per diagnosis)."""
        prefixes = [diagnose_run_prefix(r) for r in self.diagnosed_runs(preset, group)]
        prefixes += [
            diagnose_warm_start_prefix(preset, ds, dkey) for ds, dkey in self.diagnosed_warm_starts(preset, group)
        ]
        return [p + ext for p in prefixes for ext in DIAGNOSE_EXTS]

    def diagnose_targets(self, preset: str, group: str) -> list[str]:
        """all_tables: the diagnoses of the table experiments' runs + the table gathering them;
        all_figures: the sensitivity runs' diagnoses."""
        files = self.diagnose_files(preset, group)
        if group == "tables" and files:
            files += [f"results/{preset}/tables/diagnostics.{ext}" for ext in ("csv", "md")]
        return files

    def report_diagnostics_inputs(self, preset: str) -> list[str]:
        return [f for f in self.diagnose_files(preset, "tables") if f.endswith(".json")]

    def diagnose_args(self, preset: str) -> list[str]:
        """--triples, --seed and --set arguments of `dans-kgc diagnose` (a run's config is its own, a warm start's
        the one it recorded)."""
        d = self.diagnose_cfg(preset)
        return [
            "--triples",
            str(d["triples"]),
            "--seed",
            str(d["seed"]),
            *self.set_args({}),
        ]

    def diagnose_warm_start_args(self, preset: str, dataset: str, dkey: str) -> list[str]:
        """Arguments of `dans-kgc diagnose --warm-start` (less --out)."""
        kind, _, pkey, dam_key = self.warm_start(preset, dataset, dkey)
        args = [
            "--warm-start",
            diffusion_dir(preset, dataset, dkey),
            "--pretrained",
            pretrain_dir(preset, dataset, pkey),
            "--dataset",
            dataset,
        ]
        if kind == "dans" and dam_key is not None:
            args += ["--dam", dam_dir(preset, dataset, dam_key)]
        return args + self.diagnose_args(preset)

    def diagnose_warm_start_inputs(self, preset: str, dataset: str, dkey: str) -> dict[str, str]:
        return {
            "diffusion": f"{diffusion_dir(preset, dataset, dkey)}/diffusion.pt",
            **self.diffusion_inputs(preset, dataset, dkey),
        }

    # --------------------------------------------------------------------------------------
    # resources
    # --------------------------------------------------------------------------------------
    def resources(self, preset: str, group: str) -> dict[str, int]:
        """mem_mb and runtime (minutes, of the first attempt) of a job of one resource group (config
        presets.P.resources: default, then the group's entry)."""
        table = self.preset_cfg(preset).get("resources") or {}
        return {
            **DEFAULT_RESOURCES,
            **(table.get("default") or {}),
            **(table.get(group) or {}),
        }
