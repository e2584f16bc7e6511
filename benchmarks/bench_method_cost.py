"""Cost of DANS-KGC: seconds per epoch of the diffusion samplers vs uniform sampling, same run.

Stages (pretrain -> DAM -> diffusion warm start) are built once in a work folder, then every
sampler setting trains the same backbone from the same initial weights; epochs of the settings
are interleaved (round robin) so machine load hits all of them alike. Reports the median
seconds/epoch and the ratio to uniform.

    python benchmarks/bench_method_cost.py --dataset umls --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from dans_kgc.cli import load_kg, main as cli_main
from dans_kgc.config import load_config
from dans_kgc.provenance import git_commit, package_versions
from dans_kgc.training import Trainer, build_run

SETTINGS = {  # name -> extra overrides on top of the common ones
    "uniform": ["train.sampler=uniform"],
    "dans (T=50, exact chain)": ["train.sampler=dans"],
    "dans (respaced, 10 steps)": ["train.sampler=dans", "diffusion.sampling_steps=10"],
    "dans (respaced 10, 25% of batch)": ["train.sampler=dans", "diffusion.sampling_steps=10", "diffusion.sample_fraction=0.25"],
    "dans (4 steps)": ["train.sampler=dans", "diffusion.sampling_steps=4"],
    "dans (4 steps, 25% of batch)": ["train.sampler=dans", "diffusion.sampling_steps=4", "diffusion.sample_fraction=0.25"],
    "dans (4 steps, 10% of batch)": ["train.sampler=dans", "diffusion.sampling_steps=4", "diffusion.sample_fraction=0.1"],
    "dhns (T=50)": ["train.sampler=dhns"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="umls")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per setting")
    ap.add_argument("--work", default="/tmp/dans_kgc_bench_cost")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    common = ["model.dim=128", "pretrain.dim=128", "train.batch_size=512", "train.num_negatives=16",
              f"data.root={work / 'data'}", "device=cpu", f"threads={args.threads}"]
    sets = [a for kv in common for a in ("--set", kv)]
    pre, dam, diff = work / "pretrain", work / "dam", work / "diffusion"
    if not (pre / "model_best.pt").exists():
        cli_main(["pretrain", "--dataset", args.dataset, "--out", str(pre), "--quiet", "--set", "pretrain.epochs=50", *sets])
    if not (dam / "entities.csv").exists():
        cli_main(["dam", "fit", "--dataset", args.dataset, "--pretrained", str(pre), "--out", str(dam), *sets])
    if not (diff / "diffusion.pt").exists():
        cli_main(["diffusion", "fit", "--dataset", args.dataset, "--pretrained", str(pre), "--dam", str(dam),
                  "--out", str(diff), "--set", "diffusion.warmstart_epochs=5", *sets])

    trainers = {}
    for name, extra in SETTINGS.items():
        cfg = load_config([], common + extra + ["train.eval_every=1000", "train.checkpoint_every=1000",
                                                 f"train.epochs={args.epochs}"])
        kg, protocol = load_kg(cfg, args.dataset)
        # dhns has no DAM and a differently conditioned denoiser: it starts untrained (joint updates only)
        stages = {} if name.startswith("dhns") else {"dam_dir": str(dam), "diffusion_dir": str(diff)}
        model, sampler = build_run(cfg, kg, pre, **stages)
        trainers[name] = Trainer(cfg, kg, model, sampler, work / "runs" / name.split()[0], torch.device("cpu"),
                                 protocol, show_progress=False)
    seconds: dict[str, list[float]] = {n: [] for n in SETTINGS}
    for epoch in range(args.epochs):
        for name, tr in trainers.items():
            t0 = time.perf_counter()
            tr._train_epoch(args.epochs)
            tr.epoch += 1
            seconds[name].append(time.perf_counter() - t0)
    base = statistics.median(seconds["uniform"])
    rows = [{"setting": n, "median_s_per_epoch": round(statistics.median(s), 4),
             "ratio_vs_uniform": round(statistics.median(s) / base, 2), "epochs": s} for n, s in seconds.items()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "method_cost", "dataset": args.dataset, "rows": rows,
              "settings": {"model": "transe", "dim": 128, "batch_size": 512, "num_negatives": 16, "threads": args.threads},
              "provenance": {"git_commit": git_commit(), "packages": package_versions(), "machine": platform.platform(),
                             "processor": platform.processor(), "command": " ".join(sys.argv)}}
    (out / f"method_cost_{args.dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# DANS-KGC training cost on {args.dataset} (CPU, {args.threads} threads, TransE d=128, batch 512, 16 negatives)",
          "", "| setting | median s/epoch | ratio vs uniform |", "|---|---:|---:|"]
    md += [f"| {r['setting']} | {r['median_s_per_epoch']:.3f} | {r['ratio_vs_uniform']:.2f}x |" for r in rows]
    md += ["", f"Command: `{' '.join(sys.argv)}`", ""]
    (out / f"method_cost_{args.dataset}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
