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
and run folders), ``relations`` (test MRR and the anchor diagnostic per relation); figures ``sensitivity``,
``curves``, ``bands``, ``calibration_curves``, ``tuning_history``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# the built-in builders register themselves on import
from dans_kgc.reports import calibration as _calibration  # noqa: F401
from dans_kgc.reports import diagnostics as _diagnostics  # noqa: F401
from dans_kgc.reports import figures as _figures  # noqa: F401
from dans_kgc.reports import paper as _paper  # noqa: F401
from dans_kgc.reports import relations as _relations  # noqa: F401
from dans_kgc.reports import tables as _tables  # noqa: F401
from dans_kgc.reports import tuning as _tuning  # noqa: F401
from dans_kgc.reports.registry import REPORTS, ReportContext, ReportSpec, register
from dans_kgc.reports.runs import RunRecord, load_runs, select

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dans_kgc.reports"


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
    from dans_kgc.provenance import git_commit, package_versions, peak_rss_mib
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
    write_json(
        path,
        {
            "report": spec.name,
            "kind": spec.kind,
            "title": ctx.title,
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
            "peak_rss_mib": peak_rss_mib(),  # the report process's peak memory so far
            **ctx.notes,
        },
    )
    return path


def build_report(
    kind: str,
    runs: Iterable[str | Path],
    out: str | Path,
    *,
    title: str | None = None,
    experiments: Iterable[str] | None = None,
    plugins: Iterable[str] = (),
    **options: Any,
) -> list[Path]:
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
    ctx = ReportContext(
        runs=chosen,
        out=Path(out),
        title=title,
        options={"split": split, **options, "experiments": list(wanted) if wanted else None},
    )
    if not chosen:
        ctx.warn(
            f"none of the {len(all_runs)} runs has tags.experiment in {list(wanted or ())}; "
            f"pass --experiment to choose others (found: {sorted({str(r.experiment) for r in all_runs})})"
        )
    commits = {c.removesuffix("-dirty") for c in (r.git_commit for r in chosen) if c}
    if len(commits) > 1:
        ctx.warn(
            f"the runs come from {len(commits)} different code versions (git commits {', '.join(sorted(commits))})"
        )
    untagged = [r for r in chosen if r.experiment is None]
    if untagged and wanted:
        ctx.warn(
            f"{len(untagged)} run(s) without tags.experiment were kept: {', '.join(str(r.path) for r in untagged)}"
        )
    outputs = list(spec.build(ctx))
    outputs.append(write_sidecar(ctx, spec, outputs, all_runs))
    return outputs


__all__ = ["REPORTS", "ReportContext", "ReportSpec", "RunRecord", "build_report", "load_plugins", "register"]
