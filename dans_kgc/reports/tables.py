"""Table reports: ``main`` (samplers x datasets), ``ablation`` (Table 5) and ``efficiency``."""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from dans_kgc.reports import ReportContext, register
from dans_kgc.reports.labels import (ABLATION_VARIANTS, METRIC_LABEL, TABLE_METRICS, dataset_label, order_datasets,
                                     order_variants, variant_label)
from dans_kgc.reports.render import (MISSING, Cell, Notes, Table, agg_cell, bold_best, fmt, fmt_agg, fmt_seconds,
                                     write_table)
from dans_kgc.reports.runs import Aggregate, RunRecord, aggregate, group, metric_aggregate


# ----------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------
def _join_by_dataset(values: dict[str, set]) -> str:
    distinct = {frozenset(v) for v in values.values()}
    if len(distinct) == 1:
        return ", ".join(sorted(next(iter(distinct)))) or "unknown"
    return "; ".join(f"{', '.join(sorted(v)) or 'unknown'} ({dataset_label(d)})"
                     for d, v in ((d, values[d]) for d in order_datasets(values)))


def evaluation_caption(runs: Sequence[RunRecord], aggs: Iterable[Aggregate]) -> str:
    """Protocol, tie policy, filtering and seeds of the runs behind a table, in words."""
    ok = [r for r in runs if r.has_metrics]
    protocols: dict[str, set] = {}
    ties: set[str] = set()
    filters: set[str] = set()
    for r in ok:
        protocols.setdefault(r.dataset, set()).add(r.protocol or "unknown")
        ties.add(r.tie_policy or "unknown")
        fw = (r.metrics.get("metrics") or {}).get("filtered_with")
        if fw:
            filters.add("+".join(fw))
    aggs = list(aggs)
    ns = [a.n for a in aggs if a.n]
    incomplete = any(a.expected and a.n < a.expected for a in aggs)
    seeds = sorted({s for a in aggs for s in a.seeds if s is not None})
    sentences = [f"Protocol: {_join_by_dataset(protocols) if protocols else 'unknown (no evaluated run)'}",
                 f"Ties: {'; '.join(sorted(ties)) if ties else 'unknown'}"]
    detail = []
    if filters:
        detail.append(f"Filtered with {'; '.join(sorted(filters))}")
    split = "/".join(sorted({str(r.metrics.get("split") or "test") for r in ok})) or "test"
    detail.append(f"{split} metrics of the best-validation-MRR checkpoint" if filters
                  else f"{split.capitalize()} metrics of the best-validation-MRR checkpoint")
    if ns:
        lo, hi = min(ns), max(ns)
        n_text = f"n = {hi}" if lo == hi else f"n = {lo} to {hi}" + ("" if incomplete else ", per cell in the CSV")
        if seeds:
            n_text += f"; seeds {', '.join(map(str, seeds))}"
        detail.append(f"mean ± sample std over seeds ({n_text})"
                      + ("; missing or incomplete cells are marked and explained in the notes" if incomplete else ""))
    elif incomplete:
        detail.append("no evaluated run: every cell is missing (see notes)")
    return ". ".join(sentences) + ". " + "; ".join(detail)


def _tidy_row(dataset: Optional[str], variant: Optional[str], metric: str, agg: Aggregate, best: bool,
              **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "variant": variant, "metric": metric, "mean": agg.mean, "std": agg.std, "n": agg.n,
            "n_expected": agg.expected, "seeds": " ".join(str(s) for s in agg.seeds),
            "values": " ".join(repr(v) for v in agg.values),
            "missing": " ".join(str(r.path) for r in agg.missing), "best": best, **extra}


