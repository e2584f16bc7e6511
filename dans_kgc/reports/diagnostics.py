"""Table report ``diagnostics``: the ``dans-kgc diagnose`` outputs of a preset gathered in one table.

Reads the diagnose JSON files (``--runs`` takes files or folders holding them, not run folders)
and writes ``<out>.md`` (band hardness and denoiser quality per diagnosis, then the
false-negative shares across samplers) and ``<out>.csv`` (every number in long form: one row per
diagnosis x item x measure).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dans_kgc.reports.labels import dataset_label, order_datasets
from dans_kgc.reports.registry import ReportContext, register
from dans_kgc.reports.render import MISSING, Cell, Table, fmt, to_markdown

KIND = "dans_kgc_diagnostics"  # dans_kgc.diagnostics.KIND (not imported: it imports torch)
SAMPLERS = ("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans")


def find_diagnostics(paths: Iterable[Path]) -> list[Path]:
    """The diagnose JSON files among ``paths`` (a folder is searched below it)."""
    out: list[Path] = []
    for p in paths:
        found = sorted(p.rglob("*.json")) if p.is_dir() else [p]
        out += [f for f in found if f not in out and not f.name.endswith(".provenance.json")]
    return out


def load_diagnostics(ctx: ReportContext) -> list[dict[str, Any]]:
    """Every readable diagnose result (with its path under ``_path``); the others become warnings."""
    records = []
    for path in find_diagnostics(ctx.inputs):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            ctx.warn(f"{path}: unreadable ({err.__class__.__name__}); left out")
            continue
        if not isinstance(data, dict) or data.get("kind") != KIND:
            ctx.warn(f"{path}: not a 'dans-kgc diagnose' output; left out")
            continue
        data["_path"] = str(path)
        records.append(data)
    return records


def label(rec: dict[str, Any]) -> str:
    """What was diagnosed: 'warm start DKEY' or 'EXPERIMENT/VARIANT seed S'."""
    subj = rec.get("subject") or {}
    if subj.get("target") == "warm_start":
        return f"warm start {Path(str(subj.get('warm_start', '?'))).name}"
    tags = subj.get("tags") or {}
    name = (
        "/".join(str(tags[k]) for k in ("experiment", "variant") if tags.get(k)) or Path(str(subj.get("run", "?"))).name
    )
    seed = subj.get("seed")
    return f"{name} seed {seed}" if seed is not None else name


def _sort_key(rec: dict[str, Any], datasets: list[str | None]) -> tuple:
    subj = rec.get("subject") or {}
    ds = subj.get("dataset")
    return (datasets.index(ds) if ds in datasets else len(datasets), subj.get("target") != "warm_start", label(rec))


def _joined(values: list[float | None], digits: int = 3) -> str:
    return " / ".join(fmt(v, digits) for v in values) if values else MISSING


def _pct(v: float | None) -> str:
    return MISSING if v is None else f"{100 * v:.2f}%"


def tidy_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-form rows of one diagnosis (the CSV)."""
    subj = rec.get("subject") or {}
    base = {
        "dataset": subj.get("dataset"),
        "diagnosed": label(rec),
        "target": subj.get("target"),
        "sampler": subj.get("sampler"),
        "backbone": subj.get("backbone"),
        "epoch": subj.get("epoch"),
        "status": subj.get("status", "ok"),
        "file": rec.get("_path"),
    }
    out = []
    d = rec.get("denoiser")
    if d:
        for k in ("mean_mse", "mean_baseline", "mean_ratio"):
            out.append({**base, "section": "denoiser", "item": "all steps", "measure": k, "value": d[k]})
        if d.get("x0_mse") is not None:
            out.append(
                {
                    **base,
                    "section": "denoiser",
                    "item": "all steps",
                    "measure": "x0_mean_mse",
                    "value": float(sum(d["x0_mse"]) / len(d["x0_mse"])),
                }
            )
            out.append(
                {
                    **base,
                    "section": "denoiser",
                    "item": "all steps",
                    "measure": "x0_baseline",
                    "value": d["x0_baseline"],
                }
            )
        ratio, what = predicted_target_ratio(d)
        out.append(
            {
                **base,
                "section": "denoiser",
                "item": f"all steps ({what} predicted)",
                "measure": "predicted_target_ratio",
                "value": ratio,
            }
        )
    b = rec.get("bands")
    if b:
        for r in [*b["rows"], b["uniform"]]:
            item = f"band{r['band']}" if r["band"] != "uniform" else "uniform"
            for k in ("active", "outscore", "quantile", "gap", "snap_rank_mean", "dist_query", "dist_target"):
                out.append({**base, "section": "hardness", "item": item, "measure": k, "value": r.get(k)})
        for k, v in b["reference"].items():
            out.append({**base, "section": "hardness", "item": "reference", "measure": k, "value": v})
    for r in (rec.get("false_negatives") or {}).get("rows", []):
        for k in ("train", "valid", "test", "any"):
            out.append({**base, "section": "false_negatives", "item": r["sampler"], "measure": k, "value": r.get(k)})
        if r.get("weighted"):
            out.append(
                {
                    **base,
                    "section": "false_negatives",
                    "item": r["sampler"],
                    "measure": "weighted_any",
                    "value": r["weighted"]["any"],
                }
            )
    return out


