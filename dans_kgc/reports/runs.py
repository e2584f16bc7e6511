"""Reading run folders for the report builders.

A run folder is what ``dans-kgc train`` writes (``config.yaml``, ``run.json``, ``trace.csv``)
plus what ``dans-kgc evaluate`` adds (``metrics_test.json``). The DAG runs with
``--keep-going``, so any of these may be absent: loading never raises, it records what is
missing in :attr:`RunRecord.problem` and the builders show the cell as missing.

The backbone (KGE model and training mode) is read from the ``backbone`` record of
``metrics_test.json`` / ``run.json``; runs written before that record existed fall back to
the top-level ``model`` field or ``config.yaml`` (``model.name``, ``train.mode``, default
negative sampling). The backbone *recipe* (the workflow's ``backbones:`` entry a run used) is
``tags.backbone``, or the ``@recipe`` suffix of a crossed variant folder (``uniform@rotate_nssa``);
a calibration run's variant is its recipe. A run that wrote nothing takes the backbone of its
sibling seeds or of its recipe (see :func:`fill_backbones`).

Where a run is placed (dataset / experiment / variant / seed) comes from, in order:
``metrics_test.json`` > ``run.json`` > ``config.yaml`` > the folder path. Path rules, so a
run that failed before writing anything still lands in the right cell:
segments ``dataset=X``, ``experiment=X``, ``variant=X``, ``backbone=X`` (the recipe), ``seed=N`` (``~`` works as well as
``=``, as in Snakemake's ``Paramspace``), otherwise the layout
``.../<dataset>/<experiment>/<variant>/seed<N>``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dans_kgc.reports.labels import BACKBONE_LABEL, backbone_label

log = logging.getLogger(__name__)

RUN_FILES = ("config.yaml", "run.json", "trace.csv")


@dataclass
class RunRecord:
    """Everything the reports need from one run folder; any part may be missing."""

    path: Path
    dataset: str | None = None
    experiment: str | None = None
    variant: str | None = None
    sampler: str | None = None
    seed: int | None = None
    backbone: str | None = None  # KGE model name (rotate, conve, ...)
    mode: str | None = None  # training mode: negative_sampling | one_to_n
    backbone_display: str | None = None  # the run's own label for the backbone ("RotatE"), if it wrote one
    calibration_source: str | None = None
    recipe: str | None = None  # the backbone recipe (tags.backbone): rotate_nssa, conve_1n, ...
    backbone_inferred: bool = False  # taken from sibling runs or the variant name, not from the run's files
    config: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    trace: Any = None  # pandas.DataFrame or None
    problems: list[str] = field(default_factory=list)

    # --- what is there ------------------------------------------------------------------
    @property
    def has_metrics(self) -> bool:
        return self.metrics is not None

    @property
    def has_trace(self) -> bool:
        return self.trace is not None and len(self.trace) > 0

    @property
    def problem(self) -> str:
        return "; ".join(self.problems) if self.problems else ""

    def value(self, metric: str) -> float | None:
        """A test metric (``mrr``, ``hits@1``, ...) or None when the run has no metrics; ``dam_spearman``: the
        held-out Spearman of the DAM fit the run read (a property of its Stage-1 input)."""
        if metric == "dam_spearman":
            return self.dam_value("holdout_spearman")
        if self.metrics is None:
            return None
        v = self.metrics.get(metric)
        if v is None:
            v = (self.metrics.get("metrics") or {}).get(metric)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def dam_value(self, key: str) -> float | None:
        """A number of the DAM report (``dam_report.json``) of the DAM folder the run read (run.json ``stages.dam``,
        relative to the working directory as the DAG writes it, or absolute), or of a copy of it in the run
        folder; None when there is none."""
        folder = (self.run_info.get("stages") or {}).get("dam")
        if not folder:
            return None
        # a kept reference folder holds the stage beside the run's experiments; older ones a copy next to the run
        places = (Path(folder), kept_stage_folder(self.path, folder), self.path)
        path = next((p / "dam_report.json" for p in places if p and (p / "dam_report.json").exists()), None)
        report = _read_json(path, []) if path else None
        v = (report or {}).get(key)
        if v is None or isinstance(v, (str, bool)):
            return None
        v = float(v)
        return None if math.isnan(v) else v

    def param(self, dotted: str) -> Any:
        """A config value by dotted key (``diffusion.mu``); None when absent."""
        if dotted == "K_b":
            steps = self.param("diffusion.band_steps")
            return len(steps) if isinstance(steps, (list, tuple)) else None
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def diagnostic(self, key: str) -> float | None:
        """A value of ``metrics_test.json``'s ``anchor_diagnostic`` (a diagnostic, never a headline)."""
        diag = (self.metrics or {}).get("anchor_diagnostic")
        v = diag.get(key) if isinstance(diag, dict) else None
        if v is None or isinstance(v, (str, bool)):
            return None
        v = float(v)
        return None if math.isnan(v) else v

    @property
    def backbone_key(self) -> tuple[str | None, str | None, str | None]:
        """(model name, training mode, recipe): the backbone part of a table cell's key (two
        recipes of one model and mode are two rows)."""
        return (self.backbone, self.mode, self.recipe)

    @property
    def backbone_text(self) -> str:
        return backbone_label(self.backbone, self.mode, self.backbone_display)

    @property
    def protocol(self) -> str | None:
        for src in (self.metrics or {}, self.run_info):
            if src.get("protocol"):
                return src["protocol"]
        return self.config.get("protocol")

    @property
    def tie_policy(self) -> str | None:
        return (self.metrics or {}).get("tie_policy")

    @property
    def num_ranked(self) -> int | None:
        return (self.metrics or {}).get("num_ranked")

    @property
    def summary(self) -> dict[str, Any]:
        return self.run_info.get("summary") or (self.metrics or {}).get("train_summary") or {}

    @property
    def git_commit(self) -> str | None:
        for src in (self.metrics or {}, self.run_info):
            commit = (src.get("provenance") or {}).get("git_commit")
            if commit:
                return commit
        return None

    @property
    def label(self) -> str:
        seed = self.seed if self.seed is not None else "?"
        return f"{self.dataset or '?'}/{self.experiment or '?'}/{self.variant or '?'}/seed{seed}"

    def describe(self) -> dict[str, Any]:
        """The provenance-sidecar entry of this input."""
        return {
            "path": str(self.path),
            "abs_path": str(self.path.resolve()),
            "dataset": self.dataset,
            "experiment": self.experiment,
            "variant": self.variant,
            "sampler": self.sampler,
            "seed": self.seed,
            "backbone": self.backbone,
            "mode": self.mode,
            "recipe": self.recipe,
            "backbone_inferred": self.backbone_inferred,
            "protocol": self.protocol,
            "git_commit": self.git_commit,
            "has_metrics": self.has_metrics,
            "has_trace": self.has_trace,
            "problem": self.problem or None,
        }


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------
_KV = re.compile(r"(dataset|experiment|variant|backbone|seed)[=~](.+)")
_SEED = re.compile(r"seed[_=~-]?(\d+)")


