"""The ``paper`` report: the paper's known numbers beside ours, and published reference rows.

Rows are (experiment, dataset, backbone, method): a paper number is set beside each backbone
our runs used for that method; a paper cell we have no run for gets one row with no backbone.

The known numbers live in one packaged file, ``paper_targets.yaml`` (override with
``--option targets=FILE``). A cell whose paper number is not in that file is printed as
"not reported"; nothing is ever filled in.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dans_kgc.reports.labels import (
    DATASET_ORDER,
    METRIC_LABEL,
    TABLE_METRICS,
    VARIANT_ORDER,
    backbone_rank,
    dataset_label,
    order_datasets,
    variant_label,
)
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import MISSING, Cell, Notes, Table, agg_cell, to_latex, to_markdown
from dans_kgc.reports.runs import group, metric_aggregate
from dans_kgc.reports.tables import (
    backbone_caption,
    backbone_fields,
    backbone_keys,
    backbone_text,
    backbone_texts,
    evaluation_caption,
)

NOT_REPORTED = "not reported"
EXPERIMENT_ORDER = ["main", "ablation"]
EXPERIMENT_LABEL = {"main": "main", "ablation": "ablation (T5)"}


def default_targets_path() -> Path:
    return Path(str(resources.files("dans_kgc.reports") / "paper_targets.yaml"))


def load_targets(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check the targets file: every number needs a source and must be a fraction."""
    path = Path(path) if path else default_targets_path()
    data = yaml.safe_load(path.read_text()) or {}
    for i, t in enumerate(data.get("targets") or []):
        missing = [
            k for k in ("table", "dataset", "variant", "metric", "value", "source") if not t.get(k) and t.get(k) != 0
        ]
        if missing:
            raise ValueError(f"{path}: target #{i + 1} lacks {', '.join(missing)}")
        if not 0.0 <= float(t["value"]) <= 1.0:
            raise ValueError(f"{path}: target #{i + 1} value {t['value']} is not a fraction in [0, 1]")
    for ref in data.get("references") or []:
        if not ref.get("source"):
            raise ValueError(f"{path}: reference {ref.get('method')} has no source")
        for ds, vals in (ref.get("results") or {}).items():
            for m, v in vals.items():
                if not 0.0 <= float(v) <= 1.0:
                    raise ValueError(f"{path}: {ref['method']} {ds} {m} = {v} is not a fraction in [0, 1]")
    data["_path"] = str(path)
    return data


def fmt_published(v: float, digits: int = 3) -> str:
    """A published number at its own precision (AdaProp's README has 4 decimals), at least ``digits``."""
    text = repr(float(v))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else digits
    return f"{float(v):.{max(digits, min(decimals, 6))}f}"


def _signed(v: float, digits: int) -> str:
    s = f"{v:+.{digits}f}"
    return s.replace("-", "−")


def order_datasets_rank(ds: str | None) -> tuple:
    return (ds not in DATASET_ORDER, DATASET_ORDER.index(ds) if ds in DATASET_ORDER else 0, ds or "")


def order_backbones_rank(b: tuple | None) -> tuple:
    return backbone_rank(b)


def order_variants_rank(v: str | None) -> tuple:
    return (v not in VARIANT_ORDER, VARIANT_ORDER.index(v) if v in VARIANT_ORDER else 0, v or "")


