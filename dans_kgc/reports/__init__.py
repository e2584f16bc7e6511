"""Report builders: tables and figures from run folders (``dans-kgc report KIND``).

A builder is a function ``build(ctx: ReportContext) -> list[Path]`` registered under a name.
It reads ``ctx.runs`` (already loaded :class:`~dans_kgc.reports.runs.RunRecord` objects,
filtered to the builder's experiments), writes its files next to ``ctx.out`` (a path prefix:
``ctx.out.with_suffix('.csv')`` ...) and returns the paths it wrote. The caller then writes the
provenance sidecar ``<out>.provenance.json``. Adding a report is one file::

    # my_report.py
    from dans_kgc.reports import register

    @register("loss_table", kind="table", experiments=("main",), help="final training loss",
              options={"digits": "decimals"})
    def build(ctx):
        ...
        return [path]

and ``dans-kgc report loss_table --plugin my_report.py --runs ... --out ...`` (a module name
works too, as does an entry point in the ``dans_kgc.reports`` group).

Built in: tables ``main``, ``ablation``, ``efficiency``, ``paper``, ``calibration``, ``diagnostics``
(reads ``dans-kgc diagnose`` JSON files, not run folders), ``tuning`` (study folders of ``dans-kgc tune``
and run folders), ``relations`` (test MRR and the anchor diagnostic per relation); figures ``sensitivity``, ``curves``, ``bands``,
``calibration_curves``, ``tuning_history``.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from dans_kgc.reports.runs import RunRecord, load_runs, select

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dans_kgc.reports"


@dataclass
class ReportContext:
    """What a builder gets: the runs, where to write, and the user's options."""

    runs: list[RunRecord]
    out: Path
    title: Optional[str] = None
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # extra facts for the provenance sidecar
    inputs: list[Path] = field(default_factory=list)  # builders with inputs="files": the given paths, not run folders

    def option(self, key: str, default: Any = None) -> Any:
        v = self.options.get(key)
        return default if v is None else v

    def warn(self, msg: str) -> None:
        log.warning("%s", msg)
        self.warnings.append(msg)

    def path(self, suffix: str) -> Path:
        """``<out><suffix>``, e.g. ``ctx.path('.csv')``; the parent folder is created."""
        p = Path(str(self.out) + suffix)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


Builder = Callable[[ReportContext], list[Path]]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    build: Builder
    kind: str = "table"  # table | figure
    experiments: Optional[tuple[str, ...]] = None  # default tags.experiment filter; None = every run
    help: str = ""
    inputs: str = "runs"  # runs: --runs are run folders (loaded as RunRecords) | files: result files the builder reads
    options: dict[str, str] = field(default_factory=dict)  # option -> what it sets (ctx.option keys; dans-kgc report --help)


REPORTS: dict[str, ReportSpec] = {}


