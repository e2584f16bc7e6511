"""How the cost of every stage grows with the graph: seconds and peak RSS per stage, from Family size to YAGO3-10 size.

Each stage runs as the DAG runs it (the ``dans-kgc`` command, one process, ``threads`` torch threads), with the
paper preset's settings (the package defaults) except one epoch wherever there are epochs. Graphs: synthetic
graphs of YAGO3-10's shape (``dans_kgc.datasets.synthetic``) at several fractions of its size, up to the full
``yago3-10-twin``, and the real WN18RR, FB15k-237 and NELL-995 files (kge splits). Per stage and graph it records
the wall seconds, the seconds of the one epoch where the stage has epochs (from the run's trace or report), and
the process's peak RSS (``wait4``). Per stage it fits ``log seconds = a + b log triples + c log entities``
(least squares over every graph measured) and the one-variable exponent along the synthetic sizes.

    python benchmarks/bench_scale.py                     # everything (CPU-hours; resumable: cells already in
                                                         # the JSON are kept unless --redo)
    python benchmarks/bench_scale.py --graphs x0.025 x0.1 --stages fetch pretrain dam
    python benchmarks/bench_scale.py --report-only       # refit and rewrite the Markdown from the JSON
    python benchmarks/bench_scale.py --report-only --merge other.json   # join a second process's cells

Output: benchmarks/results/bench_scale.{json,md} (``--out`` to change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dans_kgc.costs import fit_power_law  # noqa: E402
from dans_kgc.datasets.custom import materialize_synthetic  # noqa: E402
from dans_kgc.datasets.registry import get_dataset  # noqa: E402
from dans_kgc.datasets.synthetic import SyntheticShape  # noqa: E402

TWIN = "yago3-10-twin"
FRACTIONS = {"x0.025": 0.025, "x0.1": 0.1, "x0.3": 0.3, "x1": 1.0}  # x0.025 ~ Family's size (3k entities)
REAL = {"wn18rr": "kge", "fb15k-237": "kge", "nell-995": "kge"}
SAMPLERS = ("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans")
STAGES = (
    "fetch",
    "stats",
    "pretrain",
    "dam",
    "diffusion",
    "diffusion_dhns",
    *(f"train_{s}" for s in SAMPLERS),
    "evaluate",
    "diagnose",
    "report",
)
EPOCH_STAGES = {"pretrain", "diffusion", "diffusion_dhns", *(f"train_{s}" for s in SAMPLERS)}
# What each stage reads: a stage whose cell is already measured is skipped, so before a requested stage runs, the
# outputs it needs are built (unmeasured) where this work folder lacks them - a new machine, or a second --out.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "fetch": (),
    "stats": ("fetch",),
    "pretrain": ("fetch",),
    "dam": ("pretrain",),
    "diffusion": ("pretrain", "dam"),
    "diffusion_dhns": ("pretrain",),
    **{f"train_{s}": ("pretrain",) for s in SAMPLERS},
    "train_dhns": ("pretrain", "diffusion_dhns"),
    "train_dans": ("pretrain", "dam", "diffusion"),
    "evaluate": ("train_uniform",),
    "diagnose": ("train_dans",),
    "report": tuple(f"train_{s}" for s in SAMPLERS),
}
ONE_EPOCH = [
    "pretrain.epochs=1",
    "train.epochs=1",
    "train.eval_every=1",
    "train.checkpoint_every=1",
    "diffusion.warmstart_epochs=1",
]


def scaled_shape(fraction: float) -> SyntheticShape:
    """YAGO3-10's shape (the registry's twin) at ``fraction`` of its entities, triples and hub."""
    full = get_dataset(TWIN).synthetic
    assert full is not None
    if fraction == 1.0:
        return full
    held = max(200, round(full.valid * fraction))
    hubs = {h.name: {"triples": max(1, round(h.triples * fraction)), "tails": h.tails} for h in full.hubs}
    return SyntheticShape.from_mapping(
        {
            "entities": round(full.entities * fraction),
            "relations": full.relations,
            "train": round(full.train * fraction),
            "valid": held,
            "test": held,
            "hubs": hubs,
            "degree_exponent": full.degree_exponent,
            "relation_exponent": full.relation_exponent,
            "seed": full.seed,
        },
        f"fraction {fraction}",
    )


# A small launcher process runs each stage and reports its peak RSS: measured from this (larger) process, the
# child's peak would start at this process's size, which a fork copies into the child's accounting.
LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def peak_rss_run(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """Run ``cmd`` -> (exit code, wall seconds, peak RSS in MiB of that process)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    rss_file = log.with_suffix(".maxrss")
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        code = subprocess.call(
            [sys.executable, "-c", LAUNCHER, str(rss_file), *cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        wall = time.perf_counter() - t0
    return code, wall, int(rss_file.read_text()) / 1024.0


def done_marker(work: Path, name: str, stage: str) -> Path:
    """Written after a stage's command succeeded in this work folder (measured or not)."""
    return work / name / "done" / stage


def run_stage(name: str, stage: str, work: Path, cfg_file: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """Run one stage's command -> (exit code, wall seconds, peak RSS MiB); marks it done on success."""
    cmd, _ = stage_commands(name, stage, work, cfg_file)
    code, wall, rss = peak_rss_run(cmd, work / name / "logs" / f"{stage}.log", env)
    if code == 0:
        done_marker(work, name, stage).parent.mkdir(parents=True, exist_ok=True)
        done_marker(work, name, stage).touch()
    return code, wall, rss


def build_upstream(name: str, stage: str, work: Path, cfg_file: Path, env: dict[str, str]) -> None:
    """Build, unmeasured and in order, every stage ``stage`` reads that this work folder has not run yet."""
    for need in UPSTREAM[stage]:
        ensure_built(name, need, work, cfg_file, env, why=f"input of {stage}")


def ensure_built(name: str, stage: str, work: Path, cfg_file: Path, env: dict[str, str], why: str) -> None:
    """Run ``stage`` unmeasured (after what it reads) unless this work folder has run it; stop if it fails."""
    if done_marker(work, name, stage).is_file():
        return
    build_upstream(name, stage, work, cfg_file, env)
    print(f"[{time.strftime('%H:%M:%S')}]   building {name}/{stage} ({why}, not measured)", flush=True)
    code, _, _ = run_stage(name, stage, work, cfg_file, env)
    if code != 0:
        raise SystemExit(f"{name}/{stage} failed (exit {code}); see {work / name / 'logs' / f'{stage}.log'}")


def epoch_seconds(stage: str, out: Path) -> float | None:
    """The one epoch's seconds as the stage recorded it (trace.csv or the warm start's report)."""
    if stage.startswith("diffusion"):
        report = out / "diffusion_report.json"
        if report.is_file():
            rec = json.loads(report.read_text())
            found = _find_key(rec, "seconds")
            return float(found) if found is not None else None
        return None
    trace = out / "trace.csv"
    if not trace.is_file():
        return None
    rows = list(csv.DictReader(trace.open()))
    return float(rows[0]["seconds"]) if rows else None


def _find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], (int, float)):
            return obj[key]
        for v in obj.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


def stage_commands(graph: str, stage: str, work: Path, cfg_file: Path) -> tuple[list[str], Path]:
    """The dans-kgc command of one stage on one graph, and its output folder."""
    g = work / graph
    base = [sys.executable, "-m", "dans_kgc.cli"]
    common = ["--config", str(cfg_file)] + [x for s in ONE_EPOCH for x in ("--set", s)]
    pre, dam, diff, dhns = g / "pretrain", g / "dam", g / "diffusion", g / "diffusion_dhns"
    if stage == "fetch":
        return base + ["data", "fetch", graph, "--config", str(cfg_file)], g / "fetch"
    if stage == "stats":
        return base + [
            "data",
            "stats",
            graph,
            "--out",
            str(g / "stats" / "table1"),
            "--config",
            str(cfg_file),
        ], g / "stats"
    if stage == "pretrain":
        return base + ["pretrain", "--dataset", graph, "--out", str(pre)] + common, pre
    if stage == "dam":
        return base + ["dam", "fit", "--dataset", graph, "--pretrained", str(pre), "--out", str(dam)] + common, dam
    if stage == "diffusion":
        return base + [
            "diffusion",
            "fit",
            "--dataset",
            graph,
            "--pretrained",
            str(pre),
            "--dam",
            str(dam),
            "--out",
            str(diff),
        ] + common, diff
    if stage == "diffusion_dhns":
        return base + [
            "diffusion",
            "fit",
            "--kind",
            "dhns",
            "--dataset",
            graph,
            "--pretrained",
            str(pre),
            "--out",
            str(dhns),
        ] + common, dhns
    if stage.startswith("train_"):
        sampler = stage[len("train_") :]
        out = g / "runs" / "main" / sampler / "seed0"
        extra = {"dans": ["--dam", str(dam), "--diffusion", str(diff)], "dhns": ["--diffusion", str(dhns)]}.get(
            sampler, []
        )
        return base + [
            "train",
            "--dataset",
            graph,
            "--out",
            str(out),
            "--pretrained",
            str(pre),
            *extra,
            "--set",
            f"train.sampler={sampler}",
            "--tag",
            "experiment=main",
            "--tag",
            f"variant={sampler}",
            "--tag",
            "backbone=transe",
        ] + common, out
    if stage == "evaluate":
        run = g / "runs" / "main" / "uniform" / "seed0"
        return base + ["evaluate", "--run", str(run)], run  # the run's recorded config
    if stage == "diagnose":
        run = g / "runs" / "main" / "dans" / "seed0"
        return base + [
            "diagnose",
            "--run",
            str(run),
            "--out",
            str(g / "diagnose"),
            "--config",
            str(cfg_file),
        ], g / "diagnose"
    if stage == "report":
        return base + ["report", "main", "--runs", str(g / "runs"), "--out", str(g / "report" / "main")], g / "report"
    raise KeyError(stage)


def graph_size(graph: str, cfg_file: Path) -> tuple[int, int]:
    """(training triples, entities) of a fetched graph, read from its stats table."""
    table = cfg_file.parent / graph / "stats" / "table1.csv"
    if table.is_file():
        row = next(csv.DictReader(table.open()))
        return int(row["train"]), int(row["entities"])
    return 0, 0


def write_config(work: Path, graphs: list[str]) -> Path:
    """The benchmark's dans-kgc config: its data root, the smaller synthetic graphs as your-own datasets."""
    custom = {}
    for graph in graphs:
        if graph in FRACTIONS and FRACTIONS[graph] != 1.0:
            name = f"yago3-10-{graph}"
            materialize_synthetic(name, scaled_shape(FRACTIONS[graph]), work / "sources")
            custom[name] = {"path": str(work / "sources" / name / "kge"), "protocol": "kge"}
    # protocol kge: the synthetic graphs' split, and the real graphs' complete files (redgnn lacks some)
    cfg = {
        "threads": THREADS,
        "device": "cpu",
        "protocol": "kge",
        "data": {"root": str(work / "data")},
        "datasets": custom,
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def dataset_name(graph: str) -> str:
    if graph in FRACTIONS:
        return TWIN if FRACTIONS[graph] == 1.0 else f"yago3-10-{graph}"
    return graph


def fit(points: list[tuple[float, float, float]]) -> dict[str, float | None]:
    """The cost model's fit (``dans_kgc.costs.fit_power_law``) over every point, and the one-variable exponent in
    triples along the synthetic sizes' points alone (the caller passes those for ``exponent_diagonal``)."""
    pts = [(t, e, s) for t, e, s in points if t > 0 and e > 0 and s and s > 0]
    out: dict[str, float | None] = {
        "exponent_triples": None,
        "exponent_entities": None,
        "exponent_diagonal": None,
        "points": len(pts),
    }
    law = fit_power_law(pts) if len(pts) >= 2 else None
    if law is not None:
        out["intercept"], out["exponent_triples"] = law.intercept, law.b
        out["exponent_entities"] = law.c if len(pts) >= 4 and law.c != 0.0 else None
        out["exponent_diagonal"] = float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[2] for p in pts]), 1)[0])
    return out