# ----------------------------------------------------------------------------------------
# main / ablation
# ----------------------------------------------------------------------------------------
def results_table(ctx: ReportContext, variants: Sequence[Optional[str]], what: str, default_title: str,
                  label: str) -> list[Path]:
    import pandas as pd

    digits = int(ctx.option("digits", 3))
    metrics = list(ctx.option("metrics", TABLE_METRICS))
    runs = ctx.runs
    datasets = order_datasets(r.dataset for r in runs)
    cells = group(runs, "dataset", "variant")
    notes = Notes()
    rows: list[list[Cell]] = []
    aggs: dict[tuple, Aggregate] = {}
    for v in variants:
        row = [Cell(variant_label(v))]
        for d in datasets:
            for m in metrics:
                agg = metric_aggregate(cells.get((d, v), []), m)
                aggs[(d, v, m)] = agg
                row.append(agg_cell(agg, notes, digits, what=f"test metrics for {variant_label(v)} on {dataset_label(d)}"))
        rows.append(row)
    bold_best(rows, range(1, len(rows[0]) if rows else 1), digits)
    columns = [what] + [METRIC_LABEL[m] for _ in datasets for m in metrics]
    groups = [("", 1)] + [(dataset_label(d), len(metrics)) for d in datasets]
    title = ctx.title or default_title
    caption = f"{title}. {evaluation_caption(runs, aggs.values())}; best mean per column in bold."
    table = Table(caption=caption, columns=columns, rows=rows, groups=groups, notes=notes, label=label)
    tidy = []
    for i, v in enumerate(variants):
        for j, (d, m) in enumerate((d, m) for d in datasets for m in metrics):
            tidy.append(_tidy_row(d, v, m, aggs[(d, v, m)], rows[i][1 + j].bold))
    ctx.notes["cells"] = len(tidy)
    return write_table(table, ctx.out, pd.DataFrame(tidy))


@register("main", kind="table", experiments=("main",),
          help="samplers x datasets: test MRR / Hits@1 / Hits@10, mean ± std over seeds")
def build_main(ctx: ReportContext) -> list[Path]:
    variants = order_variants(r.variant for r in ctx.runs)
    return results_table(ctx, variants, "Sampler", "Link prediction with each negative sampler", "tab:main")


@register("ablation", kind="table", experiments=("ablation",),
          help="full / w/o DAM / w/o CCD / w/o DTM (paper Table 5)")
def build_ablation(ctx: ReportContext) -> list[Path]:
    seen = [r.variant for r in ctx.runs]
    extra = [v for v in order_variants(seen) if v not in ABLATION_VARIANTS]
    return results_table(ctx, ABLATION_VARIANTS + extra, "Variant", "Ablation of DANS-KGC's modules", "tab:ablation")


# ----------------------------------------------------------------------------------------
# efficiency
# ----------------------------------------------------------------------------------------
def _col(trace, name: str) -> list[float]:
    if trace is None or name not in trace:
        return []
    return [float(x) for x in trace[name] if x == x]  # drop NaN


def sec_per_epoch(r: RunRecord) -> Optional[float]:
    vals = _col(r.trace, "seconds")
    return statistics.median(vals) if vals else None


def total_train_seconds(r: RunRecord) -> Optional[float]:
    v = r.summary.get("train_seconds")
    if v is not None:
        return float(v)
    vals = _col(r.trace, "train_seconds")
    return vals[-1] if vals else None


def best_valid_mrr(r: RunRecord) -> Optional[float]:
    v = r.summary.get("best_valid_mrr")
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    vals = _col(r.trace, "valid_mrr")
    return max(vals) if vals else None


def time_to_target(r: RunRecord, target: float) -> Optional[tuple[float, int]]:
    """(train seconds, epoch) of the first validation at or above ``target``; None = never."""
    t = r.trace
    if t is None or "valid_mrr" not in t:
        return None
    hit = t[t["valid_mrr"] >= target]
    if hit.empty:
        return None
    row = hit.iloc[0]
    secs = float(row["train_seconds"]) if "train_seconds" in t else float(t["seconds"].iloc[: hit.index[0] + 1].sum())
    return secs, int(row["epoch"])


@register("efficiency", kind="table", experiments=("main",),
          help="seconds/epoch, train time, time to a target validation MRR, ratio vs uniform")