def predicted_target_ratio(denoiser: Mapping[str, Any]) -> tuple[float | None, str]:
    """Mean over steps of the MSE of what the denoiser predicts (noise or x0) over predicting zero, and which.

    The implied other error is no quality measure: noise implied from an x0 prediction is divided by
    sqrt(1 - alpha-bar_s) and explodes at small s whatever the model. Diagnoses written before the x0 error
    existed give the noise ratio.
    """
    x0, base = denoiser.get("x0_mse"), denoiser.get("x0_baseline")
    if denoiser.get("prediction") == "x0" and x0 and base:
        return sum(x0) / len(x0) / base, "x0"
    return denoiser.get("mean_ratio"), "noise"


def _denoiser_cell(d: Mapping[str, Any] | None, digits: int) -> str:
    """Mean MSE over predicting zero of what the denoiser predicts, named: '0.268 (x0)' or '0.911 (noise)'."""
    if not d:
        return MISSING
    ratio, what = predicted_target_ratio(d)
    return MISSING if ratio is None else f"{fmt(ratio, digits)} ({what})"


def _yardstick(bands: Mapping[str, Any] | None, digits: int) -> str:
    """The hardest non-answer entity's quantile on the diagnosed rows (diagnoses made before it: missing)."""
    value = ((bands or {}).get("reference") or {}).get("quantile_non_answer1")
    return MISSING if value is None else fmt(value, digits)


@register(
    "diagnostics",
    kind="table",
    inputs="files",
    help="dans-kgc diagnose outputs gathered: band hardness, denoiser quality, false negatives across samplers",
    options={"digits": "decimals"},
)
def build_diagnostics(ctx: ReportContext) -> list[Path]:
    import pandas as pd

    from dans_kgc.utils import write_text

    records = load_diagnostics(ctx)
    datasets = order_datasets((r.get("subject") or {}).get("dataset") for r in records)
    records.sort(key=lambda r: _sort_key(r, datasets))
    digits = int(ctx.option("digits", 3))
    hard = Table(
        caption=ctx.title
        or "Hardness of the generated negatives per band (band 1 = easiest) and "
        "denoiser quality, per diagnosed warm start and training run",
        columns=[
            "Dataset",
            "Diagnosed",
            "Sampler",
            "Backbone",
            "Epoch",
            "Denoiser MSE / zero (its target)",
            "Entity quantile per band",
            "Active share per band",
            "P(outscore) per band",
            "Uniform quantile",
            "Uniform active",
            "Hardest non-answer quantile",
        ],
        rows=[],
        label="tab:diagnostics",
        align="lllllrlllrrr",
    )
    fn = Table(
        caption="False negatives: share of each sampler's negatives that are known true triples "
        "(valid + test; train in brackets). Diffusion samplers: nearest entity to each generated "
        "embedding, snapped against the train filter",
        columns=["Dataset", "Diagnosed", *SAMPLERS],
        rows=[],
        label="tab:false_negatives",
    )
    for rec in records:
        subj = rec.get("subject") or {}
        head = [Cell(dataset_label(subj.get("dataset"))), Cell(label(rec))]
        if subj.get("status") == "failed":
            hard.rows.append(
                [
                    *head,
                    Cell(str(subj.get("sampler"))),
                    Cell(MISSING),
                    Cell(MISSING),
                    *[Cell(MISSING, marks=[hard.notes.mark("the run failed: nothing to diagnose")]) for _ in range(7)],
                ]
            )
            continue
        d, b = rec.get("denoiser"), rec.get("bands")
        rows = b["rows"] if b else []
        hard.rows.append(
            [
                *head,
                Cell(str(subj.get("sampler"))),
                Cell(str(subj.get("backbone") or MISSING)),
                Cell(MISSING if subj.get("epoch") is None else str(subj["epoch"])),
                Cell(_denoiser_cell(d, digits)),
                Cell(_joined([r["quantile"] for r in rows], digits)),
                Cell(_joined([r["active"] for r in rows], digits)),
                Cell(_joined([r["outscore"] for r in rows], digits)),
                Cell(fmt(b["uniform"]["quantile"], digits) if b else MISSING),
                Cell(fmt(b["uniform"]["active"], digits) if b else MISSING),
                Cell(_yardstick(b, digits)),
            ]
        )
        by = {r["sampler"]: r for r in (rec.get("false_negatives") or {}).get("rows", [])}
        cells = []
        for s in SAMPLERS:
            r = by.get(s)
            if r is None or r.get("valid") is None:
                cells.append(Cell(MISSING))
                continue
            text = f"{_pct((r['valid'] or 0.0) + (r['test'] or 0.0))} ({_pct(r['train'])})"
            marks = (
                [fn.notes.mark("cache freshly initialised, not the trained one")] if "fresh" in str(r["state"]) else []
            )
            cells.append(Cell(text, marks=marks))
        fn.rows.append([*head, *cells])
    if not records:
        ctx.warn("diagnostics: no 'dans-kgc diagnose' output among the inputs")
    md = ctx.path(".md")
    write_text(md, to_markdown(hard) + "\n" + to_markdown(fn))
    csv = ctx.path(".csv")
    frame = pd.DataFrame(
        [row for rec in records for row in tidy_rows(rec)],
        columns=[
            "dataset",
            "diagnosed",
            "target",
            "sampler",
            "backbone",
            "epoch",
            "status",
            "section",
            "item",
            "measure",
            "value",
            "file",
        ],
    )
    write_text(csv, frame.to_csv(index=False))
    ctx.notes["diagnoses"] = len(records)
    return [csv, md]
