"""What a preset costs before it runs: its planned jobs (``dans_kgc.planning``) priced by the scale benchmark's fits.

``benchmarks/bench_scale.py`` measures every stage on graphs from Family size to YAGO3-10 size and fits, per stage,
``seconds = exp(a) * triples^b * entities^c`` (per epoch where the stage has epochs). A job is priced from its
dataset's size and its own settings:

- ``pretrain``: ``pretrain.epochs`` epochs of Stage-0 TransE, plus one validation per ``train.eval_every`` epochs;
- ``dam``, ``fetch_dataset``, ``dataset_stats``, ``diagnose``, reports: the stage's measured seconds;
- ``diffusion``: ``diffusion.warmstart_epochs`` epochs of the DANS-KGC or DHNS-style warm start;
- ``train``: ``train.epochs`` epochs of its sampler, one validation per ``train.eval_every`` epochs, and the test
  evaluation that the job runs after training; ``tune``: ``tune.trials`` such runs of ``tune.epochs`` epochs.

The benchmark measures the paper preset's settings (TransE, width 128, the package defaults). A job whose
backbone is not TransE is listed as *not modelled* rather than priced at TransE's cost; a preset that shrinks
widths or batch sizes is priced at the defaults' per-epoch cost (an upper bound). A validation is priced at the
whole one-epoch process minus its epoch (setup included), which overstates it slightly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dans_kgc.datasets.registry import DATASETS

# The scale benchmark's stage for each planned rule (``train`` and ``diffusion`` depend on the job's settings).
RULE_STAGE = {
    "fetch_dataset": "fetch",
    "dam": "dam",
    "diagnose": "diagnose",
    "diagnose_warm_start": "diagnose",
    "report_table": "report",
    "report_figure": "report",
    "report_diagnostics": "report",
}


class CostModelError(ValueError):
    """The benchmark JSON is missing or lacks a stage (one line naming the file and what is missing)."""


@dataclass(frozen=True)
class StageFit:
    """``seconds = exp(intercept) * triples^b * entities^c`` for one stage (per epoch for epoch stages)."""

    intercept: float
    b: float
    c: float
    overhead: StageFit | None = None  # epoch stages: the process's time besides its one epoch

    def seconds(self, triples: int, entities: int) -> float:
        return math.exp(self.intercept + self.b * math.log(triples) + self.c * math.log(entities))


@dataclass(frozen=True)
class CostModel:
    stages: dict[str, StageFit]
    source: str
    machine: str
    threads: int

    def stage(self, name: str) -> StageFit:
        if name not in self.stages:
            raise CostModelError(
                f"{self.source}: no fit for stage '{name}'; run benchmarks/bench_scale.py --stages {name}"
            )
        return self.stages[name]


# The entities-to-triples ratio must vary this much (std of its log) before entities get their own exponent:
# along one family of shapes (the synthetic sizes) the two grow together and the split is not identified.
MIN_RATIO_SPREAD = 0.25


def fit_power_law(points: list[tuple[float, float, float]]) -> StageFit | None:
    """``log seconds = a + b log triples + c log entities`` by least squares over (triples, entities, seconds).

    With fewer than 4 points, or entities and triples growing together (their log ratio's spread under
    ``MIN_RATIO_SPREAD``), only the exponent in triples is fitted (``c = 0``)."""
    import numpy as np

    pts = [(t, e, s) for t, e, s in points if t > 0 and e > 0 and s > 0]
    if not pts:
        return None
    lt, le, ls = (np.log([p[i] for p in pts]) for i in range(3))
    if len(pts) == 1:
        return StageFit(float(ls[0]), 0.0, 0.0)
    if len(pts) >= 4 and float(np.std(le - lt)) >= MIN_RATIO_SPREAD:
        design = np.column_stack([np.ones(len(pts)), lt, le])
        a, b, c = np.linalg.lstsq(design, ls, rcond=None)[0]
        return StageFit(float(a), float(b), float(c))
    b, a = np.polyfit(lt, ls, 1)
    return StageFit(float(a), float(b), 0.0)


def load_cost_model(path: str | Path) -> CostModel:
    """Fit every stage from a ``bench_scale.json`` (the cells' seconds, so a refit needs no rerun)."""
    path = Path(path)
    if not path.is_file():
        raise CostModelError(
            f"{path}: no scale benchmark here; run python benchmarks/bench_scale.py (or pass --costs PATH)"
        )
    try:
        raw = json.loads(path.read_text())
        cells, graphs = raw["cells"], raw["graphs"]
    except (ValueError, KeyError, TypeError) as err:
        raise CostModelError(f"{path}: not a bench_scale.json ({err})") from None
    per_stage: dict[str, list[tuple[float, float, float]]] = {}
    overhead: dict[str, list[tuple[float, float, float]]] = {}
    for key, cell in cells.items():
        graph, stage = key.split("/", 1)
        if cell.get("status") != "ok" or graph not in graphs:
            continue
        t, e = graphs[graph]["triples"], graphs[graph]["entities"]
        epoch = cell.get("epoch_seconds")
        per_stage.setdefault(stage, []).append((t, e, epoch if epoch else cell["seconds"]))
        if epoch:
            overhead.setdefault(stage, []).append((t, e, max(cell["seconds"] - epoch, 1e-3)))
    stages = {}
    for stage, pts in per_stage.items():
        fit = fit_power_law(pts)
        if fit is not None:
            extra = fit_power_law(overhead.get(stage, []))
            stages[stage] = StageFit(fit.intercept, fit.b, fit.c, extra)
    return CostModel(stages, str(path), str(raw.get("machine", "unknown machine")), int(raw.get("threads", 1)))


def dataset_size(name: str, data_root: str | Path = "data") -> tuple[int, int] | None:
    """(training triples, entities) of a dataset before it runs: the registry's record, a synthetic shape, or
    a fetched copy's files; None when none of them knows."""
    spec = DATASETS.get(name.lower())
    if spec is not None and spec.synthetic is not None:
        return spec.synthetic.train, spec.synthetic.entities
    if spec is not None and spec.size is not None:
        return spec.size
    folder = Path(data_root) / name
    for split in (folder / v for v in ("kge", "redgnn")):
        train = [split / f for f in ("facts.txt", "train.txt") if (split / f).is_file()]
        if train:
            entities: set[str] = set()
            triples = 0
            for f in train:
                for line in f.read_text().splitlines():
                    parts = line.split("\t")
                    if len(parts) == 3:
                        triples += 1
                        entities.update((parts[0], parts[2]))
            return triples, len(entities)
    return None


def _setting(job: Any, key: str) -> Any:
    from dans_kgc.planning import resolved

    node: Any = resolved(job.overrides)
    for part in key.split("."):
        node = node[part]
    return node


def job_seconds(job: Any, model: CostModel, size: tuple[int, int]) -> float | None:
    """Predicted CPU seconds of one planned job (None: not modelled, e.g. a backbone other than TransE)."""
    t, e = size
    rule = job.rule
    if rule in RULE_STAGE:
        return model.stage(RULE_STAGE[rule]).seconds(t, e)
    if rule == "dataset_stats":
        return model.stage("stats").seconds(t, e)
    if rule in ("pretrain", "train", "tune", "diffusion") and (job.model or "transe") != "transe":
        return None
    if rule == "pretrain":
        fit = model.stage("pretrain")
        epochs = _setting(job, "pretrain.epochs")
        return epochs * fit.seconds(t, e) + _validations(job, epochs) * _overhead(fit, t, e)
    if rule == "diffusion":
        fit = model.stage("diffusion_dhns" if "dhns" in job.args else "diffusion")
        return _setting(job, "diffusion.warmstart_epochs") * fit.seconds(t, e) + _overhead(fit, t, e)
    if rule in ("train", "tune"):
        fit = model.stage(f"train_{_setting(job, 'train.sampler')}")
        epochs = _setting(job, "train.epochs")
        runs = 1
        if rule == "tune":
            runs = _setting(job, "tune.trials")
            epochs = _setting(job, "tune.epochs") or epochs
        one = epochs * fit.seconds(t, e) + _validations(job, epochs) * _overhead(fit, t, e)
        test = model.stage("evaluate").seconds(t, e) if rule == "train" else 0.0
        return runs * one + test
    return None


def _validations(job: Any, epochs: int) -> int:
    every = max(1, int(_setting(job, "train.eval_every")))
    return max(1, math.ceil(epochs / every))


def _overhead(fit: StageFit, t: int, e: int) -> float:
    return fit.overhead.seconds(t, e) if fit.overhead is not None else 0.0


def benchmark_path(job: Any, root: str | Path) -> Path | None:
    """Snakemake's record of a planned job below ``root``: the DAG's ``results/benchmarks`` layout
    (``RULE/PRESET/...tsv``) or a kept one (``reference/P/benchmarks``: ``RULE/...tsv``, ``RULE.tsv`` for a job of
    the whole preset); None when neither exists."""
    root = Path(root)
    rel = job.benchmark.removeprefix("results/benchmarks/")
    rule, _, where = rel.partition("/")
    kept = f"{rule}.tsv" if where == f"{job.preset}.tsv" else f"{rule}/{where.removeprefix(job.preset + '/')}"
    for path in (root / rel, root / kept):
        if path.is_file():
            return path
    return None


def read_benchmark(path: str | Path) -> dict[str, float]:
    """One Snakemake benchmark record: wall seconds ``s``, ``cpu_time`` seconds and ``max_rss`` (MB), the mean
    over its rows (one per repeat). A malformed file raises CostModelError naming it."""
    lines = [line.split("\t") for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise CostModelError(f"{path}: expected a header and at least one row (a Snakemake benchmark record)")
    head, rows = lines[0], lines[1:]
    out: dict[str, float] = {}
    for key in ("s", "cpu_time", "max_rss"):
        if key not in head:
            raise CostModelError(f"{path}: no column {key!r} (a Snakemake benchmark record has s, max_rss, cpu_time)")
        col = head.index(key)
        try:
            values = [float(r[col]) for r in rows if len(r) > col and r[col] not in ("", "NA", "-")]
        except ValueError as err:
            raise CostModelError(f"{path}: column {key!r}: {err}") from None
        out[key] = sum(values) / len(values) if values else math.nan
    return out


@dataclass
class PresetCost:
    """Jobs and predicted CPU hours per dataset and rule; the jobs nothing could price, with why; where the jobs'
    Snakemake records were given (``measure``), what they measured."""

    rows: list[dict[str, Any]]
    not_modelled: list[str]
    model: CostModel
    job_hours: dict[str, float | None] = field(default_factory=dict)  # by the job's benchmark path; None: unpriced
    measured_from: str | None = None

    def measure(self, jobs: Iterable[Any], root: str | Path) -> PresetCost:
        """Add each row's measured jobs, CPU hours (``cpu_time``), wall hours and peak RSS from the Snakemake
        records below ``root`` (see ``benchmark_path``), and the predicted hours of those same jobs."""
        by_key = {(r["dataset"], r["rule"]): r for r in self.rows}
        for r in self.rows:
            r.update(measured=0, measured_cpu_hours=0.0, measured_wall_hours=0.0, peak_rss_mb=0.0)
            r.update(priced_measured=0, priced_measured_cpu_hours=0.0, priced_predicted_hours=0.0)
        for job in jobs:
            path = benchmark_path(job, root)
            if path is None:
                continue
            rec = read_benchmark(path)
            r = by_key[(job.dataset or "(all)", job.rule)]
            r["measured"] += 1
            r["measured_cpu_hours"] += rec["cpu_time"] / 3600.0
            r["measured_wall_hours"] += rec["s"] / 3600.0
            r["peak_rss_mb"] = max(r["peak_rss_mb"], rec["max_rss"])
            predicted = self.job_hours.get(job.benchmark)
            if predicted is not None:  # the jobs both priced and measured: where the fits can be checked
                r["priced_measured"] += 1
                r["priced_measured_cpu_hours"] += rec["cpu_time"] / 3600.0
                r["priced_predicted_hours"] += predicted
        self.measured_from = str(root)
        return self

    @property
    def cpu_hours(self) -> float:
        return sum(r["cpu_hours"] for r in self.rows)

    def markdown(self, preset: str, cores: int) -> str:
        lines = [
            f"# Preset `{preset}`: jobs and predicted cost",
            "",
            f"Per-stage fits from `{self.model.source}` ({self.model.machine}, {self.model.threads} torch "
            "thread(s) per job). GPU hours: not measured.",
            "",
        ]
        measured = self.measured_from is not None
        if measured:
            lines += [
                "| dataset | rule | jobs | CPU hours | measured jobs | measured CPU hours | polled peak RSS (MB) |",
                "|---|---|---:|---:|---:|---:|---:|",
            ]
        else:
            lines += ["| dataset | rule | jobs | CPU hours |", "|---|---|---:|---:|"]
        for r in self.rows:
            hours = f"{r['cpu_hours']:,.2f}" if r["jobs"] > r["not_modelled"] else "-"
            if r["not_modelled"]:
                hours += f" (+{r['not_modelled']} not modelled)"
            cells = [r["dataset"], r["rule"], str(r["jobs"]), hours]
            if measured:
                got = r["measured"] > 0
                cells += [
                    str(r["measured"]),
                    f"{r['measured_cpu_hours']:,.2f}" if got else "-",
                    f"{r['peak_rss_mb']:,.0f}" if got else "-",
                ]
            lines.append("| " + " | ".join(cells) + " |")
        jobs = sum(r["jobs"] for r in self.rows)
        lines += [
            "",
            f"**{jobs} jobs, {self.cpu_hours:,.1f} CPU hours** predicted for the modelled jobs; with "
            f"{cores} jobs at a time at least {self.cpu_hours / max(cores, 1):,.1f} hours of wall time.",
        ]
        if measured:
            lines += ["", self._measured_summary()]
        if self.not_modelled:
            lines += [
                "",
                "Not modelled (no measurement of their backbone or dataset size): "
                + ", ".join(sorted(set(self.not_modelled)))
                + ".",
            ]
        return "\n".join(lines) + "\n"

    def _measured_summary(self) -> str:
        done = [r for r in self.rows if r["measured"]]
        if not done:
            return f"Measured: no job's Snakemake record below `{self.measured_from}`."
        n = sum(r["measured"] for r in done)
        cpu = sum(r["measured_cpu_hours"] for r in done)
        wall = sum(r["measured_wall_hours"] for r in done)
        top = max(done, key=lambda r: r["peak_rss_mb"])
        text = (
            f"Measured (Snakemake's records below `{self.measured_from}`): {n} of "
            f"{sum(r['jobs'] for r in self.rows)} jobs, {cpu:,.2f} CPU hours ({wall:,.2f} hours of job wall time); "
            f"largest polled peak RSS {top['peak_rss_mb']:,.0f} MB ({top['rule']} on {top['dataset']}; Snakemake "
            "samples memory every 30 s after a job's first 15 s, so a short peak can escape it: a stage's own "
            "record, provenance.peak_rss_mib, is exact)."
        )
        priced = sum(r["priced_measured"] for r in done)
        predicted = sum(r["priced_predicted_hours"] for r in done)
        actual = sum(r["priced_measured_cpu_hours"] for r in done)
        if priced and actual > 0:
            text += (
                f" The {priced} of them the fits price: predicted {predicted:,.2f} CPU hours, measured "
                f"{actual:,.2f} (predicted / measured {predicted / actual:.2f})."
            )
        return text


def preset_cost(
    jobs: Iterable[Any],
    model: CostModel,
    data_root: str | Path = "data",
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PresetCost:
    """Group a preset's planned jobs by dataset and rule and price them."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    not_modelled: list[str] = []
    job_hours: dict[str, float | None] = {}
    jobs = list(jobs)
    datasets = sorted({j.dataset for j in jobs if j.dataset})
    known = {d: (sizes or {}).get(d) or dataset_size(d, data_root) for d in datasets}
    for job in jobs:
        span = [job.dataset] if job.dataset else datasets  # stats and reports span the preset's datasets
        row = groups.setdefault(
            (job.dataset or "(all)", job.rule),
            {"dataset": job.dataset or "(all)", "rule": job.rule, "jobs": 0, "cpu_hours": 0.0, "not_modelled": 0},
        )
        row["jobs"] += 1
        seconds = []
        for d in span:
            size = known.get(d)
            try:
                sec = job_seconds(job, model, size) if size is not None else None
                why = f" ({job.model})" if job.model and job.model != "transe" else ""
            except CostModelError as err:  # a stage the benchmark has not measured
                sec, why = None, f" ({str(err).split(': ', 1)[-1].split(';')[0]})"
            if sec is None:
                not_modelled.append(f"{job.rule} on {d}{why}" if size is not None else f"{d} (size unknown)")
                break
            seconds.append(sec)
        else:
            # a report reads every dataset's runs once: priced as the mean of its per-dataset cost
            total = sum(seconds) / len(seconds) if job.rule.startswith("report") and seconds else sum(seconds)
            row["cpu_hours"] += total / 3600.0
            job_hours[job.benchmark] = total / 3600.0
            continue
        row["not_modelled"] += 1
        job_hours[job.benchmark] = None
    return PresetCost(list(groups.values()), not_modelled, model, job_hours)
