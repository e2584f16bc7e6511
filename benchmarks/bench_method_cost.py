"""Cost of DANS-KGC: seconds per epoch of the diffusion samplers vs the backbone's plain training,
side by side on several backbones in one run, and (optionally) the accuracy each setting reaches.

Per backbone, the stages (pretrain -> DAM -> diffusion warm start) are built once in a work
folder; then every setting trains the same backbone from the same initial weights. Epochs of all
settings and backbones are interleaved (round robin), so machine load hits all of them alike.
Reports the median seconds/epoch and the ratio to the same backbone's plain ("uniform") epoch.

With ``--accuracy-epochs N`` each setting is also trained for N epochs (validation every 5,
model selection on validation MRR) and its test MRR is reported next to the exact chain's: the
issue's "at equal accuracy" check (within 0.005 of the exact-chain default).

    python benchmarks/bench_method_cost.py --dataset umls --backbones transe,complex_n3_1n \
        --epochs 5 --accuracy-epochs 50 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from recipes import recipe_sets

from dans_kgc.cli import main as cli_main
from dans_kgc.config import load_config
from dans_kgc.evaluation import evaluate
from dans_kgc.pipeline import load_kg
from dans_kgc.provenance import git_commit, package_versions
from dans_kgc.training import Trainer, build_run

EXACT = "dans, exact chain (T = 50)"
SETTINGS = {  # name -> extra overrides on top of the common ones (the package defaults otherwise)
    "uniform": ["train.sampler=uniform"],
    EXACT: ["train.sampler=dans", "diffusion.sampling_steps=0"],
    "dans, respaced 10 steps": ["train.sampler=dans", "diffusion.sampling_steps=10"],
    "dans, one-call DDIM": ["train.sampler=dans", "diffusion.reverse=ddim", "diffusion.sampling_steps=1"],
    "dans, one-call DDIM, L_diff every 4 steps": [
        "train.sampler=dans",
        "diffusion.reverse=ddim",
        "diffusion.sampling_steps=1",
        "diffusion.update_every=4",
    ],
    "dans, one-call DDIM, L_diff every 4, half batch": [
        "train.sampler=dans",
        "diffusion.reverse=ddim",
        "diffusion.sampling_steps=1",
        "diffusion.update_every=4",
        "diffusion.sample_fraction=0.5",
    ],
    "dans, one-call DDIM, L_diff every 4, half batch, cache 4 epochs": [
        "train.sampler=dans",
        "diffusion.reverse=ddim",
        "diffusion.sampling_steps=1",
        "diffusion.update_every=4",
        "diffusion.sample_fraction=0.5",
        "diffusion.cache_epochs=4",
    ],
    "dans, one-call DDIM, L_diff every 16, half batch, cache 8 epochs": [
        "train.sampler=dans",
        "diffusion.reverse=ddim",
        "diffusion.sampling_steps=1",
        "diffusion.update_every=16",
        "diffusion.sample_fraction=0.5",
        "diffusion.cache_epochs=8",
    ],
}


def common_overrides(backbone: str, args: argparse.Namespace) -> list[str]:
    """The backbone's recipe plus where and how this benchmark runs."""
    out = recipe_sets(backbone, args.dataset) + [
        f"data.root={Path(args.work) / 'data'}",
        "device=cpu",
        f"threads={args.threads}",
    ]
    if backbone != "transe":
        out.append("dam.semantic_source=backbone")  # one pretraining per backbone in this benchmark
    return out


def build_trainer(
    backbone: str, name: str, extra: list[str], stages: dict[str, str], args: argparse.Namespace, out: Path
) -> Trainer:
    """One setting on one backbone, from the backbone's Stage 0 (uniform needs no DAM or warm start)."""
    cfg = load_config([], common_overrides(backbone, args) + SETTINGS[name] + extra)
    kg, protocol = load_kg(cfg, args.dataset)
    model, sampler = build_run(
        cfg,
        kg,
        stages["pretrain"],
        **({} if name == "uniform" else {k: v for k, v in stages.items() if k != "pretrain"}),
    )
    return Trainer(cfg, kg, model, sampler, out, torch.device("cpu"), protocol, show_progress=False)


