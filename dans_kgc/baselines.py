"""Published baseline rows on the paper's splits (``published_baselines.yaml``).

``published_row("rotate", "umls")`` gives the published MRR / Hits@1 / Hits@10 of a backbone
on a dataset with its source; ``calibration_source("rotate")`` the citation a calibration run
records. Backbones without a published row on these splits (TransE, DistMult, ComplEx) give
None: the file says so, and nothing is ever filled in.

Cheap to import (yaml only, no torch); the file is read once.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

METRICS = ("mrr", "hits@1", "hits@10")


def default_path() -> Path:
    return Path(str(resources.files("dans_kgc") / "published_baselines.yaml"))


def _key(name: str) -> str:
    """``RED-GNN`` / ``red_gnn`` / ``redgnn`` -> ``redgnn``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@functools.cache
def load(path: str | None = None) -> dict[str, Any]:
    """The checked file: every row has a source, every number is a fraction in [0, 1]."""
    p = Path(path) if path else default_path()
    data = yaml.safe_load(p.read_text()) or {}
    for tname, table in (data.get("tables") or {}).items():
        for model, row in (table.get("rows") or {}).items():
            if not row.get("source"):
                raise ValueError(f"{p}: {tname}/{model} has no source")
            for ds, vals in (row.get("results") or {}).items():
                for m, v in vals.items():
                    if not 0.0 <= float(v) <= 1.0:
                        raise ValueError(f"{p}: {tname}/{model}/{ds} {m} = {v} is not a fraction in [0, 1]")
    data["_path"] = str(p)
    return data


def _rows(table: str | None, path: str | None) -> list[tuple[str, dict[str, Any]]]:
    tables = load(path).get("tables") or {}
    if table is not None:
        if table not in tables:
            raise KeyError(f"no table '{table}' in {load(path)['_path']}; tables: {', '.join(tables)}")
        tables = {table: tables[table]}
    return [(tname, {_key(k): v for k, v in (t.get("rows") or {}).items()}) for tname, t in tables.items()]


def published_row(
    backbone: str, dataset: str, *, table: str | None = None, path: str | None = None
) -> dict[str, Any] | None:
    """``{"mrr", "hits@1", "hits@10", "source", "table"}`` of ``backbone`` on ``dataset`` from
    the first table (in file order, or the one named) that has it; None when none has."""
    if not backbone or not dataset:
        return None
    b, ds = _key(backbone), str(dataset).lower()
    for tname, rows in _rows(table, path):
        row = rows.get(b)
        vals = ((row or {}).get("results") or {}).get(ds)
        if row and vals:
            out: dict[str, Any] = {m: (float(vals[m]) if vals.get(m) is not None else None) for m in METRICS}
            out["source"] = row["source"]
            out["table"] = tname
            out["protocol"] = protocol(path, table=tname)
            note = (row.get("notes") or {}).get(ds)
            if note:
                out["note"] = note
            return out
    return None


def calibration_source(backbone: str, *, path: str | None = None) -> str | None:
    """The source of the published rows of ``backbone`` (first table that lists it); None when
    no table has it (TransE, DistMult, ComplEx on these splits)."""
    if not backbone:
        return None
    b = _key(backbone)
    for _tname, rows in _rows(None, path):
        if b in rows:
            return rows[b]["source"]
    return None


def no_row_reason(backbone: str, *, path: str | None = None) -> str | None:
    """Why ``backbone`` has no published row, when the file says so."""
    reasons = {_key(k): v for k, v in (load(path).get("no_published_row") or {}).items()}
    return reasons.get(_key(backbone)) if backbone else None


def protocol(path: str | None = None, *, table: str | None = None) -> str | None:
    """The evaluation protocol of the published rows: the table's own ``protocol`` (a table of rows on the
    classic kge splits), else the file's."""
    data = load(path)
    own = ((data.get("tables") or {}).get(table) or {}).get("protocol") if table else None
    return own or data.get("protocol")


def description(path: str | None = None) -> str:
    return " ".join(str(load(path).get("description") or "").split())
