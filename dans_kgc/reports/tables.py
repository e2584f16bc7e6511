"""Table reports: ``main`` ((backbone, sampler) x datasets), ``ablation`` (Table 5) and ``efficiency``.

Rows are keyed by (backbone, variant): one preset may run the same sampler on several
backbones, and each pair is its own row (samplers are compared, and bolded, within a backbone)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dans_kgc.reports.labels import (
    ABLATION_VARIANTS,
    METRIC_LABEL,
    MODE_SHORT,
    TABLE_METRICS,
    backbone_label,
    dataset_label,
    mode_label,
    order_backbones,
    order_datasets,
    order_variants,
    variant_label,
)
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import (
    MISSING,
    Cell,
    Notes,
    Table,
    agg_cell,
    bold_best,
    fmt,
    fmt_agg,
    fmt_seconds,
    write_table,
)
from dans_kgc.reports.runs import Aggregate, RunRecord, aggregate, group, metric_aggregate


# ----------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------
def _join_by_dataset(values: dict[str | None, set]) -> str:
    distinct = {frozenset(v) for v in values.values()}
    if len(distinct) == 1:
        return ", ".join(sorted(next(iter(distinct)))) or "unknown"
    return "; ".join(
        f"{', '.join(sorted(v)) or 'unknown'} ({dataset_label(d)})"
        for d, v in ((d, values[d]) for d in order_datasets(values))
    )


def evaluation_caption(runs: Sequence[RunRecord], aggs: Iterable[Aggregate]) -> str:
    """Protocol, tie policy, filtering and seeds of the runs behind a table, in words."""
    ok = [r for r in runs if r.has_metrics]
    protocols: dict[str | None, set] = {}
    ties: set[str] = set()
    filters: set[str] = set()
    for r in ok:
        protocols.setdefault(r.dataset, set()).add(r.protocol or "unknown")
        ties.add(r.tie_policy or "unknown")
        fw = ((r.metrics or {}).get("metrics") or {}).get("filtered_with")
        if fw:
            filters.add("+".join(fw))
    aggs = list(aggs)
    ns = [a.n for a in aggs if a.n]
    incomplete = any(a.expected and a.n < a.expected for a in aggs)
    seeds = sorted({s for a in aggs for s in a.seeds if s is not None})
    sentences = [
        f"Protocol: {_join_by_dataset(protocols) if protocols else 'unknown (no evaluated run)'}",
        f"Ties: {'; '.join(sorted(ties)) if ties else 'unknown'}",
    ]
    detail = []
    if filters:
        detail.append(f"Filtered with {'; '.join(sorted(filters))}")
    split = "/".join(sorted({str((r.metrics or {}).get("split") or "test") for r in ok})) or "test"
    detail.append(
        f"{split} metrics of the best-validation-MRR checkpoint"
        if filters
        else f"{split.capitalize()} metrics of the best-validation-MRR checkpoint"
    )
    if ns:
        lo, hi = min(ns), max(ns)
        n_text = f"n = {hi}" if lo == hi else f"n = {lo} to {hi}" + ("" if incomplete else ", per cell in the CSV")
        if seeds:
            n_text += f"; seeds {', '.join(map(str, seeds))}"
        detail.append(
            f"mean ± sample std over seeds ({n_text})"
            + ("; missing or incomplete cells are marked and explained in the notes" if incomplete else "")
        )
    elif incomplete:
        detail.append("no evaluated run: every cell is missing (see notes)")
    return ". ".join(sentences) + ". " + "; ".join(detail)


def _tidy_row(
    dataset: str | None, variant: str | None, metric: str, agg: Aggregate, best: bool, **extra: Any
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "variant": variant,
        "metric": metric,
        "mean": agg.mean,
        "std": agg.std,
        "n": agg.n,
        "n_expected": agg.expected,
        "seeds": " ".join(str(s) for s in agg.seeds),
        "values": " ".join(repr(v) for v in agg.values),
        "missing": " ".join(str(r.path) for r in agg.missing),
        "best": best,
        **extra,
    }


# ----------------------------------------------------------------------------------------
# backbones
# ----------------------------------------------------------------------------------------
BackboneKey = tuple[str | None, str | None, str | None]  # (model name, mode, recipe)
NO_BACKBONE: BackboneKey = (None, None, None)


def backbone_keys(runs: Sequence[RunRecord]) -> list[BackboneKey]:
    """The backbones of the runs in table order; ``[NO_BACKBONE]`` for no runs."""
    return order_backbones(r.backbone_key for r in runs) or [NO_BACKBONE]


def backbone_texts(runs: Sequence[RunRecord]) -> dict[BackboneKey, str]:
    """Display text per backbone key ("RotatE (NS)"): the run's own label when it wrote one; the
    recipe is added ("RotatE (NS) [rotate_nssa]") only where two recipes share a model and mode."""
    out: dict[BackboneKey, str] = {}
    for r in runs:
        if r.backbone_key not in out or (r.backbone_display and not r.backbone_inferred):
            out[r.backbone_key] = r.backbone_text
    shared: dict[tuple, int] = {}
    for k in out:
        shared[k[:2]] = shared.get(k[:2], 0) + 1
    return {k: (f"{t} [{k[2] or 'no recipe tag'}]" if shared[k[:2]] > 1 else t) for k, t in out.items()}


def backbone_text(key: BackboneKey, texts: dict[BackboneKey, str]) -> str:
    return texts.get(key) or backbone_label(key[0], key[1])


def backbone_fields(key: BackboneKey, texts: dict[BackboneKey, str]) -> dict[str, Any]:
    """The backbone columns of a tidy CSV row."""
    return {"backbone": key[0], "mode": key[1], "backbone_recipe": key[2], "backbone_label": backbone_text(key, texts)}


def backbone_caption(keys: Sequence[BackboneKey], texts: dict[BackboneKey, str]) -> str:
    """A caption sentence naming the backbone(s) and what NS / 1-N mean."""
    names = [backbone_text(k, texts) for k in keys]
    modes = [MODE_SHORT[m] + " = " + mode_label(m) for m in MODE_SHORT if any(k[1] == m for k in keys)]
    head = f"Backbone: {names[0]} for every row" if len(names) == 1 else f"Backbones: {', '.join(names)}"
    return head + (f" ({'; '.join(modes)})" if modes else "")


# ----------------------------------------------------------------------------------------
# main / ablation
# ----------------------------------------------------------------------------------------
ANCHOR_KEY = "anchor_outscores_answer"
ANCHOR_COLUMN = "Diag.: anchor > answer"
ANCHOR_CAPTION = (
    "Diag.: anchor > answer is a diagnostic, not a result (never bold): the mean share of test "
    "rankings in which the query's own anchor entity (h for tail, t for head prediction) outscores "
    "the true answer"
)


def results_table(
    ctx: ReportContext,
    variants_for: Callable[[Sequence[RunRecord]], Sequence[str | None]],
    what: str,
    default_title: str,
    label: str,
) -> list[Path]:
    """Rows: (backbone, variant), the variants of each backbone given by ``variants_for(its runs)``;
    columns: datasets x metrics (plus the anchor diagnostic per dataset when any run has it)."""
    import pandas as pd

    digits = int(ctx.option("digits", 3))
    metrics = list(ctx.option("metrics", TABLE_METRICS))
    runs = ctx.runs
    datasets = order_datasets(r.dataset for r in runs)
    cells = group(runs, "dataset", "backbone_key", "variant")
    keys = backbone_keys(runs)
    texts = backbone_texts(runs)
    diag = any(r.diagnostic(ANCHOR_KEY) is not None for r in runs)
    per_ds = len(metrics) + (1 if diag else 0)
    notes = Notes()
    rows: list[list[Cell]] = []
    row_keys: list[tuple[BackboneKey, str | None]] = []
    aggs: dict[tuple, Aggregate] = {}
    diag_aggs: dict[tuple, Aggregate] = {}
    blocks: list[list[int]] = []
    for b in keys:
        block = []
        for v in variants_for([r for r in runs if r.backbone_key == b]):
            row = [Cell(backbone_text(b, texts)), Cell(variant_label(v))]
            for d in datasets:
                members = cells.get((d, b, v), [])
                who = f"{variant_label(v)} on {backbone_text(b, texts)}, {dataset_label(d)}"
                for m in metrics:
                    agg = metric_aggregate(members, m)
                    aggs[(d, b, v, m)] = agg
                    row.append(agg_cell(agg, notes, digits, what=f"test metrics for {who}"))
                if diag:
                    agg = aggregate(members, lambda r: r.diagnostic(ANCHOR_KEY))
                    diag_aggs[(d, b, v)] = agg
                    c = agg_cell(agg, notes, digits, what=f"anchor diagnostic for {who}")
                    c.value = None  # a diagnostic is never a candidate for bold
                    row.append(c)
            block.append(len(rows))
            rows.append(row)
            row_keys.append((b, v))
        blocks.append(block)
    metric_cols = [2 + i * per_ds + k for i in range(len(datasets)) for k in range(len(metrics))]
    for block in blocks:  # best per backbone: samplers are compared on the same backbone
        bold_best([rows[i] for i in block], metric_cols, digits)
    midrules = {block[0] for block in blocks if block} if len(keys) > 1 else set()
    columns = ["Backbone", what] + [
        c for _ in datasets for c in [METRIC_LABEL[m] for m in metrics] + ([ANCHOR_COLUMN] if diag else [])
    ]
    groups = [("", 2)] + [(dataset_label(d), per_ds) for d in datasets]
    title = ctx.title or default_title
    best = "best mean per column in bold" if len(keys) == 1 else "best mean per column within each backbone in bold"
    caption = f"{title}. {backbone_caption(keys, texts)}. {evaluation_caption(runs, aggs.values())}; {best}." + (
        f" {ANCHOR_CAPTION}." if diag else ""
    )
    table = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        groups=groups,
        notes=notes,
        label=label,
        midrules=midrules,
        align="ll" + "r" * (len(columns) - 2),
    )
    tidy = []
    for i, (b, v) in enumerate(row_keys):
        bb = backbone_fields(b, texts)
        for j, d in enumerate(datasets):
            for k, m in enumerate(metrics):
                tidy.append(
                    _tidy_row(d, v, m, aggs[(d, b, v, m)], rows[i][2 + j * per_ds + k].bold, diagnostic=False, **bb)
                )
            if diag:
                tidy.append(_tidy_row(d, v, ANCHOR_KEY, diag_aggs[(d, b, v)], False, diagnostic=True, **bb))
    ctx.notes["cells"] = len(tidy)
    ctx.notes["backbones"] = [backbone_text(b, texts) for b in keys]
    return write_table(table, ctx.out, pd.DataFrame(tidy))


@register(
    "main",
    kind="table",
    experiments=("main",),
    help="(backbone, sampler) x datasets: test MRR / Hits@1 / Hits@10, mean ± std over seeds",
    options={"digits": "decimals"},
)
def build_main(ctx: ReportContext) -> list[Path]:
    return results_table(
        ctx,
        lambda runs: order_variants(r.variant for r in runs),
        "Sampler",
        "Link prediction with each negative sampler",
        "tab:main",
    )


@register(
    "ablation",
    kind="table",
    experiments=("ablation",),
    help="full / w/o DAM / w/o CCD / w/o DTM (paper Table 5), per backbone",
    options={"digits": "decimals"},
)
def build_ablation(ctx: ReportContext) -> list[Path]:
    def variants_for(runs: Sequence[RunRecord]) -> list[str | None]:
        extra = [v for v in order_variants(r.variant for r in runs) if v not in ABLATION_VARIANTS]
        return ABLATION_VARIANTS + extra

    return results_table(ctx, variants_for, "Variant", "Ablation of DANS-KGC's modules", "tab:ablation")


@register(
    "curriculum",
    kind="table",
    experiments=("curriculum",),
    help="curriculum robustness: default, reversed, gradual / abrupt (dtm.lambda 2, 32), none, per backbone",
    options={"digits": "decimals"},
)
def build_curriculum(ctx: ReportContext) -> list[Path]:
    return results_table(
        ctx,
        lambda runs: order_variants(r.variant for r in runs),
        "Curriculum",
        "DANS-KGC under other curricula (the order and speed of the hardness schedule)",
        "tab:curriculum",
    )


@register(
    "dam_inputs",
    kind="table",
    experiments=("dam_inputs",),
    help="DAM's semantic features from an untrained, a short, the full TransE or the backbone: zeta's "
    "held-out Spearman with the observed difficulty, and DANS-KGC's test metrics",
    options={"digits": "decimals"},
)
def build_dam_inputs(ctx: ReportContext) -> list[Path]:
    ctx.options.setdefault("metrics", ["dam_spearman", *TABLE_METRICS])
    return results_table(
        ctx,
        lambda runs: order_variants(r.variant for r in runs),
        "DAM input",
        "DANS-KGC with DAM fitted on semantic features of different quality (ζ held-out ρ: "
        "Spearman of ζ with the observed difficulty of a fixed reference model on held-out "
        "entities)",
        "tab:dam_inputs",
    )


# ----------------------------------------------------------------------------------------
# efficiency
# ----------------------------------------------------------------------------------------
def _col(trace, name: str) -> list[float]:
    if trace is None or name not in trace:
        return []
    return [float(x) for x in trace[name] if x == x]  # drop NaN


def sec_per_epoch(r: RunRecord) -> float | None:
    vals = _col(r.trace, "seconds")
    return statistics.median(vals) if vals else None


def total_train_seconds(r: RunRecord) -> float | None:
    v = r.summary.get("train_seconds")
    if v is not None:
        return float(v)
    vals = _col(r.trace, "train_seconds")
    return vals[-1] if vals else None


def best_valid_mrr(r: RunRecord) -> float | None:
    v = r.summary.get("best_valid_mrr")
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    vals = _col(r.trace, "valid_mrr")
    return max(vals) if vals else None


def time_to_target(r: RunRecord, target: float) -> tuple[float, int] | None:
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


@register(
    "efficiency",
    kind="table",
    experiments=("main",),
    help="seconds/epoch, train time, time to a target validation MRR, ratio vs uniform (per backbone)",
    options={
        "target_mrr": "absolute target validation MRR of time-to-target",
        "target_fraction": "without target_mrr: this fraction of uniform's best validation MRR (0.9)",
    },
)
def build_efficiency(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    runs = ctx.runs
    datasets = order_datasets(r.dataset for r in runs)
    cells = group(runs, "dataset", "backbone_key", "variant")
    variants = order_variants(r.variant for r in runs)
    keys = backbone_keys(runs)
    texts = backbone_texts(runs)
    fraction = float(ctx.option("target_fraction", 0.9))
    absolute = ctx.option("target_mrr")
    notes = Notes()
    # the target and the uniform baseline are per (dataset, backbone): samplers compete on one backbone
    targets: dict[tuple, float | None] = {}
    target_src: dict[tuple, str] = {}
    blocks = [(d, b) for d in datasets for b in keys if any(cells.get((d, b, v)) for v in variants)]
    for d, b in blocks:
        if absolute is not None:
            targets[(d, b)], target_src[(d, b)] = float(absolute), "given (--target-mrr)"
            continue
        base = aggregate(cells.get((d, b, "uniform"), []), best_valid_mrr)
        if base.mean is not None:
            targets[(d, b)], target_src[(d, b)] = fraction * base.mean, f"{fraction:g} × uniform's best valid MRR"
        else:
            best = [aggregate(cells.get((d, b, v), []), best_valid_mrr) for v in variants]
            means = [a.mean for a in best if a.mean is not None]
            targets[(d, b)] = fraction * max(means) if means else None
            target_src[(d, b)] = f"{fraction:g} × the best sampler's best valid MRR (no uniform run)"
    rows: list[list[Cell]] = []
    midrules: set[int] = set()
    tidy = []
    prev_d = object()
    for d, b in blocks:
        base = aggregate(cells.get((d, b, "uniform"), []), sec_per_epoch)
        first = True
        for v in variants:
            members = cells.get((d, b, v))
            if not members:
                continue
            if first:
                midrules.add(len(rows))
            spe = aggregate(members, sec_per_epoch)
            tot = aggregate(members, total_train_seconds)
            what = f"training trace for {variant_label(v)} on {backbone_text(b, texts)}, {dataset_label(d)}"
            c_spe = agg_cell(spe, notes, formatter=fmt_seconds, what=what)
            c_tot = agg_cell(tot, notes, formatter=fmt_seconds, what=what)
            ratio = spe.mean / base.mean if spe.mean is not None and base.mean is not None and base.mean > 0 else None
            c_ratio = Cell(f"{ratio:.2f}×" if ratio is not None else MISSING, ratio)
            if ratio is None and spe.n:
                c_ratio.marks.append(
                    notes.mark(
                        f"no uniform run with a trace on {dataset_label(d)} with {backbone_text(b, texts)}: no ratio"
                    )
                )
            target = targets[(d, b)]
            reach = [time_to_target(r, target) if target is not None and r.has_trace else None for r in members]
            have_trace = [r for r in members if r.has_trace]
            reached = [x for x in reach if x is not None]
            t_agg = Aggregate([x[0] for x in reached], [r.seed for r, x in zip(members, reach, strict=True) if x], [])
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
                    c_time.marks.append(
                        notes.mark(
                            f"reached by {len(reached)} of {len(have_trace)} seeds; mean over those that reached it"
                        )
                    )
            rows.append(
                [
                    Cell(dataset_label(d) if first and d != prev_d else ""),
                    Cell(backbone_text(b, texts) if first else ""),
                    Cell(variant_label(v)),
                    c_spe,
                    c_ratio,
                    c_tot,
                    Cell(fmt(target) if first else ""),
                    c_time,
                    c_ep,
                ]
            )
            if first:
                prev_d = d
            first = False
            tidy.append(
                {
                    "dataset": d,
                    **backbone_fields(b, texts),
                    "variant": v,
                    "sec_per_epoch_median_mean": spe.mean,
                    "sec_per_epoch_std": spe.std,
                    "ratio_vs_uniform": ratio,
                    "train_seconds_mean": tot.mean,
                    "train_seconds_std": tot.std,
                    "target_valid_mrr": target,
                    "target_source": target_src[(d, b)],
                    "time_to_target_mean": t_agg.mean,
                    "time_to_target_std": t_agg.std,
                    "epochs_to_target_mean": e_agg.mean,
                    "n_reached": len(reached),
                    "n_with_trace": len(have_trace),
                    "n": spe.n,
                    "n_expected": spe.expected,
                    "missing": " ".join(str(r.path) for r in members if not r.has_trace),
                }
            )
    srcs = sorted(set(target_src.values()))
    intervals = sorted({int(r.param("train.eval_every")) for r in runs if r.param("train.eval_every")})
    every = (
        f"; validation every {', '.join(map(str, intervals))} epochs, so times are resolved to that grid"
        if intervals
        else ""
    )
    title = ctx.title or "Training cost per sampler"
    per_bb = " of the same backbone" if len(keys) > 1 else ""
    caption = (
        f"{title}. {backbone_caption(keys, texts)}. s/epoch: median training seconds per epoch of each run "
        f"(validation excluded), then mean ± sample std over seeds; ×uniform: ratio of mean s/epoch to the "
        f"uniform sampler's{per_bb}; train time: total training seconds; time/epochs to target: first "
        f"validation at or above the target validation MRR (per dataset and backbone; target = "
        f"{'; '.join(srcs) or 'none'}{every}), 'not reached' when no run reached it. "
        f"Same hardware assumed for all runs; compare only within one machine."
    )
    columns = [
        "Dataset",
        "Backbone",
        "Sampler",
        "s/epoch",
        "×uniform",
        "Train time (s)",
        "Target MRR",
        "Time to target (s)",
        "Epochs to target",
    ]
    table = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        notes=notes,
        midrules=midrules,
        label="tab:efficiency",
        align="lllrrrrrr",
    )
    summary: dict[str | None, Any] = {}
    for d in datasets:
        mine = [(b, targets[(d, b)], target_src[(d, b)]) for dd, b in blocks if dd == d]
        one = mine[0] if len(mine) == 1 else None
        summary[d] = {
            "valid_mrr": one[1] if one else None,
            "source": one[2] if one else "per backbone",
            "backbones": {backbone_text(b, texts): {"valid_mrr": t, "source": src} for b, t, src in mine},
        }
    ctx.notes["targets"] = summary
    return write_table(table, ctx.out, pd.DataFrame(tidy))


# ----------------------------------------------------------------------------------------
# band hardness at the end of training (trace columns of the diffusion samplers)
# ----------------------------------------------------------------------------------------
HARDNESS_STATS = (("quantile", "quantile"), ("active", "active"), ("outscore", "P(outscore)"))
# trace columns of the probe's yardsticks on the same rows (entity quantile of the true answer and of the hardest
# entity that is no known answer), written since the probe had them
HARDNESS_YARDSTICKS = (("answer_quantile", "answer"), ("hardest_non_answer_quantile", "hardest non-answer"))


def final_band_value(r: RunRecord, column: str) -> float | None:
    """``column`` at the run's last validation that measured it (NaN rows skipped); None if never."""
    vals = _col(r.trace, column)
    return vals[-1] if vals else None