def build_stages(dataset: str, backbone: str, work: Path, common: list[str]) -> dict[str, str]:
    """Pretrain the backbone (TransE: the base reading's Stage 0), fit DAM on it and the warm start."""
    sets = [a for kv in common for a in ("--set", kv)]
    pre, dam, diff = work / "pretrain", work / "dam", work / "diffusion"
    source = "transe" if backbone == "transe" else "backbone"
    if not (pre / "model_best.pt").exists():
        cli_main(
            [
                "pretrain",
                "--dataset",
                dataset,
                "--out",
                str(pre),
                "--quiet",
                "--source",
                source,
                *sets,
                "--set",
                "pretrain.epochs=50",
                "--set",
                "train.epochs=50",
            ]
        )
    if not (dam / "entities.csv").exists():
        cli_main(["dam", "fit", "--dataset", dataset, "--pretrained", str(pre), "--out", str(dam), *sets])
    if not (diff / "diffusion.pt").exists():
        cli_main(
            [
                "diffusion",
                "fit",
                "--dataset",
                dataset,
                "--pretrained",
                str(pre),
                "--dam",
                str(dam),
                "--out",
                str(diff),
                *sets,
            ]
        )
    return {"pretrain": str(pre), "dam_dir": str(dam), "diffusion_dir": str(diff)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="umls")
    ap.add_argument("--backbones", default="transe,complex_n3_1n", help="comma-separated config.yaml recipes")
    ap.add_argument("--settings", default=";".join(SETTINGS), help="semicolon-separated subset of the settings")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per setting")
    ap.add_argument("--accuracy-epochs", type=int, default=0, help="also train each setting this long; 0 = timing only")
    ap.add_argument("--work", default="/tmp/dans_kgc_bench_cost")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = {n: SETTINGS[n] for n in args.settings.split(";")}
    backbones = args.backbones.split(",")
    trainers: dict[tuple[str, str], Trainer] = {}
    stages: dict[str, dict[str, str]] = {}
    for backbone in backbones:
        work = Path(args.work) / args.dataset / backbone
        stages[backbone] = build_stages(args.dataset, backbone, work, common_overrides(backbone, args))
        for name in settings:
            trainers[(backbone, name)] = build_trainer(
                backbone,
                name,
                ["train.eval_every=1000", "train.checkpoint_every=1000", f"train.epochs={args.epochs}"],
                stages[backbone],
                args,
                work / "timing" / str(len(trainers)),
            )
    seconds: dict[tuple[str, str], list[float]] = {k: [] for k in trainers}
    for _ in range(args.epochs):
        for key, tr in trainers.items():
            t0 = time.perf_counter()
            tr._train_epoch(args.epochs)
            tr.epoch += 1
            seconds[key].append(time.perf_counter() - t0)
    rows: list[dict[str, Any]] = []
    for (backbone, name), s in seconds.items():
        base = statistics.median(seconds[(backbone, "uniform")]) if (backbone, "uniform") in seconds else float("nan")
        rows.append(
            {
                "backbone": backbone,
                "setting": name,
                "median_s_per_epoch": round(statistics.median(s), 4),
                "ratio_vs_uniform": round(statistics.median(s) / base, 2),
                "epochs": [round(x, 4) for x in s],
            }
        )
    if args.accuracy_epochs:
        for row in rows:
            backbone, name = row["backbone"], row["setting"]
            work = Path(args.work) / args.dataset / backbone
            tr = build_trainer(
                backbone,
                name,
                [f"train.epochs={args.accuracy_epochs}", "train.eval_every=5", "train.checkpoint_every=1000"],
                stages[backbone],
                args,
                work / "accuracy" / name.replace(" ", "_").replace(",", ""),
            )
            fit = tr.fit()
            tr.model.load_state_dict(tr.best["state"])
            tr.model.eval()
            metrics, _ = evaluate(tr.model, tr.kg, "test", tr.protocol, 256, "cpu")
            row.update(
                {
                    "valid_mrr": round(fit["best_valid_mrr"], 4),
                    "test_mrr": round(metrics["mrr"], 4),
                    "accuracy_epochs": args.accuracy_epochs,
                }
            )
            print(json.dumps({k: row[k] for k in ("backbone", "setting", "valid_mrr", "test_mrr")}), flush=True)
        for row in rows:
            exact = next((r for r in rows if r["backbone"] == row["backbone"] and r["setting"] == EXACT), None)
            if exact is not None:
                row["test_mrr_minus_exact"] = round(row["test_mrr"] - exact["test_mrr"], 4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "method_cost",
        "dataset": args.dataset,
        "rows": rows,
        "settings": {
            "backbones": {b: recipe_sets(b, args.dataset) for b in backbones},
            "threads": args.threads,
            "overrides": settings,
            "timed_epochs": args.epochs,
            "accuracy_epochs": args.accuracy_epochs,
        },
        "provenance": {
            "git_commit": git_commit(),
            "packages": package_versions(),
            "machine": platform.platform(),
            "processor": platform.processor(),
            "command": "python " + " ".join(sys.argv),
        },
    }
    (out / f"method_cost_{args.dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
    acc = bool(args.accuracy_epochs)
    md = [
        f"# DANS-KGC training cost on {args.dataset} (CPU, {args.threads} threads; each backbone's recipe, "
        "package-default DANS-KGC reading)",
        "",
        "Ratio: median seconds per epoch over the same backbone's plain epoch (uniform negatives, or plain 1-N), "
        "epochs of all settings interleaved."
        + (
            f" Test MRR after {args.accuracy_epochs} epochs (best validation "
            "epoch), and its difference to the exact chain."
            if acc
            else ""
        ),
        "",
        "| backbone | setting | median s/epoch | ratio vs plain |"
        + (" valid MRR | test MRR | vs exact |" if acc else ""),
        "|---|---|---:|---:|" + ("---:|---:|---:|" if acc else ""),
    ]
    for r in rows:
        line = f"| {r['backbone']} | {r['setting']} | {r['median_s_per_epoch']:.3f} | {r['ratio_vs_uniform']:.2f}x |"
        if acc:
            line += (
                f" {r['valid_mrr']:.4f} | {r['test_mrr']:.4f} | {r.get('test_mrr_minus_exact', float('nan')):+.4f} |"
            )
        md.append(line)
    md += ["", f"Command: `{result['provenance']['command']}`", ""]
    (out / f"method_cost_{args.dataset}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