def infer_from_path(path: Path) -> dict[str, Any]:
    """Placement of a run from its folder path alone (see the module docstring)."""
    out: dict[str, Any] = {}
    parts = path.parts
    for part in parts:
        m = _KV.fullmatch(part)
        if m:
            out[m[1]] = m[2]
    m = _SEED.fullmatch(parts[-1]) if parts else None
    if m:
        out.setdefault("seed", m[1])
        for key, back in (("variant", 2), ("experiment", 3), ("dataset", 4)):
            if len(parts) >= back and key not in out:
                out[key] = parts[-back]
    if "seed" in out:
        try:
            out["seed"] = int(out["seed"])
        except ValueError:
            del out["seed"]
    if "backbone" in out:
        out["recipe"] = out.pop("backbone")
    if "@" in str(out.get("variant", "")):  # the workflow's crossed variants: <variant>@<backbone recipe>
        out["variant"], _, recipe = out["variant"].partition("@")
        out.setdefault("recipe", recipe)
    return out


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        problems.append(f"{path.name} unreadable ({err.__class__.__name__})")
        return None


def load_run(path: str | Path, split: str = "test") -> RunRecord:
    """Read one run folder. Never raises on missing or broken files."""
    path = Path(path)
    rec = RunRecord(path=path)
    guess = infer_from_path(path)
    if not path.is_dir():
        rec.problems.append("run folder does not exist (the run never started)")
    cfg_path = path / "config.yaml"
    if cfg_path.exists():
        try:
            rec.config = yaml.safe_load(cfg_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            rec.problems.append(f"config.yaml unreadable ({err.__class__.__name__})")
    rec.run_info = _read_json(path / "run.json", rec.problems) or {}
    rec.metrics = _read_json(path / f"metrics_{split}.json", rec.problems)
    if path.is_dir():
        if not rec.run_info:
            rec.problems.append("no run.json (training did not finish)")
        if rec.metrics is None and not any(p.startswith(f"metrics_{split}.json") for p in rec.problems):
            rec.problems.append(f"no metrics_{split}.json (evaluation did not run or failed)")
    trace_path = path / "trace.csv"
    if trace_path.exists():
        import pandas as pd

        try:
            rec.trace = pd.read_csv(trace_path)
        except Exception as err:  # noqa: BLE001 - a broken trace is a missing trace
            rec.problems.append(f"trace.csv unreadable ({err.__class__.__name__})")

    metrics, info, cfg = rec.metrics or {}, rec.run_info, rec.config
    tags = dict(cfg.get("tags") or {})
    tags.update(info.get("tags") or {})
    tags.update(metrics.get("tags") or {})
    rec.dataset = metrics.get("dataset") or info.get("dataset") or cfg.get("dataset") or guess.get("dataset")
    rec.sampler = metrics.get("sampler") or info.get("sampler") or (cfg.get("train") or {}).get("sampler") or None
    rec.experiment = tags.get("experiment") or guess.get("experiment")
    rec.variant = tags.get("variant") or guess.get("variant") or rec.sampler
    rec.recipe = (
        tags.get("backbone") or guess.get("recipe") or (rec.variant if rec.experiment == "calibration" else None)
    )
    seed = next(
        (s for s in (metrics.get("seed"), info.get("seed"), cfg.get("seed"), guess.get("seed")) if s is not None), None
    )
    rec.seed = int(seed) if seed is not None else None
    _read_backbone(rec)
    return rec


def _read_backbone(rec: RunRecord) -> None:
    """Backbone name / mode / label / calibration source: the ``backbone`` record, else the config."""
    metrics, info, cfg = rec.metrics or {}, rec.run_info, rec.config
    record: dict[str, Any] = {}
    for src in (info.get("backbone"), metrics.get("backbone")):  # metrics_test.json wins
        if isinstance(src, dict):
            record.update({k: v for k, v in src.items() if v is not None})
        elif isinstance(src, str) and src:
            record["name"] = src
    model_cfg = m if isinstance(m := cfg.get("model"), dict) else {}
    train_cfg = t if isinstance(t := cfg.get("train"), dict) else {}

    def _name(v: Any) -> str | None:
        if isinstance(v, dict):
            v = v.get("name")
        return str(v) if v else None

    name = record.get("name") or _name(metrics.get("model")) or _name(info.get("model")) or model_cfg.get("name")
    rec.backbone = str(name).lower() if name else None
    mode = record.get("mode") or train_cfg.get("mode")
    if mode is None and rec.backbone is not None and (rec.run_info or rec.metrics or rec.config):
        mode = "negative_sampling"  # the default of every run written before train.mode existed
    rec.mode = str(mode) if mode else None
    label = str(record.get("label") or "").strip()
    # the label may carry the mode already ("RotatE (NS)"): the reports add it themselves
    label = re.sub(r"\s*\((NS|1-N|negative[ _]sampling|one[ _]to[ _]n)\)$", "", label, flags=re.I)
    rec.backbone_display = label or None
    rec.calibration_source = record.get("calibration_source") or None


def _is_stage_output(folder: Path) -> bool:
    """A Stage-0 pretraining folder (also a training run on disk) is an input, not a compared run."""
    info = folder / "run.json"
    if info.exists():
        try:
            return json.loads(info.read_text()).get("stage") == "pretrain"
        except (OSError, ValueError):
            return False
    return folder.name == "pretrain"


def kept_stage_folder(run: Path, stage: str) -> Path | None:
    """A stage folder the run recorded as .../D/STAGE/KEY (results/P/D/dam/KEY) found beside the run's experiment
    folders, D/STAGE/KEY, where the dataset's tree was kept as a whole (reference/P/runs/D/EXPERIMENT/VARIANT/seedS);
    None when the recorded path does not pass through the run's dataset folder name."""
    parts = Path(stage).parts
    if len(run.parts) < 4 or run.parents[2].name not in parts:
        return None
    last = len(parts) - 1 - parts[::-1].index(run.parents[2].name)
    return run.parents[2].joinpath(*parts[last + 1 :]) if last + 1 < len(parts) else None


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders from the given paths. A path that is not a run folder itself but holds run
    folders below it (e.g. ``results/runs``) is expanded; anything else is kept as given (a
    run folder that does not exist becomes a missing run)."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        candidates = [p]
        if p.is_dir() and not any((p / f).exists() for f in RUN_FILES):
            found = sorted({f.parent for name in RUN_FILES for f in p.rglob(name) if not _is_stage_output(f.parent)})
            if found:
                candidates = found
        for c in candidates:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                out.append(c)
    return out


def fill_backbones(runs: Sequence[RunRecord]) -> None:
    """Give runs that wrote nothing about their backbone (never started, crashed early) the
    backbone of their cell, so a missing seed lands in its row instead of a row of its own. In
    order: the one backbone of the runs with the same dataset / experiment / variant / recipe;
    the one backbone of the runs with the same recipe; the one backbone of all runs of the
    experiment; a backbone named by the first word of the recipe or variant (``rotate_nssa`` ->
    rotate). Filled runs are marked ``backbone_inferred``; a run that stays unknown is shown
    under an unknown backbone."""
    by_cell: dict[tuple, set] = {}
    by_recipe: dict[str, set] = {}
    by_exp: dict[Any, set] = {}
    for r in runs:
        if r.backbone is None or r.backbone_inferred:
            continue
        by_cell.setdefault((r.dataset, r.experiment, r.variant, r.recipe), set()).add(r.backbone_key)
        if r.recipe:
            by_recipe.setdefault(r.recipe, set()).add(r.backbone_key)
        by_exp.setdefault(r.experiment, set()).add(r.backbone_key)
    for r in runs:
        if r.backbone is not None and r.mode is not None:
            continue
        cands = (
            by_cell.get((r.dataset, r.experiment, r.variant, r.recipe))
            or by_recipe.get(r.recipe or "")
            or {k for k in by_exp.get(r.experiment) or set() if r.recipe is None or k[2] == r.recipe}
        )
        if r.backbone is not None:  # the name is known (a path segment, say): only the mode is missing
            cands = {k for k in cands if k[0] == r.backbone}
        if len(cands) == 1:
            name, mode, recipe = next(iter(cands))
            r.backbone, r.mode, r.recipe = name, mode, r.recipe or recipe
            r.backbone_inferred = True
            continue
        if r.backbone is None:
            word = re.split(r"[_\-]", r.recipe or r.variant or "")[0].lower()
            if word in BACKBONE_LABEL:
                r.backbone, r.backbone_inferred = word, True
                r.mode = "one_to_n" if re.search(r"(^|_)1n($|_)", r.recipe or r.variant or "") else None


STANDS_FOR = "stands_for"  # tag of a run folder shared by several experiments/variants (the workflow's)


def stands_for(rec: RunRecord) -> list[RunRecord]:
    """The run as each experiment/variant it stands for. The workflow trains one run per distinct setting
    (e.g. ablation ``full`` = main ``dans``) and tags it ``stands_for=main/dans,ablation/full``; every
    report then finds it under each of those labels. A run without that tag is itself only."""
    tags = dict(rec.config.get("tags") or {})
    tags.update(rec.run_info.get("tags") or {})
    tags.update((rec.metrics or {}).get("tags") or {})
    labels = [x for x in str(tags.get(STANDS_FOR) or "").split(",") if "/" in x]
    out = [rec]
    for label in labels:
        experiment, folder = label.split("/", 1)
        variant, _, backbone = folder.partition("@")
        if (experiment, variant) == (rec.experiment, rec.variant):
            continue
        recipe = backbone or (variant if experiment == "calibration" else rec.recipe)
        out.append(replace(rec, experiment=experiment, variant=variant, recipe=recipe, problems=list(rec.problems)))
    return out


def load_runs(paths: Iterable[str | Path], split: str = "test") -> list[RunRecord]:
    runs = [alias for p in discover(paths) for alias in stands_for(load_run(p, split))]
    fill_backbones(runs)
    for r in runs:
        if r.problems:
            log.warning("run %s (%s): %s", r.path, r.label, r.problem)
    return runs


# ----------------------------------------------------------------------------------------
# grouping and aggregation
# ----------------------------------------------------------------------------------------
def select(runs: Sequence[RunRecord], experiments: Iterable[str] | None) -> list[RunRecord]:
    """Runs whose ``tags.experiment`` is one of ``experiments`` (None = all). Runs whose
    experiment is unknown (untagged, or failed with an uninformative path) are kept."""
    if experiments is None:
        return list(runs)
    wanted = set(experiments)
    return [r for r in runs if r.experiment is None or r.experiment in wanted]


def group(runs: Sequence[RunRecord], *keys: str) -> dict[tuple, list[RunRecord]]:
    out: dict[tuple, list[RunRecord]] = {}
    for r in runs:
        out.setdefault(tuple(getattr(r, k) for k in keys), []).append(r)
    for members in out.values():
        members.sort(key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, str(r.path)))
    return out


@dataclass
class Aggregate:
    """Mean and sample standard deviation (ddof = 1) of one cell over seeds."""

    values: list[float]
    seeds: list[int | None]
    missing: list[RunRecord]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / self.n if self.values else None

    @property
    def std(self) -> float | None:
        if self.n < 2:
            return None
        m = sum(self.values) / self.n
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def expected(self) -> int:
        return self.n + len(self.missing)


def aggregate(runs: Sequence[RunRecord], value) -> Aggregate:
    """``value(run)`` -> float or None; None (or a run without metrics) counts as missing."""
    vals, seeds, missing = [], [], []
    for r in runs:
        v = value(r)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing.append(r)
        else:
            vals.append(float(v))
            seeds.append(r.seed)
    return Aggregate(vals, seeds, missing)


def metric_aggregate(runs: Sequence[RunRecord], metric: str) -> Aggregate:
    return aggregate(runs, lambda r: r.value(metric))
