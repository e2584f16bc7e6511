"""The report registry: what a builder gets (:class:`ReportContext`) and how it is found (:func:`register`).

Kept apart from the package's ``__init__`` so that the built-in builders import it without importing the
package that imports them; plugins use the same names through ``dans_kgc.reports``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dans_kgc.reports.runs import RunRecord

log = logging.getLogger(__name__)


@dataclass
class ReportContext:
    """What a builder gets: the runs, where to write, and the user's options."""

    runs: list[RunRecord]
    out: Path
    title: str | None = None
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
    experiments: tuple[str, ...] | None = None  # default tags.experiment filter; None = every run
    help: str = ""
    inputs: str = "runs"  # runs: --runs are run folders (loaded as RunRecords) | files: result files the builder reads
    # option -> what it sets (the ctx.option keys the builder reads; dans-kgc report --help lists them)
    options: dict[str, str] = field(default_factory=dict)


REPORTS: dict[str, ReportSpec] = {}


def register(
    name: str,
    *,
    kind: str = "table",
    experiments: Iterable[str] | None = None,
    help: str = "",
    inputs: str = "runs",
    options: dict[str, str] | None = None,
) -> Callable[[Builder], Builder]:
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
        REPORTS[name] = ReportSpec(
            name, fn, kind, tuple(experiments) if experiments is not None else None, text, inputs, dict(options or {})
        )
        return fn

    return deco
