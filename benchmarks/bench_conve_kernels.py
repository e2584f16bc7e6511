"""How fast our ConvE training step can be at all: the share of it spent in the model's own kernels.

The target is ConvE training at least 2x as fast as PyKEEN at identical settings; bench_backbones.py measured
1.59x (no-gc PyKEEN). Any ConvE implementation runs the same convolution, fully connected layer and batch norms
on the same shapes; those kernels bound every implementation's step from below. This script times our shipped
step (``Trainer._random_loss`` + backward + fused Adam, the bench_backbones ConvE setting: config.yaml's
``conve_1n`` recipe on UMLS, batch 128 triples = 256 queries), profiles the same steps, and sums the self time of
those kernels (``KERNELS``: convolution, mm / addmm, batch norm, forward and backward). ``share`` = kernel self
time / all self time, both from the same profiled steps (so the same machine load); the profiler's own overhead
only adds to the denominator, so ``share`` is a lower bound. With PyKEEN's measured ratio R (read from a
bench_backbones JSON), the fastest we could be against that PyKEEN, with zero overhead of our own, is at most
R / share.

    python benchmarks/bench_conve_kernels.py --steps 40 --out benchmarks/results/bench_conve_kernels
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from recipes import recipe_sets
from torch.profiler import ProfilerActivity, profile

from dans_kgc.config import load_config
from dans_kgc.pipeline import load_kg
from dans_kgc.provenance import git_commit, package_versions
from dans_kgc.training import Trainer, build_run
from dans_kgc.utils import set_threads

# the arithmetic of ConvE itself (any implementation runs these on the same shapes)
KERNELS = (
    "aten::mm",
    "aten::addmm",
    "aten::convolution_backward",
    "aten::mkldnn_convolution",
    "aten::native_batch_norm",
    "aten::native_batch_norm_backward",
)


def one_step(trainer: Trainer, pos: torch.Tensor) -> None:
    loss, *_ = trainer._random_loss(pos)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainer.optimizer.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="umls")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128, help="triples per step (bench_backbones' ConvE setting)")
    ap.add_argument(
        "--peer",
        default="benchmarks/results/bench_backbones_t1.json",
        help="bench_backbones JSON with the measured ours / PyKEEN ratio of ConvE",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    set_threads(1)
    cfg = load_config(
        [],
        [
            *recipe_sets("conve_1n", args.dataset),
            "threads=1",
            "train.init_from_pretrained=false",
            f"train.batch_size={args.batch}",
            "device=cpu",
        ],
    )
    kg, protocol = load_kg(cfg, args.dataset)
    torch.manual_seed(0)
    model, sampler = build_run(cfg, kg)
    trainer = Trainer(
        cfg, kg, model, sampler, Path(args.out).with_suffix(".run"), torch.device("cpu"), protocol, show_progress=False
    )
    model.train()
    train = torch.from_numpy(kg.train)
    gen = torch.Generator().manual_seed(1)
    batches = [train[torch.randint(len(train), (args.batch,), generator=gen)] for _ in range(args.steps)]
    for pos in batches[:3]:  # warm-up
        one_step(trainer, pos)
    wall = []
    for pos in batches:
        t0 = time.perf_counter()
        one_step(trainer, pos)
        wall.append(time.perf_counter() - t0)
    step_s = statistics.median(wall)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for pos in batches:
            one_step(trainer, pos)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total_us = sum(self_us.values())
    kernel_us = {k: self_us.get(k, 0.0) for k in KERNELS}
    kernel_step_s = sum(kernel_us.values()) / 1e6 / len(batches)
    profiled_step_s = total_us / 1e6 / len(batches)
    share = kernel_step_s / profiled_step_s
    peer = json.loads(Path(args.peer).read_text())["models"]["conve"]["ratio"]
    bound = {name: r / share for name, r in peer.items()}
    rest = sorted(((k, v) for k, v in self_us.items() if k not in KERNELS), key=lambda kv: -kv[1])[:8]
    result = {
        "rest_top_self_s_per_step": {k: v / 1e6 / len(batches) for k, v in rest},
        "dataset": kg.name,
        "batch_triples": args.batch,
        "queries_per_step": 2 * args.batch,
        "steps": args.steps,
        "median_step_s": step_s,
        "kernel_s_per_step": kernel_step_s,
        "kernel_share_of_step": share,
        "kernel_self_s_per_step": {k: v / 1e6 / len(batches) for k, v in kernel_us.items()},
        "profiled_self_s_per_step": profiled_step_s,
        "peer_file": args.peer,
        "measured_ratio_vs_pykeen": peer,
        "ratio_bound_with_zero_overhead": bound,
        "load_avg_1min": os.getloadavg()[0],
        "provenance": {
            "command": "python benchmarks/bench_conve_kernels.py "
            + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
            "git_commit": git_commit(),
            "packages": package_versions(),
            "machine": platform.machine(),
            "threads": 1,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# ConvE: how much of our training step is ConvE's own arithmetic ({kg.name}, threads=1, "
        f"load average {result['load_avg_1min']:.1f})",
        "",
        f"- command: `{result['provenance']['command']}`; git {result['provenance']['git_commit']}",
        f"- our step ({args.batch} triples = {2 * args.batch} queries, 1-N, fused Adam): median "
        f"{step_s * 1e3:.1f} ms unprofiled; profiled, {profiled_step_s * 1e3:.1f} ms of self time per step, of "
        f"it {kernel_step_s * 1e3:.1f} ms in the model's kernels ({', '.join(KERNELS)}) = **{share:.0%}** "
        f"(a lower bound: the profiler's overhead falls on the small ops)",
        "",
        "| kernel | ms per step |",
        "|---|--:|",
    ]
    lines += [f"| {k} | {v * 1e3:.1f} |" for k, v in result["kernel_self_s_per_step"].items()]
    lines += [
        "",
        "The rest, largest first (profiled self time; the profiler adds its own overhead to each small op):",
        "",
        "| op | ms per step |",
        "|---|--:|",
    ]
    lines += [f"| {k} | {v * 1e3:.1f} |" for k, v in result["rest_top_self_s_per_step"].items()]
    lines += [
        "",
        f"Any ConvE implementation runs these kernels on the same shapes, so its step takes at least "
        f"{kernel_step_s * 1e3:.1f} ms here. Against the PyKEEN measured in `{args.peer}`:",
        "",
        "| PyKEEN variant | measured ours / PyKEEN | at most, with zero overhead of ours (ratio / share) |",
        "|---|--:|--:|",
    ]
    lines += [f"| {name} | {peer[name]:.2f}x | {bound[name]:.2f}x |" for name in peer]
    lines += [
        "",
        "The ratio R comes from another run (bench_backbones, its own machine load): the bound is an "
        "estimate, not a ratio measured side by side.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