def build_efficiency(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    runs = ctx.runs
    datasets = order_datasets(r.dataset for r in runs)
    cells = group(runs, "dataset", "variant")
    variants = order_variants(r.variant for r in runs)
    fraction = float(ctx.option("target_fraction", 0.9))
    absolute = ctx.option("target_mrr")
    notes = Notes()
    targets: dict[str, Optional[float]] = {}
    target_src: dict[str, str] = {}
    for d in datasets:
        if absolute is not None:
            targets[d], target_src[d] = float(absolute), "given (--target-mrr)"
            continue
        base = aggregate(cells.get((d, "uniform"), []), best_valid_mrr)
        if base.n:
            targets[d], target_src[d] = fraction * base.mean, f"{fraction:g} × uniform's best valid MRR"
        else:
            best = [aggregate(cells.get((d, v), []), best_valid_mrr) for v in variants]
            means = [a.mean for a in best if a.n]
            targets[d] = fraction * max(means) if means else None
            target_src[d] = f"{fraction:g} × the best sampler's best valid MRR (no uniform run)"
    rows: list[list[Cell]] = []
    midrules: set[int] = set()
    tidy = []
    for d in datasets:
        base = aggregate(cells.get((d, "uniform"), []), sec_per_epoch)
        first = True
        for v in variants:
            members = cells.get((d, v))
            if not members:
                continue
            if first:
                midrules.add(len(rows))
            spe = aggregate(members, sec_per_epoch)
            tot = aggregate(members, total_train_seconds)
            what = f"training trace for {variant_label(v)} on {dataset_label(d)}"
            c_spe = agg_cell(spe, notes, formatter=fmt_seconds, what=what)
            c_tot = agg_cell(tot, notes, formatter=fmt_seconds, what=what)
            ratio = spe.mean / base.mean if spe.n and base.n and base.mean > 0 else None
            c_ratio = Cell(f"{ratio:.2f}×" if ratio is not None else MISSING, ratio)
            if ratio is None and spe.n:
                c_ratio.marks.append(notes.mark(f"no uniform run with a trace on {dataset_label(d)}: no ratio"))
            target = targets[d]
            reach = [time_to_target(r, target) if target is not None and r.has_trace else None for r in members]
            have_trace = [r for r in members if r.has_trace]
            reached = [x for x in reach if x is not None]
            t_agg = Aggregate([x[0] for x in reached], [r.seed for r, x in zip(members, reach) if x], [])
            e_agg = Aggregate([float(x[1]) for x in reached], t_agg.seeds, [])
            if not have_trace:
                c_time, c_ep = Cell(MISSING), Cell(MISSING)
                c_time.marks.append(notes.mark(f"missing {what}"))
            elif not reached:
                c_time, c_ep = Cell("not reached"), Cell("not reached")
            else:
                c_time = Cell(fmt_agg(t_agg, formatter=fmt_seconds), t_agg.mean)
                c_ep = Cell(f"{e_agg.mean:.1f}" if e_agg.n > 1 else f"{e_agg.mean:.0f}", e_agg.mean)
                if len(reached) < len(have_trace):
                    c_time.marks.append(notes.mark(f"reached by {len(reached)} of {len(have_trace)} seeds; "
                                                   "mean over those that reached it"))
            rows.append([Cell(dataset_label(d) if first else ""), Cell(variant_label(v)), c_spe, c_ratio, c_tot,
                         Cell(fmt(target) if first else ""), c_time, c_ep])
            first = False
            tidy.append({"dataset": d, "variant": v, "sec_per_epoch_median_mean": spe.mean, "sec_per_epoch_std": spe.std,
                         "ratio_vs_uniform": ratio, "train_seconds_mean": tot.mean, "train_seconds_std": tot.std,
                         "target_valid_mrr": target, "target_source": target_src[d],
                         "time_to_target_mean": t_agg.mean, "time_to_target_std": t_agg.std,
                         "epochs_to_target_mean": e_agg.mean, "n_reached": len(reached), "n_with_trace": len(have_trace),
                         "n": spe.n, "n_expected": spe.expected,
                         "missing": " ".join(str(r.path) for r in members if not r.has_trace)})
    srcs = sorted(set(target_src.values()))
    intervals = sorted({int(r.param("train.eval_every")) for r in runs if r.param("train.eval_every")})
    every = (f"; validation every {', '.join(map(str, intervals))} epochs, so times are resolved to that grid"
             if intervals else "")
    title = ctx.title or "Training cost per sampler"
    caption = (f"{title}. s/epoch: median training seconds per epoch of each run (validation excluded), "
               f"then mean ± sample std over seeds; ×uniform: ratio of mean s/epoch to the uniform sampler's; "
               f"train time: total training seconds; time/epochs to target: first validation at or above the "
               f"target validation MRR (target = {'; '.join(srcs) or 'none'}{every}), 'not reached' when no run reached it. "
               f"Same hardware assumed for all runs; compare only within one machine.")
    columns = ["Dataset", "Sampler", "s/epoch", "×uniform", "Train time (s)", "Target MRR", "Time to target (s)",
               "Epochs to target"]
    table = Table(caption=caption, columns=columns, rows=rows, notes=notes, midrules=midrules,
                  label="tab:efficiency", align="llrrrrrr")
    ctx.notes["targets"] = {d: {"valid_mrr": targets[d], "source": target_src[d]} for d in datasets}
    return write_table(table, ctx.out, pd.DataFrame(tidy))