def register(name: str, *, kind: str = "table", experiments: Optional[Iterable[str]] = None,
             help: str = "", inputs: str = "runs", options: Optional[dict[str, str]] = None) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` as the report ``name`` (a later registration replaces it).

    ``options``: the ``ctx.option`` keys the builder reads, with what each sets (``dans-kgc report --help``
    lists them: ``digits``, ``split``, ``target_mrr``, ``target_fraction`` are flags, the others ``--option``).

    ``inputs="files"``: the builder reads the given paths itself (``ctx.inputs``; e.g. the
    ``dans-kgc diagnose`` JSON files) instead of run folders (``ctx.runs`` stays empty).
    """
    if inputs not in ("runs", "files"):
        raise ValueError(f"report {name}: inputs={inputs!r}; expected runs or files")

    def deco(fn: Builder) -> Builder:
        text = help or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        REPORTS[name] = ReportSpec(name, fn, kind, tuple(experiments) if experiments is not None else None, text,
                                   inputs, dict(options or {}))
        return fn
    return deco


def load_plugins(plugins: Iterable[str] = ()) -> None:
    """Import plugin modules (dotted names or ``.py`` files) and ``dans_kgc.reports`` entry points."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001 - a broken third-party plugin must not hide the others
            log.warning("report plugin %s failed to load: %s", ep.name, err)
    from dans_kgc.plugins import load_plugins as import_plugins

    import_plugins(plugins)


def write_sidecar(ctx: ReportContext, spec: ReportSpec, outputs: Sequence[Path], all_runs: Sequence[RunRecord]) -> Path:
    from dans_kgc.provenance import git_commit, package_versions
    from dans_kgc.utils import write_json

    versions = package_versions()
    for name in ("matplotlib", "seaborn", "pyyaml"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    used = {id(r) for r in ctx.runs}
    commits = sorted({r.git_commit for r in ctx.runs if r.git_commit})
    path = ctx.path(".provenance.json")
    write_json(path, {
        "report": spec.name, "kind": spec.kind, "title": ctx.title,
        "outputs": [str(p) for p in outputs],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "options": ctx.options,
        "git_commit": git_commit(),
        "packages": versions,
        "input_git_commits": commits,
        "mixed_input_commits": len({c.removesuffix("-dirty") for c in commits}) > 1,
        "inputs": [r.describe() for r in ctx.runs],
        "ignored_inputs": [r.describe() for r in all_runs if id(r) not in used],
        "missing_inputs": [str(r.path) for r in ctx.runs if r.problems],
        "warnings": ctx.warnings,
        **ctx.notes,
    })
    return path


def build_report(kind: str, runs: Iterable[str | Path], out: str | Path, *, title: Optional[str] = None,
                 experiments: Optional[Iterable[str]] = None, plugins: Iterable[str] = (),
                 **options: Any) -> list[Path]:
    """Load the runs, run the builder ``kind``, write the provenance sidecar; returns all paths written."""
    load_plugins(plugins)
    if kind not in REPORTS:
        raise KeyError(f"unknown report '{kind}'; registered: {', '.join(sorted(REPORTS))}")
    spec = REPORTS[kind]
    split = options.get("split") or "test"
    if spec.inputs == "files":
        paths = [Path(p) for p in runs]
        if not paths:
            raise ValueError("no input files given (--runs)")
        ctx = ReportContext(runs=[], out=Path(out), title=title, options={"split": split, **options}, inputs=paths)
        ctx.notes["input_files"] = [str(p) for p in paths]
        outputs = list(spec.build(ctx))
        outputs.append(write_sidecar(ctx, spec, outputs, []))
        return outputs
    all_runs = load_runs(runs, split)
    if not all_runs:
        raise ValueError("no run folders given (--runs)")
    wanted = tuple(experiments) if experiments else spec.experiments
    chosen = select(all_runs, wanted)
    ctx = ReportContext(runs=chosen, out=Path(out), title=title, options={"split": split, **options,
                                                                              "experiments": list(wanted) if wanted else None})
    if not chosen:
        ctx.warn(f"none of the {len(all_runs)} runs has tags.experiment in {list(wanted)}; "
                 f"pass --experiment to choose others (found: {sorted({str(r.experiment) for r in all_runs})})")
    commits = {c.removesuffix("-dirty") for c in (r.git_commit for r in chosen) if c}
    if len(commits) > 1:
        ctx.warn(f"the runs come from {len(commits)} different code versions (git commits {', '.join(sorted(commits))})")
    untagged = [r for r in chosen if r.experiment is None]
    if untagged and wanted:
        ctx.warn(f"{len(untagged)} run(s) without tags.experiment were kept: {', '.join(str(r.path) for r in untagged)}")
    outputs = list(spec.build(ctx))
    outputs.append(write_sidecar(ctx, spec, outputs, all_runs))
    return outputs


# built-in builders register themselves on import
from dans_kgc.reports import figures as _figures  # noqa: E402,F401
from dans_kgc.reports import paper as _paper  # noqa: E402,F401
from dans_kgc.reports import tables as _tables  # noqa: E402,F401
from dans_kgc.reports import calibration as _calibration  # noqa: E402,F401
from dans_kgc.reports import diagnostics as _diagnostics  # noqa: E402,F401
from dans_kgc.reports import tuning as _tuning  # noqa: E402,F401
from dans_kgc.reports import relations as _relations  # noqa: E402,F401

__all__ = ["REPORTS", "ReportContext", "ReportSpec", "RunRecord", "build_report", "load_plugins", "register"]