def write_markdown(results: dict[str, Any], out: Path) -> None:
    cells, graphs = results["cells"], results["graphs"]
    lines = [
        "# bench_scale: cost of each stage from Family size to YAGO3-10 size",
        "",
        f"{results['machine']}; {results['threads']} torch thread(s) per process; package defaults (the paper "
        "preset) with one epoch where a stage has epochs. Seconds: the epoch alone for epoch stages "
        "(`/ep`), else the whole process; RSS: the process's peak. Command: `python benchmarks/bench_scale.py`.",
        "",
        "| graph | triples | entities |",
        "|---|---:|---:|",
    ]
    for g in graphs:
        lines.append(f"| {dataset_name(g)} | {graphs[g]['triples']:,} | {graphs[g]['entities']:,} |")
    lines += [
        "",
        "## Seconds (peak RSS, MiB)",
        "",
        "| stage | " + " | ".join(graphs) + " |",
        "|---|" + "---:|" * len(graphs),
    ]
    for stage in STAGES:
        row = []
        for g in graphs:
            c = cells.get(f"{g}/{stage}")
            if c is None:
                row.append("-")
            elif c["status"] != "ok":
                row.append(f"{c['status']}")
            else:
                sec = c.get("epoch_seconds") if stage in EPOCH_STAGES and c.get("epoch_seconds") else c["seconds"]
                unit = "/ep" if stage in EPOCH_STAGES and c.get("epoch_seconds") else ""
                row.append(f"{sec:,.1f}{unit} ({c['peak_rss_mib']:,.0f})")
        lines.append(f"| {stage} | " + " | ".join(row) + " |")
    lines += [
        "",
        "## Growth exponents",
        "",
        "`seconds ~ triples^b x entities^c` fitted over every graph measured (synthetic and real; the real "
        "graphs vary the entities-to-triples ratio), and the one-variable exponent along the synthetic sizes "
        "(entities and triples grow together there).",
        "",
        "| stage | b (triples) | c (entities) | along the synthetic sizes | peak RSS exponent | points |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}"

    for stage, f in results["fits"].items():
        lines.append(
            f"| {stage} | {fmt(f['exponent_triples'])} | {fmt(f['exponent_entities'])} | "
            f"{fmt(f['exponent_diagonal'])} | {fmt(f.get('rss_exponent_diagonal'))} | {f['points']} |"
        )
    if results.get("dominant"):
        d = results["dominant"]
        lines += [
            "",
            f"At YAGO3-10 size the costliest stage per epoch is **{d['stage']}** ({d['seconds']:,.0f} s "
            f"per epoch); the largest peak RSS is {d['max_rss_stage']} ({d['max_rss_mib']:,.0f} MiB).",
        ]
    out.write_text("\n".join(lines) + "\n")


def refit(results: dict[str, Any]) -> None:
    fits, graphs = {}, results["graphs"]
    for stage in STAGES:
        pts, synthetic, rss = [], [], []
        for g, size in graphs.items():
            c = results["cells"].get(f"{g}/{stage}")
            if c and c["status"] == "ok":
                point = (size["triples"], size["entities"], c.get("epoch_seconds") or c["seconds"])
                pts.append(point)
                if g in FRACTIONS:
                    synthetic.append(point)
                    rss.append((size["triples"], size["entities"], c["peak_rss_mib"]))
        f = fit(pts)
        f["exponent_diagonal"] = fit(synthetic)["exponent_diagonal"]
        f["rss_exponent_diagonal"] = fit(rss)["exponent_diagonal"]
        fits[stage] = f
    results["fits"] = fits
    big = [
        (results["cells"][f"x1/{s}"].get("epoch_seconds") or results["cells"][f"x1/{s}"]["seconds"], s)
        for s in STAGES
        if results["cells"].get(f"x1/{s}", {}).get("status") == "ok"
    ]
    rss = [
        (results["cells"][f"x1/{s}"]["peak_rss_mib"], s)
        for s in STAGES
        if results["cells"].get(f"x1/{s}", {}).get("status") == "ok"
    ]
    if big:
        sec, stage = max(big)
        mx, mx_stage = max(rss)
        results["dominant"] = {"stage": stage, "seconds": sec, "max_rss_stage": mx_stage, "max_rss_mib": mx}


THREADS = 1


def main() -> int:
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--graphs",
        nargs="+",
        default=[*FRACTIONS, *REAL],
        help=f"synthetic fractions ({', '.join(FRACTIONS)}) and real datasets ({', '.join(REAL)})",
    )
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--work", default="/tmp/dans_kgc_bench_scale", help="scratch folder (data and run folders)")
    ap.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "results" / "bench_scale"),
        help="output path without extension (.json, .md)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads per stage process")
    ap.add_argument("--redo", action="store_true", help="measure cells already in the JSON again")
    ap.add_argument("--report-only", action="store_true", help="refit and rewrite the Markdown from the JSON")
    ap.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="JSON",
        help="add the cells of other bench_scale JSONs (e.g. a second process's --out) before refitting",
    )
    args = ap.parse_args()
    THREADS = args.threads
    out = Path(args.out)
    results: dict[str, Any] = {"cells": {}, "graphs": {}}
    if out.with_suffix(".json").is_file():
        results = json.loads(out.with_suffix(".json").read_text())
    for other in args.merge:
        extra = json.loads(Path(other).read_text())
        results["cells"].update(extra["cells"])
        results["graphs"].update(extra["graphs"])
    results.update(
        {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}", "threads": THREADS}
    )
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not args.report_only:
        cfg_file = write_config(work, [g for g in args.graphs])
        for graph in args.graphs:
            name = dataset_name(graph)
            if "stats" not in args.stages and not (work / name / "stats" / "table1.csv").is_file():
                ensure_built(name, "stats", work, cfg_file, env, why="graph size")  # read from the stats table
            for stage in args.stages:
                key = f"{graph}/{stage}"
                if key in results["cells"] and results["cells"][key]["status"] == "ok" and not args.redo:
                    continue
                build_upstream(name, stage, work, cfg_file, env)
                cmd, folder = stage_commands(name, stage, work, cfg_file)
                print(f"[{time.strftime('%H:%M:%S')}] {key}: {' '.join(cmd[3:])}", flush=True)
                code, wall, rss = run_stage(name, stage, work, cfg_file, env)
                cell = {
                    "status": "ok" if code == 0 else f"exit {code}",
                    "seconds": round(wall, 2),
                    "peak_rss_mib": round(rss, 1),
                    "command": "dans-kgc " + " ".join(cmd[3:]),
                    # other work on the machine inflates the seconds; the 1-minute load average says how much
                    "load_average": round(os.getloadavg()[0], 2),
                }
                if stage in EPOCH_STAGES and code == 0:
                    ep = epoch_seconds(stage, folder)
                    cell["epoch_seconds"] = round(ep, 2) if ep is not None else None
                results["cells"][key] = cell
                print(f"    -> {cell['status']}, {wall:.1f} s, {rss:.0f} MiB", flush=True)
                triples, entities = graph_size(name, cfg_file)
                results["graphs"][graph] = {"dataset": name, "triples": triples, "entities": entities}
                refit(results)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
                write_markdown(results, out.with_suffix(".md"))
    refit(results)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
