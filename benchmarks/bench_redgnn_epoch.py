"""Projected cost of a RED-GNN run on a dataset too large to train here (WN18RR on a CPU).

Builds RED-GNN with its recipe on the dataset (``redgnn`` of dans_kgc/recipes.yaml, its ``per_dataset`` entry for
the dataset: the published setting there; then any ``--set`` overrides), attaches one epoch's propagation graph
(the seeded ``train.fact_ratio`` re-split, as training does), times ``--steps`` training steps of the plain
1-N loss and, with ``--sampler dans``, of DANS-KGC on top (a random DAM stand-in and an untrained denoiser: the
cost, not the accuracy, is measured),
then one evaluation batch. Projects seconds per epoch (steps per epoch x median step) and the total of
``--epochs`` epochs plus one validation per ``train.eval_every``. Peak RSS of the process is reported.

    python benchmarks/bench_redgnn_epoch.py --dataset wn18rr --steps 20 --out benchmarks/results/redgnn_wn18rr
    (the committed result passed the WN18RR setting as --set model.activation=identity train.lr=0.0003
    train.lr_decay=0.994 model.gnn_dropout=0.02 train.batch_size=25, before per_dataset held it: the same run)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from recipes import recipe_sets

from dans_kgc.config import load_config
from dans_kgc.pipeline import load_kg
from dans_kgc.provenance import git_commit, package_versions
from dans_kgc.sampling import StepContext
from dans_kgc.training import Trainer, build_run, fact_split
from dans_kgc.utils import set_threads


def time_steps(trainer: Trainer, queries: torch.Tensor, steps: int, bs: int) -> list[float]:
    out = []
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(queries), generator=gen)
    trainer.model.train()
    for i in range(steps):
        pos = queries[perm[i * bs : (i + 1) * bs]]
        t0 = time.perf_counter()
        loss_rand, pos_scores, pos_head, pos = trainer._random_loss(pos)
        ctx = StepContext(
            pos=pos,
            pos_scores=pos_scores,
            model=trainer.model,
            progress=0.5,
            step=i,
            pos_scores_head=pos_head,
            loss_family=trainer.loss_family,
            loss_reduction=str(trainer.tcfg["loss_reduction"]),
        )
        loss, _ = trainer.sampler.total_loss(loss_rand, ctx)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="wn18rr")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--sampler", action="append", default=None, help="uniform (plain 1-N) and/or dans")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    samplers = args.sampler or ["uniform", "dans"]
    base = [*recipe_sets("redgnn", args.dataset), "threads=1", "train.init_from_pretrained=false", *args.sets]
    cfg0 = load_config([], base)
    set_threads(1)
    kg, protocol = load_kg(cfg0, args.dataset)
    rows: dict[str, Any] = {}
    for sampler in samplers:
        cfg = load_config([], [*base, f"train.sampler={sampler}", "diffusion.sampling_steps=10"])
        rng = np.random.default_rng(0)
        extra = (
            {
                "zeta": rng.random(kg.num_entities),
                "clusters": rng.integers(0, cfg["dam"]["num_clusters"], kg.num_entities),
            }
            if sampler == "dans"
            else {}
        )
        model, smp = build_run(cfg, kg, **extra)
        trainer = Trainer(
            cfg, kg, model, smp, Path(args.out).with_suffix(".run"), torch.device("cpu"), protocol, show_progress=False
        )
        train = torch.from_numpy(kg.train)
        graph, queries = fact_split(train, float(cfg["train"]["fact_ratio"]), torch.Generator().manual_seed(0))
        model.attach_graph(graph)
        bs = int(cfg["train"]["batch_size"])
        secs = time_steps(trainer, queries, args.steps, bs)
        steps_per_epoch = math.ceil(len(queries) / bs)
        step_s = statistics.median(secs[1:] if len(secs) > 2 else secs)
        model.eval()
        model.attach_graph(train)
        eb = int(cfg["train"]["eval_batch_size"])
        valid = torch.from_numpy(kg.valid[:eb])
        t0 = time.perf_counter()
        with torch.no_grad():
            model.score_all_tails(valid[:, 0], valid[:, 1])
            model.score_all_heads(valid[:, 1], valid[:, 2])
        eval_batch_s = time.perf_counter() - t0
        valid_s = eval_batch_s * math.ceil(len(kg.valid) / eb)
        epoch_s = step_s * steps_per_epoch
        evals = args.epochs // int(cfg["train"]["eval_every"])
        rows[sampler] = {
            "median_step_s": step_s,
            "steps_timed": len(secs),
            "steps_per_epoch": steps_per_epoch,
            "queries_per_epoch": int(len(queries)),
            "projected_epoch_s": epoch_s,
            "eval_batch_s": eval_batch_s,
            "projected_validation_s": valid_s,
            "projected_total_h": (args.epochs * epoch_s + evals * valid_s) / 3600.0,
            "epochs": args.epochs,
            "evaluations": evals,
        }
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    result = {
        "dataset": kg.name,
        "entities": int(kg.num_entities),
        "train_triples": int(len(kg.train)),
        "sets": args.sets,
        "rows": rows,
        "peak_rss_gb": peak_gb,
        "load_avg_1min": __import__("os").getloadavg()[0],
        "provenance": {
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
        f"**RED-GNN on {kg.name}: projected cost on this CPU** (threads=1, load average {result['load_avg_1min']:.1f}; "
        f"{len(kg.train)} training triples, {kg.num_entities} entities; settings: {' '.join(args.sets) or 'recipe'}; "
        f"peak RSS {peak_gb:.2f} GB)",
        "",
        "| sampler | s/step (median) | steps/epoch | projected s/epoch | validation (s) | projected total (h) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['median_step_s']:.2f} | {r['steps_per_epoch']} | {r['projected_epoch_s']:.0f} | "
            f"{r['projected_validation_s']:.0f} | {r['projected_total_h']:.1f} ({r['epochs']} epochs, "
            f"{r['evaluations']} validations) |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
