"""Figure reports: ``sensitivity`` (paper Figure 2), ``curves`` (validation MRR over epochs and
training time) and ``bands`` (the curriculum's band weights as the runs applied them). When the
runs use several backbones, each (backbone, sampler) pair is its own line (backbone = line
style) or panel row; with one backbone the figures are as before.

Every figure is written as ``<out>.png`` (300 dpi) and ``<out>.pdf`` with a print-friendly style:
large fonts, labelled axes with units, a colour-blind-safe palette plus distinct markers and
line styles (readable in greyscale), legends outside the plotting area.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dans_kgc.reports.labels import (
    METRIC_LABEL,
    PARAM_LABEL,
    VARIANT_ORDER,
    backbone_rank,
    dataset_label,
    order_datasets,
    order_variants,
    param_label,
    variant_label,
)
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.runs import RunRecord, group
from dans_kgc.reports.tables import backbone_keys, backbone_text, backbone_texts

if TYPE_CHECKING:  # matplotlib itself is imported when a figure is drawn
    from matplotlib.artist import Artist
    from matplotlib.typing import LineStyleType

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]
LINESTYLES: list[LineStyleType] = ["-", "--", "-.", ":"]
DPI = 300
PANEL_W, PANEL_H = 4.6, 3.5

# config keys never treated as a swept parameter
_NOT_PARAMS = (
    "seed",
    "threads",
    "device",
    "data.",
    "train.eval_every",
    "train.checkpoint_every",
    "train.eval_batch_size",
    "train.max_seconds",
    "diffusion.band_steps",
)


# ----------------------------------------------------------------------------------------
# style
# ----------------------------------------------------------------------------------------
def setup() -> Any:
    """Headless matplotlib with the report style; returns pyplot."""
    import logging

    import matplotlib

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting is chatty at INFO
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.45)
    matplotlib.rcParams.update(
        {
            "savefig.dpi": DPI,
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "axes.titleweight": "bold",
            "lines.linewidth": 2.2,
            "lines.markersize": 7,
            "legend.frameon": False,
            "axes.edgecolor": "0.3",
            "grid.color": "0.88",
            "svg.hashsalt": "dans-kgc",
        }
    )
    return plt


# colour-blind palette index per known variant (DANS-KGC gets the strong vermillion everywhere)
_COLOUR_INDEX = {
    "uniform": 0,
    "bernoulli": 1,
    "self_adversarial": 2,
    "dans": 3,
    "nscaching": 4,
    "dhns": 5,
    "full": 3,
    "wo_dam": 0,
    "wo_ccd": 2,
    "wo_dtm": 7,
    "reversed": 4,
}


def style_for(variant: str | None, others: Sequence[str | None] = ()) -> dict[str, Any]:
    """Fixed colour / marker / line style per variant, so a sampler looks the same in every figure."""
    import seaborn as sns

    palette = sns.color_palette("colorblind", 10)
    if variant in VARIANT_ORDER:
        i = VARIANT_ORDER.index(variant)
        c = _COLOUR_INDEX.get(variant, i)
    else:
        extra = [v for v in others if v not in VARIANT_ORDER]
        i = len(VARIANT_ORDER) + (extra.index(variant) if variant in extra else 0)
        c = (6 + i) % 10
    return {"color": palette[c % 10], "marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def save(fig: Any, ctx: ReportContext) -> list[Path]:
    import matplotlib.pyplot as plt

    png, pdf = ctx.path(".png"), ctx.path(".pdf")
    fig.savefig(png, dpi=DPI, bbox_inches="tight", metadata={"Software": "dans-kgc report"})
    fig.savefig(pdf, bbox_inches="tight", metadata={"Creator": "dans-kgc report", "CreationDate": None})
    plt.close(fig)
    return [png, pdf]


def empty_figure(ctx: ReportContext, message: str) -> list[Path]:
    """A figure that says why there is nothing to plot (a report never crashes the DAG)."""
    plt = setup()
    ctx.warn(message)
    fig, ax = plt.subplots(figsize=(6.5, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=13)
    return save(fig, ctx)


def _panel_title(ds: str | None, missing: int) -> str:
    return dataset_label(ds) + (f"  ({missing} run{'s' if missing != 1 else ''} missing)" if missing else "")


def _no_runs(ax: Any, text: str = "no runs") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=13)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(plt: Any, nrows: int, ncols: int, title: str | None):
    """A logical ``nrows x ncols`` grid of panels (rows: parameter / variant, columns: dataset).
    With a single column the panels are laid side by side instead (at most 3 per row), so a
    one-dataset figure is not a tall strip. Returns (fig, axes) with ``axes[i][j]``."""
    wrap = ncols == 1 and nrows > 1
    prow, pcol = (math.ceil(nrows / 3), min(nrows, 3)) if wrap else (nrows, ncols)
    fig, phys = plt.subplots(
        prow, pcol, figsize=(PANEL_W * pcol + 0.4, PANEL_H * prow + 0.6), squeeze=False, layout="constrained"
    )
    flat = [ax for row in phys for ax in row]
    if wrap:
        axes = [[flat[i]] for i in range(nrows)]
        for ax in flat[nrows:]:
            ax.set_visible(False)
    else:
        axes = [list(row) for row in phys]
    if title:
        fig.suptitle(title, fontsize=17, fontweight="bold")
    return fig, axes


def _first_col(ax: Any) -> bool:
    return ax.get_subplotspec().is_first_col()


def _legend(fig: Any, handles: list, labels: list, ncol: int | None = None) -> None:
    """One legend for the figure, outside every panel (below; right of a lone panel)."""
    if not handles:
        return
    if sum(ax.get_visible() for ax in fig.axes) == 1:
        w, h = fig.get_size_inches()
        visible = [re.sub(r"\\[a-zA-Z]+|[${}_^\\,]", "", line) for label in labels for line in str(label).splitlines()]
        fig.set_size_inches(w + 0.9 + 0.09 * max(map(len, visible)), h)  # room for the legend beside the panel
        fig.legend(handles, labels, loc="outside right center", ncol=1, handlelength=2.8)
    else:
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=ncol or min(len(labels), 5),
            handlelength=2.8,
            columnspacing=1.6,
        )


# ----------------------------------------------------------------------------------------
# sensitivity
# ----------------------------------------------------------------------------------------
def _flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    steps = (cfg.get("diffusion") or {}).get("band_steps") if not prefix else None
    if isinstance(steps, list):
        out["K_b"] = float(len(steps))
    return out


def swept_parameters(runs: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Numeric config keys that vary within an experiment (per dataset), with the runs that sweep them."""
    out: dict[str, list[RunRecord]] = {}
    # per backbone too: crossed presets sweep one key on several backbones, whose configs differ in model.*
    for (_exp, _ds, _bb), members in group(
        [r for r in runs if r.config], "experiment", "dataset", "backbone_key"
    ).items():
        flat = [_flatten(r.config) for r in members]
        # keys every run has (configs written by different package versions may differ in keys)
        keys = set.intersection(*(set(f) for f in flat)) if flat else set()
        varying = sorted(k for k in keys if not k.startswith(_NOT_PARAMS) and len({f.get(k) for f in flat}) > 1)
        if len(varying) > 1:
            exp = str(_exp or "")
            named = [k for k in varying if exp.split("_", 1)[-1] and k.split(".")[-1] == exp.split("_", 1)[-1]]
            varying = named or varying
        if len(varying) == 1:
            out.setdefault(varying[0], []).extend(members)
            continue
        if not varying:
            continue
        # one-at-a-time sweeps sharing an experiment (the DAG's `sensitivity`: mu0.5, eta0.3, ...):
        # a run belongs to key k's sweep when every other swept key sits at its base value
        base = {k: _base_value(k, [f.get(k) for f in flat]) for k in varying}
        for k in varying:
            out.setdefault(k, []).extend(
                r for r, f in zip(members, flat, strict=True) if all(f.get(o) == base[o] for o in varying if o != k)
            )
    known = [k for k in PARAM_LABEL if k in out]
    return {k: out[k] for k in known + sorted(k for k in out if k not in PARAM_LABEL)}


