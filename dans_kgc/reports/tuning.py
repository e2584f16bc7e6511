"""Reports of ``dans-kgc tune``: the table ``tuning`` (default vs tuned test MRR per sampler, with the
budget each study used) and the figure ``tuning_history`` (best validation MRR so far vs trial).

Both read files (``--runs`` takes study folders, holding ``study.json``, and run folders): a study
folder is never searched for run folders (its ``trials/NNNN/`` are the search's own runs, not
results). Default runs are tagged ``experiment=main``, tuned runs ``experiment=tuned``; a tuned run
names its study in its config (``tuned.study``, from best.yaml), which links it to its row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dans_kgc.reports.figures import _grid, _legend, empty_figure, save, setup, style_for
from dans_kgc.reports.labels import dataset_label, order_datasets, order_variants, variant_label
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import MISSING, Cell, Notes, Table, agg_cell, fmt, fmt_seconds, write_table
from dans_kgc.reports.runs import RunRecord, load_runs, metric_aggregate

STUDY_JSON = "study.json"  # dans_kgc.tuning.STUDY_JSON (not imported: the report needs no optuna)
STUDY_KIND = "dans_kgc_study"


def split_inputs(ctx: ReportContext) -> tuple[list[dict[str, Any]], list[RunRecord]]:
    """(studies, runs) among the given paths: a folder with study.json (or the file) is a study, a folder
    holding study folders is searched for them, anything else is a run folder (or a folder of them)."""
    studies: list[dict[str, Any]] = []
    others: list[Path] = []
    for p in ctx.inputs:
        files = [p] if p.name == STUDY_JSON else [p / STUDY_JSON] if (p / STUDY_JSON).exists() else []
        if not files and p.is_dir() and not (p / "run.json").exists():
            files = sorted(f for f in p.rglob(STUDY_JSON) if "trials" not in f.relative_to(p).parts)
        if not files:
            others.append(p)
            continue
        for f in files:
            try:
                data = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError) as err:
                ctx.warn(f"{f}: unreadable ({err.__class__.__name__}); left out")
                continue
            if data.get("kind") != STUDY_KIND:
                ctx.warn(f"{f}: not a 'dans-kgc tune' study; left out")
                continue
            studies.append({**data, "_path": str(f.parent)})
    runs = load_runs(others, ctx.option("split", "test")) if others else []
    ctx.notes["studies"] = [s["_path"] for s in studies]
    ctx.notes["inputs"] = [r.describe() for r in runs]
    return studies, runs


def _study_of(r: RunRecord) -> str | None:
    return r.param("tuned.study")


def _row_key(r: RunRecord) -> tuple:
    return (r.dataset, r.backbone_key, r.variant)


def _budget_text(study: dict[str, Any] | None) -> str:
    if not study:
        return MISSING
    b = study["budget"]
    per = f"{b['epochs_per_trial']} ep" + (
        f", ≤ {b['max_seconds_per_trial']:g} s" if b["max_seconds_per_trial"] else ""
    )
    return f"{b['trials_finished']}/{b['trials']} × ({per})"


@register(
    "tuning",
    kind="table",
    inputs="files",
    help="default vs tuned test MRR per sampler, with the equal budget of each study (study folders + runs)",
    options={
        "digits": "decimals",
        "metric": "the compared metric: mrr (default), hits@1, hits@3 or hits@10",
        "split": "which metrics_SPLIT.json of the runs",
    },
)
def build_tuning(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    digits = int(ctx.option("digits", 3))
    metric = str(ctx.option("metric", "mrr"))
    studies, runs = split_inputs(ctx)
    by_name = {(s["dataset"], s["study"]): s for s in studies}
    default = [r for r in runs if r.experiment == "main"]
    tuned = [r for r in runs if r.experiment == "tuned"]
    keys: list[tuple] = []
    for r in tuned + default:
        if _row_key(r) not in keys:
            keys.append(_row_key(r))
    datasets = order_datasets(k[0] for k in keys)
    variants = order_variants(k[2] for k in keys)
    keys.sort(key=lambda k: (datasets.index(k[0]), str(k[1]), variants.index(k[2])))
    used: set[tuple] = set()
    notes = Notes()
    rows: list[list[Cell]] = []
    tidy = []
    for k in keys:
        d_runs = [r for r in default if _row_key(r) == k]
        t_runs = [r for r in tuned if _row_key(r) == k]
        names = {name for r in t_runs if (name := _study_of(r))}
        study = by_name.get((k[0], next(iter(names)))) if len(names) == 1 else None
        if len(names) > 1:
            ctx.warn(
                f"{variant_label(k[2])} on {dataset_label(k[0])}: tuned runs from {len(names)} studies "
                f"({', '.join(sorted(names))}); no study shown"
            )
        if study:
            used.add((study["dataset"], study["study"]))
        d_agg, t_agg = metric_aggregate(d_runs, metric), metric_aggregate(t_runs, metric)
        who = f"{variant_label(k[2])}, {dataset_label(k[0])}"
        delta = t_agg.mean - d_agg.mean if d_agg.mean is not None and t_agg.mean is not None else None
        best = study.get("best") if study else None
        b = study["budget"] if study else {}
        label = t_runs[0].backbone_text if t_runs else d_runs[0].backbone_text
        rows.append(
            [
                Cell(dataset_label(k[0])),
                Cell(label),
                Cell(variant_label(k[2])),
                agg_cell(d_agg, notes, digits, what=f"default runs for {who}"),
                agg_cell(t_agg, notes, digits, what=f"tuned runs for {who}"),
                Cell(f"{delta:+.{digits}f}" if delta is not None else MISSING, delta),
                Cell(fmt(best["value"], digits) if best else MISSING),
                Cell(str(best["trial"]) if best else MISSING),
                Cell(_budget_text(study)),
                Cell(fmt_seconds(b.get("wall_seconds_total")) if study else MISSING),
            ]
        )
        tidy.append(
            {
                "dataset": k[0],
                "backbone": k[1][0],
                "mode": k[1][1],
                "backbone_recipe": k[1][2],
                "variant": k[2],
                "metric": metric,
                "default_mean": d_agg.mean,
                "default_std": d_agg.std,
                "default_n": d_agg.n,
                "tuned_mean": t_agg.mean,
                "tuned_std": t_agg.std,
                "tuned_n": t_agg.n,
                "delta": delta,
                "study": study["study"] if study else None,
                "study_path": study["_path"] if study else None,
                "best_trial": best["trial"] if best else None,
                "best_valid_mrr": best["value"] if best else None,
                "best_params": json.dumps(best["params"], sort_keys=True) if best else None,
                **{
                    f"budget_{n}": b.get(n)
                    for n in (
                        "trials",
                        "trials_finished",
                        "complete",
                        "pruned",
                        "failed",
                        "epochs_per_trial",
                        "max_seconds_per_trial",
                        "epochs_run_total",
                        "train_seconds_total",
                        "wall_seconds_total",
                    )
                },
            }
        )
    for s in studies:
        if (s["dataset"], s["study"]) not in used:
            ctx.warn(f"study {s['study']} ({s['_path']}): no tuned run of it among the inputs; not in the table")
    budgets = {
        (s["budget"]["trials"], s["budget"]["epochs_per_trial"], s["budget"]["max_seconds_per_trial"]) for s in studies
    }
    equal = (
        "every study had the same budget"
        if len(budgets) == 1
        else "the studies had DIFFERENT budgets: compare with care"
        if budgets
        else "no study given"
    )
    caption = (
        (ctx.title or "Default vs tuned configuration per sampler")
        + f". Test {metric.upper() if metric == 'mrr' else metric} of the default configuration (main) and of "
        "each sampler's best tuned configuration (tuned: its study's best.yaml), mean ± sample std over "
        "seeds; Δ = tuned − default. Best valid MRR: the study's objective (validation, never test) at its "
        f"best trial. Budget: finished/requested trials × per-trial budget; {equal}. Wall: the study's "
        "total wall time."
    )
    table = Table(
        caption=caption,
        columns=[
            "Dataset",
            "Backbone",
            "Sampler",
            "Default",
            "Tuned",
            "Δ",
            "Best valid MRR",
            "Best trial",
            "Budget",
            "Wall (s)",
        ],
        rows=rows,
        notes=notes,
        label="tab:tuning",
        align="lllrrrrrrr",
    )
    ctx.notes["equal_budget"] = len(budgets) == 1
    return write_table(table, ctx.out, pd.DataFrame(tidy))


def history(study: dict[str, Any]) -> tuple[list[int], list[float | None]]:
    """(trial numbers, best validation MRR so far): a pruned or failed trial keeps the best before it."""
    xs, ys, best = [], [], None
    for t in sorted(study.get("trials") or [], key=lambda t: t["number"]):
        if t["state"] == "COMPLETE" and t.get("value") is not None:
            best = t["value"] if best is None else max(best, t["value"])
        if t["state"] != "RUNNING":
            xs.append(t["number"])
            ys.append(best)
    return xs, ys


@register(
    "tuning_history",
    kind="figure",
    inputs="files",
    help="best validation MRR so far vs trial number, one line per study (sampler), a panel per dataset",
)
def build_tuning_history(ctx: ReportContext) -> list[Path]:
    studies, _ = split_inputs(ctx)
    if not studies:
        return empty_figure(ctx, "tuning_history: no study folder (study.json) among the inputs")
    plt = setup()
    datasets = order_datasets(s["dataset"] for s in studies)
    samplers = order_variants(s["sampler"] for s in studies)
    fig, axes = _grid(plt, 1, len(datasets), ctx.title)
    handles: dict[str, Any] = {}
    for j, ds in enumerate(datasets):
        ax = axes[0][j]
        for s in sorted((s for s in studies if s["dataset"] == ds), key=lambda s: samplers.index(s["sampler"])):
            xs, ys = history(s)
            st = style_for(s["sampler"], samplers)
            label = f"{variant_label(s['sampler'])} ({s['model']})"
            (line,) = ax.plot(
                xs,
                [y if y is not None else float("nan") for y in ys],
                color=st["color"],
                marker=st["marker"],
                linestyle=st["linestyle"],
                drawstyle="steps-post",
                label=label,
            )
            handles.setdefault(label, line)
            ctx.notes.setdefault("lines", {}).setdefault(str(ds), {})[s["study"]] = {"trials": xs, "best": ys}
        ax.set_title(dataset_label(ds), fontsize=14)
        ax.set_xlabel("Trial")
        ax.set_ylabel("Best validation MRR so far" if j == 0 else "")
    _legend(fig, list(handles.values()), list(handles))
    return save(fig, ctx)