def band_numbers(r: RunRecord) -> list[int]:
    """Band indices k with ``band{k}_quantile`` in the run's trace (written when diagnostics.triples > 0)."""
    if r.trace is None:
        return []
    return sorted(int(c[4:-9]) for c in r.trace.columns if c.startswith("band") and c.endswith("_quantile"))


@register(
    "hardness",
    kind="table",
    experiments=("main", "ablation"),
    help="per band at the last validation: entity quantile, share active, P(outscore), against the hardness targets",
)
def build_hardness(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    runs = [r for r in ctx.runs if band_numbers(r)]
    notes = Notes()
    datasets = order_datasets(r.dataset for r in runs)
    cells = group(runs, "dataset", "backbone_key", "variant")
    keys, texts = backbone_keys(runs), backbone_texts(runs)
    variants = order_variants(r.variant for r in runs)
    nb = max((len(band_numbers(r)) for r in runs), default=0)
    # traces written before the probe measured the yardsticks have none: no such column then, not a column of gaps
    yardsticks = [y for y in HARDNESS_YARDSTICKS if any(final_band_value(r, y[0]) is not None for r in runs)]
    rows: list[list[Cell]] = []
    midrules: set[int] = set()
    tidy = []
    for d in datasets:
        first_d = True
        for b in keys:
            for v in variants:
                members = cells.get((d, b, v))
                if not members:
                    continue
                if first_d:
                    midrules.add(len(rows))
                row = [Cell(dataset_label(d) if first_d else ""), Cell(backbone_text(b, texts)), Cell(variant_label(v))]
                entry: dict[str, Any] = {"dataset": d, **backbone_fields(b, texts), "variant": v, "n": len(members)}
                for stat, _ in HARDNESS_STATS:
                    for k in range(1, nb + 1):
                        agg = aggregate(members, lambda r, c=f"band{k}_{stat}": final_band_value(r, c))
                        row.append(agg_cell(agg, notes, what=f"band {k} {stat}"))
                        entry[f"band{k}_{stat}_mean"], entry[f"band{k}_{stat}_std"] = agg.mean, agg.std
                for column, what in yardsticks:
                    agg = aggregate(members, lambda r, c=column: final_band_value(r, c))
                    row.append(agg_cell(agg, notes, what=f"{what} quantile"))
                    entry[f"{column}_mean"], entry[f"{column}_std"] = agg.mean, agg.std
                rows.append(row)
                tidy.append(entry)
                first_d = False
    columns = (
        ["Dataset", "Backbone", "Variant"]
        + [f"B{k}" for _ in HARDNESS_STATS for k in range(1, nb + 1)]
        + [what for _, what in yardsticks]
    )
    groups = (
        [("", 3)]
        + [(label, nb) for _, label in HARDNESS_STATS]
        + ([("quantile of", len(yardsticks))] if yardsticks else [])
    )
    caption = (
        (ctx.title or "Band hardness at the end of training") + ". Per band (1 = easiest), measured by the "
        "trainer's probe at the run's last validation on a fixed seeded sample of train triples "
        "(diagnostics.triples): quantile = share of entities the band's negative outscores (mean over rows); "
        "active = share of negatives inside their band margin (they still give a gradient); P(outscore) = "
        "share that outscore the true answer. Yardsticks on the same rows: the quantile of the true answer and "
        "of the hardest entity that is no known answer (train+valid+test): a band above the latter outscores "
        "every real negative. Mean ± sample std over seeds. Targets: quantile "
        "strictly increasing over bands, band 4 quantile >= 0.95 and band 4 active >= 0.10."
    )
    table = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        notes=notes,
        midrules=midrules,
        groups=groups,
        label="tab:hardness",
        align="lll" + "r" * (len(columns) - 3),
    )
    return write_table(table, ctx.out, pd.DataFrame(tidy))