def _base_value(key: str, values: Sequence[Any]) -> Any:
    """The value a one-at-a-time sweep holds ``key`` at: the package default when some run has
    it, else the most common value."""
    default = _default_value(key)
    if default is not None and default in values:
        return default
    return Counter(values).most_common(1)[0][0]


def _default_value(key: str) -> float | None:
    from dans_kgc.config import load_config

    try:
        node: Any = load_config([], [])
    except Exception:  # noqa: BLE001 - the default marker is decoration only
        return None
    if key == "K_b":
        return float(len(node["diffusion"]["band_steps"]))
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def sweep_points(runs: Sequence[RunRecord], key: str, metric: str = "mrr") -> dict[float, list[float]]:
    """value of ``key`` -> the metric of each seed run there. The base point belongs to every
    one-at-a-time sweep (``mu1.0`` and ``eta0.5`` are the same config): each (value, seed) counts once."""
    pts: dict[float, list[float]] = {}
    seen: set[tuple[float, Any]] = set()
    for r in runs:
        value, param = r.value(metric), r.param(key)
        if value is None or param is None:
            continue
        x = float(param)
        if (x, r.seed) not in seen:
            seen.add((x, r.seed))
            pts.setdefault(x, []).append(value)
    return pts


def _series(run: RunRecord, by_sampler: bool) -> str:
    return str(run.sampler or run.variant or "?") if by_sampler else "all"


