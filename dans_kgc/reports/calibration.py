"""The ``calibration`` reports: each backbone, trained with its standard recipe, beside its
published row on the same splits (``dans_kgc/published_baselines.yaml``).

``calibration`` (table): rows (dataset, recipe); published MRR / Hits@1 / Hits@10 (or "—"
where no published row exists on these splits), ours as mean ± std over seeds, Δ MRR = ours −
published, the budget (epochs run, training seconds) and whether the validation curve was
still rising at the end. ``calibration_curves`` (figure): validation MRR per epoch, one panel
per dataset, the published test MRR as a dashed line in the backbone's colour.

A calibration run is ``tags.experiment = calibration`` with ``tags.variant`` = the recipe
(``rotate_nssa``, ``complex_n3_1n``, ...). Nothing is filled in: a missing run, trace or
published number is a missing cell with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dans_kgc import baselines
from dans_kgc.reports.figures import _first_col, _grid, _legend, _panel_title, empty_figure, save, setup
from dans_kgc.reports.labels import (
    BACKBONE_ORDER,
    MODE_SHORT,
    RECIPE_LABEL,
    TABLE_METRICS,
    backbone_label,
    dataset_label,
    mode_label,
    recipe_label,
    variant_label,
)
from dans_kgc.reports.paper import (
    _signed,
    fmt_published,
    order_backbones_rank,
    order_datasets_rank,
    order_variants_rank,
)
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import MISSING, Cell, Notes, Table, agg_cell, fmt_seconds, write_table
from dans_kgc.reports.runs import Aggregate, RunRecord, aggregate, group, metric_aggregate
from dans_kgc.reports.tables import (
    ANCHOR_KEY,
    BackboneKey,
    backbone_text,
    backbone_texts,
    evaluation_caption,
    total_train_seconds,
)

if TYPE_CHECKING:  # matplotlib itself is imported when a figure is drawn
    from matplotlib.artist import Artist

NO_ROW = "no published row on these splits"
SHORT = {"mrr": "MRR", "hits@1": "H@1", "hits@10": "H@10"}


# ----------------------------------------------------------------------------------------
# per-run facts
# ----------------------------------------------------------------------------------------
def validation_curve(r: RunRecord):
    """(epochs, valid MRRs) of the validated epochs, sorted, one row per epoch (a resumed run
    may repeat epochs: the last row wins); None without a trace or a valid_mrr column."""
    t = r.trace
    if t is None or "valid_mrr" not in t or "epoch" not in t:
        return None
    v = t.dropna(subset=["valid_mrr"]).drop_duplicates("epoch", keep="last").sort_values("epoch")
    return [int(e) for e in v["epoch"]], [float(x) for x in v["valid_mrr"]]


def curve_state(r: RunRecord) -> dict[str, Any] | None:
    """``rising`` when the best validation MRR is at the last validated epoch (a tie with an
    earlier epoch counts as ``flat``: the first epoch reaching the best is the best epoch);
    ``flat`` otherwise; None with fewer than two validations (nothing to tell)."""
    curve = validation_curve(r)
    if curve is None or len(curve[0]) < 2:
        return None
    epochs, vals = curve
    best_i = max(range(len(vals)), key=lambda i: (vals[i], -i))  # first occurrence of the maximum
    return {
        "state": "rising" if best_i == len(vals) - 1 else "flat",
        "best_epoch": epochs[best_i],
        "last_epoch": epochs[-1],
        "best": vals[best_i],
        "last": vals[-1],
    }


def epochs_run(r: RunRecord) -> float | None:
    v = r.summary.get("epochs_run")
    if v is not None:
        return float(v)
    t = r.trace
    if t is not None and "epoch" in t and len(t):
        return float(t["epoch"].max())
    return None


# ----------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------
def _row_keys(runs: Sequence[RunRecord]) -> list[tuple]:
    keys = {(r.dataset, r.backbone_key, r.variant) for r in runs}
    return sorted(
        keys, key=lambda k: (order_datasets_rank(k[0]), order_backbones_rank(k[1]), order_variants_rank(k[2]))
    )


def _published(bb: BackboneKey, ds: str | None, path: str | None) -> dict[str, Any] | None:
    return baselines.published_row(bb[0], ds, path=path) if bb[0] and ds else None


def _curve_cell(members: Sequence[RunRecord], notes: Notes) -> tuple[Cell, list[dict | None]]:
    states = [curve_state(r) for r in members]
    known = [s for s in states if s is not None]
    rising = sum(s["state"] == "rising" for s in known)
    if not known:
        cell = Cell(MISSING)
        cell.marks.append(notes.mark("no validation curve: trace.csv missing or fewer than two validations"))
    elif rising == len(known):
        cell = Cell("rising")
    elif rising == 0:
        cell = Cell("flat")
    else:
        cell = Cell(f"rising ({rising} of {len(known)})")
    if known and len(known) < len(members):
        cell.marks.append(
            notes.mark(
                f"curve of {len(known)} of {len(members)} seeds (the others have no trace or "
                "fewer than two validations)"
            )
        )
    return cell, states


@register(
    "calibration",
    kind="table",
    experiments=("calibration",),
    help="each backbone with its standard recipe vs its published row: MRR / Hits@1 / Hits@10, Δ, budget",
    options={
        "digits": "decimals",
        "baselines": "published-baselines YAML (default: the package's)",
        "expected_seeds": "mark rows with fewer seeds than this",
    },
)
def build_calibration(ctx: ReportContext) -> list[Path]:
    """Options: ``digits`` (3), ``baselines`` (another published-baselines YAML),
    ``expected_seeds`` (mark rows with fewer seeds than that)."""
    import pandas as pd

    digits = int(ctx.option("digits", 3))
    src_path = ctx.option("baselines")
    src_path = str(src_path) if src_path else None
    expected_seeds = ctx.option("expected_seeds")
    expected_seeds = int(expected_seeds) if expected_seeds is not None else None
    pub_protocol = baselines.protocol(src_path)
    metrics = list(TABLE_METRICS)
    runs = ctx.runs
    cells = group(runs, "dataset", "backbone_key", "variant")
    notes = Notes()
    rows: list[list[Cell]] = []
    midrules: set[int] = set()
    tidy: list[dict[str, Any]] = []
    all_aggs: list[Aggregate] = []
    prev_ds: Any = object()
    for ds, bb, var in _row_keys(runs):
        members = cells.get((ds, bb, var), [])
        display = next((r.backbone_display for r in members if r.backbone_display), None)
        base = backbone_label(bb[0], None, display)
        who = f"{recipe_label(var)} ({base}, {dataset_label(ds)})"
        if ds != prev_ds:
            midrules.add(len(rows))
        row = [
            Cell(dataset_label(ds)),
            Cell(recipe_label(var)),
            Cell(base),
            Cell(MODE_SHORT.get(bb[1] or "", bb[1] or MISSING)),
        ]
        prev_ds = ds
        # published
        pub = _published(bb, ds, src_path)
        if pub:
            mark = notes.mark(f"published: {pub['source']}" + (f" ({pub['note']})" if pub.get("note") else ""))
            for m in metrics:
                c = Cell(fmt_published(pub[m], digits) if pub.get(m) is not None else MISSING)
                c.marks.append(mark)
                row.append(c)
        else:
            reason = baselines.no_row_reason(bb[0], path=src_path) if bb[0] else None
            if bb[0] is None:
                reason = "backbone unknown (no run wrote it)"
            elif reason is None and baselines.calibration_source(bb[0], path=src_path):
                reason = f"{base} has published rows, none for {dataset_label(ds)}"
            mark = notes.mark(NO_ROW + (f" ({reason})" if reason else ""))
            for _ in metrics:
                c = Cell(MISSING)
                c.marks.append(mark)
                row.append(c)
        # ours
        aggs = {m: metric_aggregate(members, m) for m in metrics}
        all_aggs.extend(aggs.values())
        for m in metrics:
            row.append(agg_cell(aggs[m], notes, digits, what=f"test metrics for {who}"))
        a = aggs["mrr"]
        n_cell = Cell(str(a.n) if a.n == a.expected else f"{a.n} of {a.expected}", float(a.n))
        want = max(a.expected, expected_seeds or 0)
        if expected_seeds is not None and a.expected < expected_seeds:
            n_cell.text = f"{a.n} of {expected_seeds}"
            n_cell.marks.append(
                notes.mark(f"fewer seeds than expected ({expected_seeds} per row); run folders given for {a.expected}")
            )
        row.append(n_cell)
        # difference
        deltas = {
            m: (aggs[m].mean - pub[m]) if (pub and pub.get(m) is not None and aggs[m].n) else None for m in metrics
        }
        c_d = Cell(_signed(deltas["mrr"], digits) if deltas["mrr"] is not None else MISSING, deltas["mrr"])
        protos = {r.protocol for r in members if r.has_metrics}
        row_protocol = (pub or {}).get("protocol") or pub_protocol
        if deltas["mrr"] is not None and row_protocol and protos and protos != {row_protocol}:
            c_d.marks.append(
                notes.mark(
                    f"our protocol ({', '.join(sorted(map(str, protos)))}) differs from the "
                    f"published one ({row_protocol}): not directly comparable"
                )
            )
        row.append(c_d)
        # budget
        ep = aggregate(members, epochs_run)
        secs = aggregate(members, total_train_seconds)
        c_ep = Cell(
            MISSING if ep.mean is None else (f"{ep.mean:.0f}" if ep.mean == int(ep.mean) else f"{ep.mean:.1f}"), ep.mean
        )
        if not ep.n:
            c_ep.marks.append(notes.mark(f"no run.json summary or trace for {who}"))
        c_s = Cell(fmt_seconds(secs.mean) if secs.n else MISSING, secs.mean)
        if not secs.n:
            c_s.marks.append(notes.mark(f"no run.json summary or trace for {who}"))
        c_curve, states = _curve_cell(members, notes)
        row += [c_ep, c_s, c_curve]
        rows.append(row)
        run_sources = sorted({r.calibration_source for r in members if r.calibration_source})
        tidy.append(
            {
                "dataset": ds,
                "variant": var,
                "recipe_label": recipe_label(var),
                "backbone": bb[0],
                "mode": bb[1],
                "backbone_recipe": bb[2],
                "backbone_label": base,
                **{f"published_{m}": (pub or {}).get(m) for m in metrics},
                "published_source": pub["source"] if pub else None,
                "published_table": pub["table"] if pub else None,
                **{
                    k: v for m in metrics for k, v in ((f"ours_{m}_mean", aggs[m].mean), (f"ours_{m}_std", aggs[m].std))
                },
                "n": a.n,
                "n_expected": want,
                "seeds": " ".join(str(s) for s in a.seeds),
                "values_mrr": " ".join(repr(v) for v in a.values),
                **{f"delta_{m}": deltas[m] for m in metrics},
                "epochs_run_mean": ep.mean,
                "train_seconds_mean": secs.mean,
                "train_seconds_std": secs.std,
                "curve": c_curve.text if c_curve.text != MISSING else None,
                "n_rising": sum(1 for s in states if s and s["state"] == "rising"),
                "n_curves": sum(1 for s in states if s),
                "curve_runs": " ".join(
                    f"seed{r.seed}:{s['state']}@{s['best_epoch']}/{s['last_epoch']}"
                    for r, s in zip(members, states, strict=True)
                    if s
                ),
                "anchor_outscores_answer_mean": aggregate(members, lambda r: r.diagnostic(ANCHOR_KEY)).mean,
                "mrr_anchor_removed_mean": aggregate(members, lambda r: r.diagnostic("mrr_anchor_removed")).mean,
                "protocol": " ".join(sorted(map(str, protos))) or None,
                "run_calibration_source": " | ".join(run_sources) or None,
                "status": (
                    "compared"
                    if deltas["mrr"] is not None
                    else ("missing ours" if pub else ("no published row" if a.n else "missing ours, no published row"))
                ),
                "missing": " ".join(str(r.path) for r in a.missing),
            }
        )
    title = ctx.title or "Backbone calibration against published rows"
    modes = sorted({bb[1] for _d, bb, _v in _row_keys(runs) if bb[1] in MODE_SHORT}, key=list(MODE_SHORT).index)
    mode_text = "; ".join(f"{MODE_SHORT[m]} = {mode_label(m)}" for m in modes)
    seeds_text = f" Expected {expected_seeds} seeds per row." if expected_seeds is not None else ""
    caption = (
        f"{title}. Each backbone trained with its standard recipe beside its published row on the same "
        f"splits. Published: {baselines.description(src_path)} Sources in the notes; '—': {NO_ROW} "
        f"(never filled in). Δ MRR = ours − published. Ours: {evaluation_caption(runs, all_aggs)}."
        f"{seeds_text} Mode: {mode_text or 'unknown'}. Budget: epochs run and total training seconds "
        f"(validation excluded), mean over seeds; valid. curve: 'rising' when a run's best validation MRR "
        f"is at its last validation (the budget may be too short), 'flat' otherwise."
    )
    columns = (
        ["Dataset", "Recipe", "Backbone", "Mode"]
        + [SHORT[m] for m in metrics]
        + [SHORT[m] for m in metrics]
        + ["n", "Δ MRR", "Epochs", "Train (s)", "Valid. curve"]
    )
    groups = [("", 4), ("Published", len(metrics)), ("Ours", len(metrics) + 1), ("", 1), ("Budget", 3)]
    table = Table(
        caption=caption,
        columns=columns,
        rows=rows,
        groups=groups,
        notes=notes,
        midrules=midrules,
        label="tab:calibration",
        align="llll" + "r" * (len(columns) - 5) + "l",
    )
    if not rows:
        ctx.warn("calibration: no calibration runs given (tags.experiment = calibration)")
    ctx.notes["published_baselines"] = {"path": baselines.load(src_path)["_path"], "protocol": pub_protocol}
    ctx.notes["rows"] = len(rows)
    return write_table(table, ctx.out, pd.DataFrame(tidy, columns=list(tidy[0]) if tidy else ["dataset", "variant"]))


# ----------------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------------
# colour-blind palette index per backbone (fixed, so a backbone has one colour in every figure)
_BACKBONE_COLOUR = {
    "transe": 9,
    "distmult": 5,
    "complex": 4,
    "rotate": 3,
    "quate": 0,
    "conve": 2,
    "redgnn": 6,
    "adaprop": 1,
    "nbfnet": 8,
}
_BACKBONE_MARKER = {"transe": "o", "distmult": "v", "complex": "D", "rotate": "s", "quate": "^", "conve": "P"}
_RECIPE_LINESTYLES = ["-", "-.", ":"]  # a backbone's recipes differ by line style; "--" is the published line
PUBLISHED_STYLE: dict[str, Any] = {"linestyle": (0, (5, 3)), "linewidth": 1.8}


def backbone_colour(name: str | None):
    import seaborn as sns

    palette = sns.color_palette("colorblind", 10)
    if name in _BACKBONE_COLOUR:
        return palette[_BACKBONE_COLOUR[name]]
    free = [i for i in range(10) if i not in _BACKBONE_COLOUR.values()]  # grey (7) is left to the legend
    i = BACKBONE_ORDER.index(name) if name in BACKBONE_ORDER else sum(map(ord, name or "?"))
    return palette[free[i % len(free)]]


def _seed_band(members: Sequence[RunRecord]):
    """Per validated epoch: mean, min and max valid MRR over seeds, and how many seeds."""
    import pandas as pd

    frames = []
    for r in members:
        c = validation_curve(r)
        if c and c[0]:
            frames.append(pd.DataFrame({"epoch": c[0], "valid_mrr": c[1]}))
    if not frames:
        return None
    g = pd.concat(frames).groupby("epoch")["valid_mrr"]
    return pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max(), "n": g.count()}).reset_index()


def _label_published(ax: Any, pubs: dict[str, float], gap: float = 0.06) -> None:
    """The value of each published line just right of the panel, in the backbone's colour,
    nudged apart so that close values (0.912 / 0.921) stay readable."""
    ax.margins(y=0.08)
    ax.autoscale_view()
    lo, hi = ax.get_ylim()
    span = (hi - lo) or 1.0
    placed: list[float] = []
    for v in sorted(pubs.values()):
        y = (v - lo) / span
        if placed and y < placed[-1] + gap:
            y = placed[-1] + gap
        placed.append(y)
    top = placed[-1] if placed else 0.0
    if top > 1.0:  # shift the stack down so it stays beside the panel
        placed = [y - (top - 1.0) for y in placed]
    for (name, v), y in zip(sorted(pubs.items(), key=lambda kv: kv[1]), placed, strict=True):
        ax.annotate(
            f"{v:.3f}",
            xy=(1.0, (v - lo) / span),
            xycoords="axes fraction",
            xytext=(1.015, y),
            textcoords="axes fraction",
            va="center",
            ha="left",
            fontsize=10,
            color=backbone_colour(name),
            fontweight="bold",
            annotation_clip=False,
        )


def _series_label(bb: BackboneKey, var: str | None, texts: dict) -> str:
    if var in RECIPE_LABEL:
        return recipe_label(var)
    return f"{backbone_text(bb, texts)}: {variant_label(var)}"


@register(
    "calibration_curves",
    kind="figure",
    experiments=("calibration",),
    help="validation MRR vs epoch per backbone recipe, one panel per dataset, published MRR dashed",
    options={"baselines": "published-baselines YAML (default: the package's)"},
)
def build_calibration_curves(ctx: ReportContext) -> list[Path]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    src_path = ctx.option("baselines")
    src_path = str(src_path) if src_path else None
    runs = ctx.runs
    if not any(validation_curve(r) and validation_curve(r)[0] for r in runs):
        return empty_figure(ctx, "calibration_curves: none of the given runs has a trace.csv with validation MRR")
    plt = setup()
    texts = backbone_texts(runs)
    keys = _row_keys(runs)
    datasets = sorted({k[0] for k in keys}, key=order_datasets_rank)
    series = sorted({(k[1], k[2]) for k in keys}, key=lambda s: (order_backbones_rank(s[0]), order_variants_rank(s[1])))
    style: dict[tuple, dict[str, Any]] = {}
    per_backbone: dict[Any, int] = {}
    for bb, var in series:
        i = per_backbone.get(bb[0], 0)
        per_backbone[bb[0]] = i + 1
        style[(bb, var)] = {
            "color": backbone_colour(bb[0]),
            "linestyle": _RECIPE_LINESTYLES[i % len(_RECIPE_LINESTYLES)],
            "marker": _BACKBONE_MARKER.get(bb[0] or "", "X"),
        }
    cells = group(runs, "dataset", "backbone_key", "variant")
    fig, axes = _grid(plt, len(datasets), 1, ctx.title)
    drawn: set[tuple] = set()
    published_drawn: dict[str, dict[str, float]] = {}
    any_pub = False
    for i, ds in enumerate(datasets):
        ax = axes[i][0]
        missing = sum(1 for r in runs if r.dataset == ds and not (validation_curve(r) and validation_curve(r)[0]))
        ax.set_title(_panel_title(ds, missing), fontsize=14)
        pubs_here: dict[Any, float] = {}
        for bb, var in series:
            members = cells.get((ds, bb, var), [])
            if not members:
                continue
            st = style[(bb, var)]
            band = _seed_band(members)
            if band is not None and not band.empty:
                every = max(1, len(band) // 8)
                ax.fill_between(band["epoch"], band["min"], band["max"], color=st["color"], alpha=0.18, linewidth=0)
                ax.plot(
                    band["epoch"],
                    band["mean"],
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"],
                    markevery=every,
                    zorder=3,
                )
                drawn.add((bb, var))
            pub = baselines.published_row(bb[0], ds, path=src_path) if bb[0] and ds else None
            if pub and pub.get("mrr") is not None and bb[0] not in pubs_here:
                pubs_here[bb[0]] = pub["mrr"]
        for name, v in pubs_here.items():
            ax.axhline(v, color=backbone_colour(name), zorder=2, **PUBLISHED_STYLE)
            published_drawn.setdefault(str(ds), {})[name] = v
            any_pub = True
        if pubs_here:
            _label_published(ax, pubs_here)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Validation MRR" if _first_col(ax) else "")
    handles: list[Artist] = []
    labels: list[str] = []
    for bb, var in series:
        if (bb, var) in drawn:
            st = style[(bb, var)]
            handles.append(Line2D([], [], color=st["color"], linestyle=st["linestyle"], marker=st["marker"]))
            labels.append(_series_label(bb, var, texts))
    handles.append(Patch(color="0.55", alpha=0.3))
    labels.append("min–max over seeds (line: mean)")
    if any_pub:
        handles.append(Line2D([], [], color="0.3", **PUBLISHED_STYLE))
        labels.append("published test MRR\n(dashed, backbone's colour)")
    _legend(fig, handles, labels, ncol=min(len(labels), 3 if len(datasets) > 1 else 1))
    ctx.notes["published_lines"] = published_drawn
    return save(fig, ctx)
