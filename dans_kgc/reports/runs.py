"""Reading run folders for the report builders.

A run folder is what ``dans-kgc train`` writes (``config.yaml``, ``run.json``, ``trace.csv``)
plus what ``dans-kgc evaluate`` adds (``metrics_test.json``). The DAG runs with
``--keep-going``, so any of these may be absent: loading never raises, it records what is
missing in :attr:`RunRecord.problem` and the builders show the cell as missing.

Where a run is placed (dataset / experiment / variant / seed) comes from, in order:
``metrics_test.json`` > ``run.json`` > ``config.yaml`` > the folder path. Path rules, so a
run that failed before writing anything still lands in the right cell:
segments ``dataset=X``, ``experiment=X``, ``variant=X``, ``seed=N`` (``~`` works as well as
``=``, as in Snakemake's ``Paramspace``), otherwise the layout
``.../<dataset>/<experiment>/<variant>/seed<N>``.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml

log = logging.getLogger(__name__)

RUN_FILES = ("config.yaml", "run.json", "trace.csv")


@dataclass
class RunRecord:
    """Everything the reports need from one run folder; any part may be missing."""

    path: Path
    dataset: Optional[str] = None
    experiment: Optional[str] = None
    variant: Optional[str] = None
    sampler: Optional[str] = None
    seed: Optional[int] = None
    config: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    metrics: Optional[dict[str, Any]] = None
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

    def value(self, metric: str) -> Optional[float]:
        """A test metric (``mrr``, ``hits@1``, ...) or None when the run has no metrics."""
        if self.metrics is None:
            return None
        v = self.metrics.get(metric)
        if v is None:
            v = (self.metrics.get("metrics") or {}).get(metric)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

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

    @property
    def protocol(self) -> Optional[str]:
        for src in (self.metrics or {}, self.run_info):
            if src.get("protocol"):
                return src["protocol"]
        return self.config.get("protocol")

    @property
    def tie_policy(self) -> Optional[str]:
        return (self.metrics or {}).get("tie_policy")

    @property
    def num_ranked(self) -> Optional[int]:
        return (self.metrics or {}).get("num_ranked")

    @property
    def summary(self) -> dict[str, Any]:
        return self.run_info.get("summary") or (self.metrics or {}).get("train_summary") or {}

    @property
    def git_commit(self) -> Optional[str]:
        for src in (self.metrics or {}, self.run_info):
            commit = (src.get("provenance") or {}).get("git_commit")
            if commit:
                return commit
        return None

    @property
    def label(self) -> str:
        return f"{self.dataset or '?'}/{self.experiment or '?'}/{self.variant or '?'}/seed{self.seed if self.seed is not None else '?'}"

    def describe(self) -> dict[str, Any]:
        """The provenance-sidecar entry of this input."""
        return {
            "path": str(self.path), "abs_path": str(self.path.resolve()), "dataset": self.dataset, "experiment": self.experiment, "variant": self.variant,
            "sampler": self.sampler, "seed": self.seed, "protocol": self.protocol, "git_commit": self.git_commit,
            "has_metrics": self.has_metrics, "has_trace": self.has_trace, "problem": self.problem or None,
        }


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------
_KV = re.compile(r"(dataset|experiment|variant|seed)[=~](.+)")
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
    return out


def _read_json(path: Path, problems: list[str]) -> Optional[dict[str, Any]]:
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
    rec.sampler = (metrics.get("sampler") or info.get("sampler") or (cfg.get("train") or {}).get("sampler")
                   or None)
    rec.experiment = tags.get("experiment") or guess.get("experiment")
    rec.variant = tags.get("variant") or guess.get("variant") or rec.sampler
    seed = next((s for s in (metrics.get("seed"), info.get("seed"), cfg.get("seed"), guess.get("seed")) if s is not None), None)
    rec.seed = int(seed) if seed is not None else None
    return rec


def _is_stage_output(folder: Path) -> bool:
    """A Stage-0 pretraining folder (also a training run on disk) is an input, not a compared run."""
    info = folder / "run.json"
    if info.exists():
        try:
            return json.loads(info.read_text()).get("stage") == "pretrain"
        except (OSError, ValueError):
            return False
    return folder.name == "pretrain"


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
            found = sorted({f.parent for name in RUN_FILES for f in p.rglob(name)
                            if not _is_stage_output(f.parent)})
            if found:
                candidates = found
        for c in candidates:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                out.append(c)
    return out


def load_runs(paths: Iterable[str | Path], split: str = "test") -> list[RunRecord]:
    runs = [load_run(p, split) for p in discover(paths)]
    for r in runs:
        if r.problems:
            log.warning("run %s (%s): %s", r.path, r.label, r.problem)
    return runs


# ----------------------------------------------------------------------------------------
# grouping and aggregation
# ----------------------------------------------------------------------------------------
def select(runs: Sequence[RunRecord], experiments: Optional[Iterable[str]]) -> list[RunRecord]:
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
    seeds: list[Optional[int]]
    missing: list[RunRecord]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> Optional[float]:
        return sum(self.values) / self.n if self.values else None

    @property
    def std(self) -> Optional[float]:
        if self.n < 2:
            return None
        m = self.mean
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