@register(
    "sensitivity",
    kind="figure",
    experiments=None,
    help="test MRR vs each swept hyper-parameter (mu, eta, ...), mean ± std over seeds (paper Figure 2)",
    options={
        "params": "comma-separated config keys to plot (default: every swept one), e.g. diffusion.mu",
        "metric": "the y axis: mrr (default), hits@1, hits@3 or hits@10",
    },
)
def build_sensitivity(ctx: ReportContext) -> list[Path]:
    """Rows: every numeric config value that varies within one experiment (per dataset); columns:
    datasets. Without --experiment, runs of experiments named ``sens*`` are used when there are
    any, otherwise every run. ``--option params=diffusion.mu,dans.eta`` picks rows,
    ``--option metric=hits@10`` the y axis."""
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    metric = ctx.option("metric", "mrr")
    params = ctx.option("params")
    runs = ctx.runs
    if ctx.option("experiments") is None and any(str(r.experiment).startswith("sens") for r in runs):
        runs = [r for r in runs if str(r.experiment).startswith("sens") or r.experiment is None]
        ctx.runs = runs  # the sidecar lists the others as ignored
        ctx.notes["experiment_rule"] = "experiments named sens* (none chosen with --experiment)"
    sweeps = swept_parameters(runs)
    if params:
        wanted = [p.strip() for p in str(params).split(",")]
        sweeps = {k: v for k, v in sweeps.items() if k in wanted}
    if not sweeps:
        return empty_figure(ctx, "sensitivity: no numeric config value varies within any experiment of the given runs")
    plt = setup()
    datasets = order_datasets(r.dataset for runs in sweeps.values() for r in runs)
    fig, axes = _grid(plt, len(sweeps), len(datasets), ctx.title)
    # one line per panel; per sampler only when runs of several samplers sweep the same key
    multi_sampler = len({r.sampler for runs in sweeps.values() for r in runs}) > 1
    series_all = order_variants({_series(r, multi_sampler) for runs in sweeps.values() for r in runs})
    # several backbones: one line per (sampler, backbone), the backbone told by the line style
    bkeys = backbone_keys([r for runs in sweeps.values() for r in runs])
    btexts = backbone_texts([r for runs in sweeps.values() for r in runs])
    multi_bb = len(bkeys) > 1

    def skey(r: RunRecord) -> tuple:
        return (_series(r, multi_sampler), r.backbone_key if multi_bb else None)

    ctx.notes["swept_parameters"] = {
        k: sorted({r.param(k) for r in v if r.param(k) is not None}) for k, v in sweeps.items()
    }
    for i, (key, runs) in enumerate(sweeps.items()):
        default = _default_value(key)
        for j, ds in enumerate(datasets):
            ax = axes[i][j]
            members = [r for r in runs if r.dataset == ds]
            missing = sum(1 for r in members if r.value(metric) is None)
            ax.set_title(_panel_title(ds, missing), fontsize=14)
            if not members:
                _no_runs(ax)
            panel_xs: set[float] = set()
            for group_name, bk in sorted(
                {skey(r) for r in members}, key=lambda s: (series_all.index(s[0]), backbone_rank(s[1]))
            ):
                st = style_for(group_name if multi_sampler else "dans", series_all)
                if multi_bb:
                    st["linestyle"] = LINESTYLES[bkeys.index(bk) % len(LINESTYLES)]
                pts = sweep_points([r for r in members if skey(r) == (group_name, bk)], key, metric)
                if not pts:
                    continue
                xs = sorted(pts)
                mean = np.array([np.mean(pts[x]) for x in xs])
                std = np.array([np.std(pts[x], ddof=1) if len(pts[x]) > 1 else 0.0 for x in xs])
                ax.fill_between(xs, mean - std, mean + std, color=st["color"], alpha=0.22, linewidth=0)
                sx = [x for x in xs for _ in pts[x]]
                sy = [y for x in xs for y in pts[x]]
                ax.scatter(sx, sy, s=14, color=st["color"], alpha=0.55, linewidths=0, zorder=3)
                ax.plot(
                    xs,
                    mean,
                    color=st["color"],
                    marker=st["marker"],
                    linestyle=st["linestyle"],
                    zorder=4,
                    label=variant_label(group_name),
                )
                panel_xs.update(xs)
                line = (variant_label(group_name) if multi_sampler else "all samplers") + (
                    f" on {backbone_text(bk, btexts)}" if multi_bb else ""
                )
                ctx.notes.setdefault("lines", {}).setdefault(key, {}).setdefault(str(ds), []).append(
                    {"line": line, "points": {f"{x:g}": len(pts[x]) for x in xs}}
                )
            if panel_xs:
                xs = sorted(panel_xs)
                if xs[0] > 0 and xs[-1] / xs[0] >= 20:
                    ax.set_xscale("log")
                ax.set_xticks(xs, [f"{x:g}" for x in xs])
                ax.minorticks_off()
            if default is not None and members:
                ax.axvline(default, color="0.35", linestyle=":", linewidth=1.6, zorder=1)
            ax.set_xlabel(param_label(key))
            if _first_col(ax):
                ax.set_ylabel(f"Test {METRIC_LABEL.get(metric, metric)}")
            ax.margins(x=0.06)
    handles: list[Artist] = []
    labels: list[str] = []
    for v in series_all:
        st = style_for(v if multi_sampler else "dans", series_all)
        handles.append(
            Line2D([], [], color=st["color"], marker=st["marker"], linestyle="-" if multi_bb else st["linestyle"])
        )
        labels.append(f"{variant_label(v)}: mean over seeds" if multi_sampler else "mean over seeds")
    if multi_bb:
        for i, bk in enumerate(bkeys):
            handles.append(Line2D([], [], color="0.3", linestyle=LINESTYLES[i % len(LINESTYLES)]))
            labels.append(backbone_text(bk, btexts))
    handles += [
        Patch(color="0.55", alpha=0.35),
        Line2D([], [], color="0.4", marker="o", linestyle="", markersize=4),
        Line2D([], [], color="0.35", linestyle=":", linewidth=1.6),
    ]
    labels += ["± 1 sample std", "single seed", "default setting"]
    width = len(axes[0]) if len(datasets) > 1 else min(len(sweeps), 3)  # panels per row
    _legend(fig, handles, labels, ncol=len(labels) if len(labels) <= 2 * width else math.ceil(len(labels) / 2))
    return save(fig, ctx)


