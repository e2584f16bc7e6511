"""The ``relations`` table: test MRR per relation, with the share of rankings in which the query's own anchor
entity outscores the answer, for every (backbone, variant) side by side.

It reads ``metrics_test.json``'s ``anchor_diagnostic.by_relation`` (written by ``dans-kgc evaluate``), a
diagnostic that says where a backbone loses its MRR (e.g. RotatE on Family's sibling relations, whose
anchors outscore the answer in about half the rankings). Rows: dataset x relation; columns: one per
(backbone, variant), each cell ``MRR (anchor share)`` as the mean over seeds. Runs evaluated before the
breakdown existed have none and are left out, with a note naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dans_kgc.reports.labels import RECIPE_LABEL, dataset_label, order_datasets, order_variants, variant_label
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import MISSING, Cell, Table, fmt, write_table
from dans_kgc.reports.runs import RunRecord, aggregate, group
from dans_kgc.reports.tables import backbone_keys, backbone_text, backbone_texts


def by_relation(r: RunRecord) -> dict[str, Any] | None:
    """The run's per-relation anchor diagnostic, or None when its evaluation predates it."""
    diag = (r.metrics or {}).get("anchor_diagnostic")
    rel = diag.get("by_relation") if isinstance(diag, dict) else None
    return rel if isinstance(rel, dict) and rel else None


@register(
    "relations",
    kind="table",
    help="test MRR per relation with the share of rankings whose anchor entity outscores the answer, "
    "per backbone and variant",
    options={"digits": "decimals"},
)
def build_relations(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    digits = int(ctx.option("digits", 3))
    runs = [r for r in ctx.runs if by_relation(r)]
    left_out = [r for r in ctx.runs if r.metrics and not by_relation(r)]
    keys, texts = backbone_keys(runs), backbone_texts(runs)
    variants = order_variants(r.variant for r in runs)
    cells = group(runs, "dataset", "backbone_key", "variant")
    columns_of = [(b, v) for b in keys for v in variants if any(k[1:] == (b, v) for k in cells)]
    rows: list[list[Cell]] = []
    midrules: set[int] = set()
    tidy = []
    for d in order_datasets(r.dataset for r in runs):
        relations = sorted(
            {
                name
                for (dd, _, _), members in cells.items()
                if dd == d
                for r in members
                for name in (by_relation(r) or {})
            }
        )
        midrules.add(len(rows))
        for i, rel in enumerate(relations):
            row = [Cell(dataset_label(d) if i == 0 else ""), Cell(rel)]
            for b, v in columns_of:
                members = cells.get((d, b, v), [])
                mrr, share, without = (
                    aggregate(members, lambda r, k=k, rel=rel: ((by_relation(r) or {}).get(rel) or {}).get(k))
                    for k in ("mrr", "anchor_outscores_answer", "mrr_anchor_removed")
                )
                if mrr.mean is None:
                    row.append(Cell(MISSING))
                    continue
                shown = fmt(mrr.mean, digits) + ("" if share.mean is None else f" ({100 * share.mean:.0f}%)")
                row.append(Cell(shown))
                tidy.append(
                    {
                        "dataset": d,
                        "relation": rel,
                        "backbone": backbone_text(b, texts),
                        "variant": v,
                        "n": mrr.n,
                        "mrr": mrr.mean,
                        "mrr_anchor_removed": without.mean,
                        "anchor_outscores_answer": share.mean,
                        "rankings": ((by_relation(members[0]) or {}).get(rel) or {}).get("rankings"),
                    }
                )
            rows.append(row)
    # a calibration run's variant is its recipe, whose label names the backbone already
    columns = ["Dataset", "Relation"] + [
        RECIPE_LABEL.get(v or "") or f"{backbone_text(b, texts)}, {variant_label(v)}" for b, v in columns_of
    ]
    caption = (
        (ctx.title or "Test MRR per relation") + ". Each cell: MRR over both prediction directions "
        "(mean over seeds), in brackets the share of rankings in which the query's own anchor entity "
        "(h for tail, t for head prediction) outscores the answer: a diagnostic of the backbone, from "
        "metrics_test.json's anchor_diagnostic.by_relation; its MRR with the anchor removed is in the CSV."
    )
    if left_out:  # never silently: a run without the breakdown is named
        caption += (
            " Left out, evaluated before the per-relation breakdown existed (re-run `dans-kgc evaluate "
            "--run` on them): " + "; ".join(str(r.path) for r in left_out) + "."
        )
    table = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        midrules=midrules,
        label="tab:relations",
        align="ll" + "r" * len(columns_of),
    )
    return write_table(table, ctx.out, pd.DataFrame(tidy))