@register(
    "paper",
    kind="table",
    experiments=("main", "ablation"),
    help="paper vs ours for every cell the paper reports; published RED-GNN / AdaProp reference rows",
    options={"digits": "decimals", "targets": "paper-targets YAML (default: the package's)"},
)
def build_paper(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    from dans_kgc.utils import write_text

    digits = int(ctx.option("digits", 3))
    data = load_targets(ctx.option("targets"))
    paper_protocol = (data.get("paper") or {}).get("protocol")
    targets = {(t["table"], t["dataset"], t["variant"], t["metric"]): t for t in data.get("targets") or []}
    metrics = list(TABLE_METRICS)
    for t in targets.values():
        if t["metric"] not in metrics:
            metrics.append(t["metric"])
    runs = ctx.runs
    cells = group(runs, "experiment", "dataset", "backbone_key", "variant")
    texts = backbone_texts(runs)
    # a paper number applies to every backbone we ran its cell on; a paper cell without runs gets one row
    run_keys = {k for k in cells if k[0] is not None}
    covered = {(e, d, v) for e, d, _b, v in run_keys}
    keys = sorted(
        run_keys | {(e, d, None, v) for e, d, v in {k[:3] for k in targets} if (e, d, v) not in covered},
        key=lambda k: (
            EXPERIMENT_ORDER.index(k[0]) if k[0] in EXPERIMENT_ORDER else len(EXPERIMENT_ORDER),
            str(k[0]),
            order_datasets_rank(k[1]),
            order_backbones_rank(k[2]),
            order_variants_rank(k[3]),
        ),
    )
    notes = Notes()
    rows: list[list[Cell]] = []
    tidy: list[dict[str, Any]] = []
    midrules: set[int] = set()
    aggs = []
    prev_exp = None
    for exp, ds, bb, var in keys:
        members = cells.get((exp, ds, bb, var), [])
        if exp != prev_exp:
            midrules.add(len(rows))
            prev_exp = exp
        b_text = backbone_text(bb, texts) if bb is not None else ""
        row = [
            Cell(EXPERIMENT_LABEL.get(exp, exp or "?")),
            Cell(dataset_label(ds)),
            Cell(b_text),
            Cell(variant_label(var)),
        ]
        protos = {r.protocol for r in members if r.has_metrics}
        who = f"{variant_label(var)} on {dataset_label(ds)}" + (f" with {b_text}" if b_text else "")
        for m in metrics:
            t = targets.get((exp, ds, var, m))
            agg = metric_aggregate(members, m)
            aggs.append(agg)
            c_paper = Cell(fmt_published(t["value"], digits) if t else NOT_REPORTED)
            if t:
                c_paper.marks.append(
                    notes.mark(f"source: {t['source']}" + (f" ({t['note']})" if t.get("note") else ""))
                )
            c_ours = agg_cell(agg, notes, digits, what=f"our results for {who}")
            if agg.n:
                c_ours.text += f" (n={agg.n})"
            diff = agg.mean - float(t["value"]) if (t and agg.mean is not None) else None
            c_diff = Cell(_signed(diff, digits) if diff is not None else MISSING, diff)
            if diff is not None and paper_protocol and protos and protos != {paper_protocol}:
                c_diff.marks.append(
                    notes.mark(
                        f"our protocol ({', '.join(sorted(map(str, protos)))}) differs from "
                        f"the paper's ({paper_protocol}): not directly comparable"
                    )
                )
            row += [c_paper, c_ours, c_diff]
            tidy.append(
                {
                    "kind": "paper_target",
                    "table": exp,
                    "dataset": ds,
                    **(
                        backbone_fields(bb, texts)
                        if bb
                        else dict.fromkeys(("backbone", "mode", "backbone_recipe", "backbone_label"))
                    ),
                    "variant": var,
                    "metric": m,
                    "paper": t["value"] if t else None,
                    "paper_source": t["source"] if t else NOT_REPORTED,
                    "ours_mean": agg.mean,
                    "ours_std": agg.std,
                    "n": agg.n,
                    "n_expected": agg.expected,
                    "diff": diff,
                    "protocol": " ".join(sorted(map(str, protos))) or None,
                    "status": ("compared" if diff is not None else ("missing ours" if t else NOT_REPORTED)),
                }
            )
        rows.append(row)
    title = ctx.title or "Paper vs ours"
    caption = (
        f"{title}. Paper: the DANS-KGC paper's number where we know it ('{NOT_REPORTED}': no number "
        f"available to us; never filled in; the paper's number is set beside each backbone we ran the "
        f"method on, and the backbone cell is empty for a paper cell without runs); Δ = ours − paper. "
        f"{backbone_caption(backbone_keys(runs), texts) if runs else 'No runs'}. "
        f"Ours: {evaluation_caption(runs, aggs)}."
    )
    columns = ["Experiment", "Dataset", "Backbone", "Method"] + ["Paper", "Ours", "Δ"] * len(metrics)
    groups = [("", 4)] + [(METRIC_LABEL.get(m, m), 3) for m in metrics]
    t_cmp = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        groups=groups,
        notes=notes,
        midrules=midrules,
        label="tab:paper-vs-ours",
        align="llll" + "rrr" * len(metrics),
        title="Paper vs ours",
    )

    # --- reference rows ---------------------------------------------------------------
    rnotes = Notes()
    rrows: list[list[Cell]] = []
    ref_metrics = list(TABLE_METRICS)
    paper_rows: dict[str, dict[str, Any]] = {}
    for (exp, ds, _variant, m), t in targets.items():
        if exp == "main":
            paper_rows.setdefault(ds, {})[m] = t
    refs = data.get("references") or []
    datasets = order_datasets(set(paper_rows) | {ds for ref in refs for ds in (ref.get("results") or {})})
    rmid: set[int] = set()
    for ds in datasets:
        rmid.add(len(rrows))
        if ds in paper_rows:
            src = next(iter(paper_rows[ds].values()))["source"]
            row = [Cell("DANS-KGC (paper)"), Cell(dataset_label(ds))]
            row += [
                Cell(fmt_published(paper_rows[ds][m]["value"], digits) if m in paper_rows[ds] else NOT_REPORTED)
                for m in ref_metrics
            ]
            row.append(Cell(f"[{rnotes.mark(src)}]"))
            rrows.append(row)
            for m in ref_metrics:
                tidy.append(
                    {
                        "kind": "reference",
                        "table": "main",
                        "dataset": ds,
                        "variant": "DANS-KGC (paper)",
                        "metric": m,
                        "paper": paper_rows[ds][m]["value"] if m in paper_rows[ds] else None,
                        "paper_source": src,
                        "status": "published" if m in paper_rows[ds] else NOT_REPORTED,
                    }
                )
        for ref in refs:
            vals = (ref.get("results") or {}).get(ds)
            mark = rnotes.mark(ref["source"])
            row = [Cell(ref["method"]), Cell(dataset_label(ds))]
            row += [Cell(fmt_published(vals[m], digits) if vals and m in vals else NOT_REPORTED) for m in ref_metrics]
            src = Cell(f"[{mark}]")
            note = (ref.get("notes") or {}).get(ds)
            if note:
                src.marks.append(rnotes.mark(note))
            row.append(src)
            rrows.append(row)
            for m in ref_metrics:
                tidy.append(
                    {
                        "kind": "reference",
                        "table": "main",
                        "dataset": ds,
                        "variant": ref["method"],
                        "metric": m,
                        "paper": vals.get(m) if vals else None,
                        "paper_source": ref["source"],
                        "status": "published" if vals and m in vals else NOT_REPORTED,
                    }
                )
    rcaption = (
        f"Published numbers on the same protocol ({paper_protocol or 'unknown'}; filtered, realistic ranks), "
        f"for reference: they are other papers' single runs, not reproduced here. Sources in the notes."
    )
    t_ref = Table(
        caption=rcaption,
        columns=["Method", "Dataset"] + [METRIC_LABEL[m] for m in ref_metrics] + ["Source"],
        rows=rrows,
        notes=rnotes,
        midrules=rmid,
        label="tab:paper-references",
        align="llrrrl",
        title="Published reference numbers",
    )

    written = []
    p = ctx.path(".csv")
    write_text(p, pd.DataFrame(tidy).to_csv(index=False))
    written.append(p)
    p = ctx.path(".md")
    write_text(p, to_markdown(t_cmp) + "\n" + to_markdown(t_ref))
    written.append(p)
    p = ctx.path(".tex")
    prov = Path(str(ctx.out) + ".provenance.json").name
    write_text(p, to_latex(t_cmp, prov) + "\n" + to_latex(t_ref, prov))
    written.append(p)
    ctx.notes["paper_targets"] = {"path": data["_path"], "targets": len(targets), "references": len(refs)}
    return written