# ----------------------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------------------
def _curve(members: Sequence[RunRecord]):
    """Mean / std of validation MRR per epoch over seeds, and mean training seconds at that epoch."""
    import pandas as pd

    frames = []
    for r in members:
        t = r.trace
        if t is None or "valid_mrr" not in t:
            continue
        t = t.dropna(subset=["valid_mrr"])
        cols = ["epoch", "valid_mrr"] + (["train_seconds"] if "train_seconds" in t else [])
        frames.append(t[cols].assign(run=str(r.path)))
    if not frames:
        return None
    df = pd.concat(frames)
    g = df.groupby("epoch")
    out = pd.DataFrame(
        {"mean": g["valid_mrr"].mean(), "std": g["valid_mrr"].std(ddof=1).fillna(0.0), "n": g["valid_mrr"].count()}
    )
    out["seconds"] = g["train_seconds"].mean() if "train_seconds" in df else math.nan
    return out.reset_index()


@register(
    "curves",
    kind="figure",
    experiments=("main",),
    help="validation MRR vs epoch and vs training time per sampler, one column per dataset",
)
def build_curves(ctx: ReportContext) -> list[Path]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    runs = ctx.runs
    if not any(r.has_trace for r in runs):
        return empty_figure(ctx, "curves: none of the given runs has a trace.csv")
    plt = setup()
    datasets = order_datasets(r.dataset for r in runs)
    variants = order_variants(r.variant for r in runs)
    # several backbones: one curve per (backbone, sampler); colour and marker = sampler, line style = backbone
    bkeys = backbone_keys(runs)
    btexts = backbone_texts(runs)
    multi_bb = len(bkeys) > 1
    cells = group(runs, "dataset", "backbone_key", "variant")
    fig, axes = _grid(plt, 2, len(datasets), ctx.title)
    for j, ds in enumerate(datasets):
        missing = sum(1 for r in runs if r.dataset == ds and not r.has_trace)
        curves = {(b, v): _curve(cells.get((ds, b, v), [])) for b in bkeys for v in variants}
        curves = {k: c for k, c in curves.items() if c is not None and not c.empty}
        ends = [float(c["seconds"].max()) for c in curves.values() if c["seconds"].notna().any()]
        log_time = bool(ends) and min(ends) > 0 and max(ends) / min(ends) >= 5  # e.g. a 15x slower sampler
        for (b, v), c in curves.items():
            ctx.notes.setdefault("lines", {}).setdefault(str(ds), []).append(
                variant_label(v) + (f" on {backbone_text(b, btexts)}" if multi_bb else "")
            )
            st = style_for(v, variants)
            if multi_bb:
                st["linestyle"] = LINESTYLES[bkeys.index(b) % len(LINESTYLES)]
            every = max(1, len(c) // 8)
            for i, x in enumerate(("epoch", "seconds")):
                ax = axes[i][j]
                ax.fill_between(
                    c[x], c["mean"] - c["std"], c["mean"] + c["std"], color=st["color"], alpha=0.18, linewidth=0
                )
                ax.plot(
                    c[x],
                    c["mean"],
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"],
                    markevery=every,
                    label=variant_label(v),
                )
        axes[0][j].set_title(_panel_title(ds, missing), fontsize=14)
        if len(datasets) == 1:
            axes[1][j].set_title(_panel_title(ds, missing), fontsize=14)
        axes[0][j].set_xlabel("Epoch")
        if log_time:
            axes[1][j].set_xscale("log")
        axes[1][j].set_xlabel("Training time (s, validation excluded" + (", log scale)" if log_time else ")"))
        for i in range(2):
            axes[i][j].set_ylabel("Validation MRR" if _first_col(axes[i][j]) else "")
    handles: list[Artist] = []
    for v in variants:
        st = style_for(v, variants)
        handles.append(
            Line2D([], [], color=st["color"], linestyle="-" if multi_bb else st["linestyle"], marker=st["marker"])
        )
    labels = [variant_label(v) for v in variants]
    if multi_bb:
        for i, b in enumerate(bkeys):
            handles.append(Line2D([], [], color="0.3", linestyle=LINESTYLES[i % len(LINESTYLES)]))
            labels.append(backbone_text(b, btexts))
    handles.append(Patch(color="0.55", alpha=0.3))
    labels.append("± 1 std over seeds")
    ncol = len(labels) if len(datasets) > 1 and len(labels) <= 5 else min(len(labels), 3)
    _legend(fig, handles, labels, ncol=ncol)
    return save(fig, ctx)


# ----------------------------------------------------------------------------------------
# curriculum band weights
# ----------------------------------------------------------------------------------------
def band_columns(trace: Any) -> list[str]:
    if trace is None:
        return []
    cols = [c for c in trace.columns if c.startswith("band_w") and c[6:].isdigit()]
    return sorted(cols, key=lambda c: int(c[6:]))


def _band_label(k: int, nb: int, steps: Sequence[float] | None) -> str:
    where = ""
    if steps and len(steps) == nb:
        s = steps[k - 1]
        where = ", s = 0" if s == 0 else f", s = {s:g}T"
    hard = "easiest" if k == 1 else ("hardest" if k == nb else "")
    inner = ", ".join(x for x in (hard, where.lstrip(", ")) if x)
    return f"Band {k} ({inner})" if inner else f"Band {k}"


@register(
    "bands",
    kind="figure",
    experiments=("main", "ablation"),
    help="mean curriculum band weights per epoch (the hardness mix the runs applied)",
    options={"style": "area (stacked shares; default) or lines"},
)
def build_bands(ctx: ReportContext) -> list[Path]:
    import numpy as np
    import pandas as pd
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    runs = [r for r in ctx.runs if band_columns(r.trace)]
    # runs of the same cells that have no band weights (failed, or not a dans run) count as missing
    cells_with_bands = {(r.dataset, r.backbone_key, r.variant) for r in runs}
    no_bands = group(
        [
            r
            for r in ctx.runs
            if not band_columns(r.trace) and (r.dataset, r.backbone_key, r.variant) in cells_with_bands
        ],
        "dataset",
        "backbone_key",
        "variant",
    )
    if not runs:
        return empty_figure(
            ctx, "bands: no run has band_w1..band_wK columns in trace.csv (only the dans sampler writes them)"
        )
    plt = setup()
    datasets = order_datasets(r.dataset for r in runs)
    # panel rows: variants, or (backbone, variant) pairs when the runs use several backbones
    bkeys = backbone_keys(runs)
    btexts = backbone_texts(runs)
    variants = [(b, v) for b in bkeys for v in order_variants(r.variant for r in runs if r.backbone_key == b)]
    nb = max(len(band_columns(r.trace)) for r in runs)
    steps = runs[0].param("diffusion.band_steps")
    colors = sns.color_palette("viridis_r", nb)
    style = ctx.option("style", "area")
    fig, axes = _grid(plt, len(variants), len(datasets), ctx.title)
    cells = group(runs, "dataset", "backbone_key", "variant")
    hardness = np.linspace(0.0, 1.0, nb)
    for i, (b, v) in enumerate(variants):
        for j, ds in enumerate(datasets):
            ax = axes[i][j]
            members = cells.get((ds, b, v), [])
            n_missing = len(no_bands.get((ds, b, v), []))
            n_text = f"n = {len(members)}" + (f", {n_missing} missing" if n_missing else "")
            on = f" on {backbone_text(b, btexts)}" if len(bkeys) > 1 else ""
            ax.set_title(
                f"{dataset_label(ds)}: {variant_label(v)}{on}" + (f"  ({n_text})" if members else ""), fontsize=13
            )
            ax.set_xlabel("Epoch")
            ax.set_ylabel("Mean band weight" if _first_col(ax) else "")
            if not members:
                _no_runs(ax, "no runs with band weights")
                continue
            cols = band_columns(members[0].trace)
            budgets = {int(r.param("train.epochs") or r.trace["epoch"].max()) for r in members}
            if len(budgets) > 1:
                # runs with different epoch budgets: average on training progress tau = epoch / epochs
                ctx.warn(
                    f"bands: {dataset_label(ds)} / {variant_label(v)}{on} mixes epoch budgets {sorted(budgets)}; "
                    "plotted against training progress"
                )
                grid = np.linspace(0.0, 1.0, 101)
                per_run = []
                for r in members:
                    budget = int(r.param("train.epochs") or r.trace["epoch"].max())
                    tau = r.trace["epoch"].to_numpy() / budget
                    per_run.append(
                        np.stack(
                            [np.interp(grid, tau, r.trace[c].to_numpy(), left=np.nan, right=np.nan) for c in cols],
                            axis=1,
                        )
                    )
                df = pd.DataFrame(np.mean(np.stack(per_run), axis=0), columns=cols).assign(
                    epoch=grid
                )  # where all runs have data
                df = df.dropna().reset_index(drop=True)
                ax.set_xlabel("Training progress τ = epoch / epochs")
            else:
                df = pd.concat([r.trace[["epoch", *cols]] for r in members]).groupby("epoch").mean().reset_index()
            w = df[cols].to_numpy().T
            sums = w.sum(axis=0)
            if style == "area" and np.allclose(sums, 1.0, atol=0.02):
                ax.stackplot(df["epoch"], w, colors=colors[: len(cols)], alpha=0.9, edgecolor="white", linewidth=0.6)
                ax.set_ylim(0, 1)
            else:
                for k, c in enumerate(cols):
                    ax.plot(df["epoch"], df[c], color=colors[k], marker=MARKERS[k], markevery=max(1, len(df) // 8))
                ax.set_ylim(bottom=0)
            mean_h = (w * hardness[: len(cols), None]).sum(axis=0) / np.where(sums > 0, sums, 1)
            ax.plot(df["epoch"], mean_h, color="black", linestyle="--", linewidth=2.0)
            ax.set_xlim(df["epoch"].min(), df["epoch"].max())
    handles: list[Artist] = [Patch(facecolor=colors[k], edgecolor="white") for k in range(nb)]
    labels = [_band_label(k + 1, nb, steps) for k in range(nb)]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=2.0))
    labels.append(r"mean hardness $\Sigma_k\, w_k h_k$" + "\n" + r"($h_1 = 0$ ... $h_{K_b} = 1$)")
    _legend(fig, handles, labels, ncol=min(len(labels), 3))
    return save(fig, ctx)
