#!/usr/bin/env python
"""Training throughput of our backbones against PyKEEN 1.11 at identical settings, in the same run.

UMLS (RED-GNN split, training graph = facts + train, as ``bench_core.py``), CPU:

  rotate   RotatE d=128 complex, NSSA (gamma/margin 9, adversarial temperature 1), 64 uniform head-or-tail
           negatives per positive, batch 256, Adam lr 5e-3                         (PyKEEN: sLCWA, 'basic' sampler)
  complex  ComplEx d=128 complex, softplus loss, 64 negatives, batch 256, Adam 5e-3 (PyKEEN: sLCWA, SoftplusLoss)
  quate    QuatE d=64 quaternion (4 x 64 reals), softplus, 64 negatives, batch 256, Adam 5e-3
  conve    ConvE 1-N: d=200 (10x20 reshape, 20x20 image), 32 filters 3x3, dropouts 0.2/0.2/0.3, batch 128
           triples = 256 queries (tail query + reciprocal head query of each triple), softmax cross-entropy
           over all entities, label smoothing 0.1, Adam 3e-3        (PyKEEN: LCWA over per-triple queries)

Regularisers off on both sides (PyKEEN's ComplEx and QuatE have an Lp regulariser by default: disabled).
Measured: positive training triples per second (median over interleaved repetitions), ours vs PyKEEN
stock, vs PyKEEN with its per-epoch ``gc.collect()`` patched out (no-gc), and vs PyKEEN no-gc with
``Adam(fused=True)`` (the optimiser our Trainer ships with). Ratios are ours / PyKEEN (> 1 = ours faster).
One worker process per system, repetitions handed out in turn with a rotating first system
(``bench_core.py``'s machinery, imported from it).

    python benchmarks/bench_backbones.py --threads 1                     # default plan
    python benchmarks/bench_backbones.py --threads 1 --epochs 1 --reps 3 --models rotate,conve
    python benchmarks/bench_backbones.py --quick                         # smoke run (tiny subset, seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core as bc  # noqa: E402  (its workers, process helpers, data loading, provenance, median)
from bench_core import DATASETS, REPO, _quiet, dataset_view, log, median, provenance  # noqa: E402

LOADED_ABOVE = 1.5  # 1-minute load average at start or end above this: the Markdown says the box was loaded

# One entry per backbone: our --set overrides and PyKEEN's model/loss/loop, for the same settings.
MODELS: dict[str, dict[str, Any]] = {
    "rotate": {
        "label": "RotatE",
        "mode": "negative_sampling",
        "batch": 256,
        "lr": 5e-3,
        "num_neg": 64,
        "ours": [
            "model.name=rotate",
            "model.dim=128",
            "model.gamma=9.0",
            "train.loss=nssa",
            "train.adversarial_temperature=1.0",
        ],
        "pykeen_model": "RotatE",
        "pykeen_kwargs": {"embedding_dim": 128},
        "pykeen_loss": ("NSSALoss", {"margin": 9.0, "adversarial_temperature": 1.0}),
        "settings": "d=128 complex (256 reals), NSSA gamma/margin 9, adversarial temperature 1, "
        "64 uniform head-or-tail negatives, batch 256, Adam lr 5e-3",
    },
    "complex": {
        "label": "ComplEx",
        "mode": "negative_sampling",
        "batch": 256,
        "lr": 5e-3,
        "num_neg": 64,
        "ours": ["model.name=complex", "model.dim=128", "train.loss=softplus"],
        "pykeen_model": "ComplEx",
        "pykeen_kwargs": {"embedding_dim": 128, "regularizer": None},
        "pykeen_loss": ("SoftplusLoss", {}),
        "settings": "d=128 complex (256 reals), softplus loss, 64 uniform negatives, batch 256, Adam lr 5e-3, "
        "no regulariser (PyKEEN's default LpRegularizer disabled)",
    },
    "quate": {
        "label": "QuatE",
        "mode": "negative_sampling",
        "batch": 256,
        "lr": 5e-3,
        "num_neg": 64,
        "ours": ["model.name=quate", "model.dim=64", "train.loss=softplus"],
        "pykeen_model": "QuatE",
        "pykeen_kwargs": {"embedding_dim": 64, "entity_regularizer": None, "relation_regularizer": None},
        "pykeen_loss": ("SoftplusLoss", {}),
        "settings": "d=64 quaternion (256 reals), relation normalised to unit quaternions in the forward pass, "
        "softplus loss, 64 uniform negatives, batch 256, Adam lr 5e-3, no regulariser (PyKEEN's "
        "default entity/relation LpRegularizers disabled)",
    },
    "conve": {
        "label": "ConvE",
        "mode": "one_to_n",
        "batch": 128,
        "lr": 3e-3,
        "label_smoothing": 0.1,
        "ours": [
            "model.name=conve",
            "model.dim=200",
            "model.conve_filters=32",
            "model.conve_kernel=3",
            "model.input_dropout=0.2",
            "model.feature_dropout=0.2",
            "model.hidden_dropout=0.3",
            "train.mode=one_to_n",
            "train.label_smoothing=0.1",
        ],
        "pykeen_model": "ConvE",
        "pykeen_kwargs": {
            "embedding_dim": 200,
            "output_channels": 32,
            "kernel_height": 3,
            "kernel_width": 3,
            "input_dropout": 0.2,
            "feature_map_dropout": 0.2,
            "output_dropout": 0.3,
        },
        "pykeen_loss": ("CrossEntropyLoss", {}),
        "settings": "1-N: d=200 (10x20, stacked 20x20 image), 32 filters 3x3, dropouts 0.2/0.2/0.3, batch 128 "
        "triples = 256 queries ((h, r, ?) and (t, r^-1, ?) of each triple), softmax cross-entropy "
        "over all 135 entities, label smoothing 0.1, Adam lr 3e-3",
    },
}

# PyKEEN variants measured against ours (label -> spec keys); 'ours' is always measured.
PYKEEN_VARIANTS = {
    "pykeen_stock": {"gc": True},
    "pykeen_nogc": {"gc": False},
    "pykeen_nogc_fused_adam": {"gc": False, "fused_adam": True},
}
# ConvE only, informational: PyKEEN's native LCWA (queries grouped by unique (h, r), multi-hot targets).
GROUPED = "pykeen_nogc_lcwa_grouped"


# ---------------------------------------------------------------------------------------------
# workers (bench_core's, with the backbone and loop taken from MODELS)
# ---------------------------------------------------------------------------------------------
class OursBackboneWorker(bc.OursWorker):
    """Our Trainer as shipped (fused Adam), built from ``load_config`` overrides + ``build_run``;
    ``train`` (timing of ``Trainer._train_epoch``) is bench_core's."""

    def __init__(self, spec: dict[str, Any]):
        import torch

        from dans_kgc.config import load_config
        from dans_kgc.training import Trainer, build_run

        m = MODELS[spec["model"]]
        self.torch = torch
        self.full, self.kg = dataset_view(spec)
        sets = [
            *m["ours"],
            f"train.batch_size={m['batch']}",
            f"train.lr={m['lr']}",
            "train.sampler=uniform",
            f"train.num_negatives={m.get('num_neg', 1)}",
            "model.regularizer=none",
            f"seed={spec['seed']}",
            "train.epochs=100000",
            "train.eval_every=100000",
            "train.checkpoint_every=100000",
            f"threads={spec['threads']}",
        ]
        if m["mode"] == "one_to_n":  # no negatives and no pairwise loss in 1-N training
            sets = [x for x in sets if not x.startswith("train.num_negatives=")]
        self.sets = sets
        self.cfg = load_config([], sets)
        model, sampler = build_run(self.cfg, self.kg)
        self.tmp = tempfile.TemporaryDirectory(prefix="bench_backbones_")
        self.trainer = Trainer(
            self.cfg, self.kg, model, sampler, self.tmp.name, torch.device("cpu"), spec["protocol"], show_progress=False
        )
        self.model = model

    def describe(self) -> dict[str, Any]:
        return {
            "overrides": self.sets,
            "optimizer": type(self.trainer.optimizer).__name__,
            "fused_adam": bool(self.trainer.optimizer.defaults.get("fused")),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
        }


class PyKEENBackboneWorker(bc.PyKEENWorker):
    """PyKEEN 1.11 at the same settings; ``train`` (epochs + 1 run, post_epoch-to-post_epoch times) is
    bench_core's, ``_train_epochs`` passes this model's batch size, label smoothing and drop_last=False."""

    def __init__(self, spec: dict[str, Any]):
        import torch
        from pykeen import losses as pk_losses
        from pykeen import models as pk_models
        from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop
        from pykeen.training.callbacks import TrainingCallback
        from pykeen.triples import CoreTriplesFactory

        if not spec.get("gc", True):  # pykeen calls gc.collect() after every epoch; patch it out (as bench_core)
            import types

            import pykeen.training.training_loop as tl

            tl.gc = types.SimpleNamespace(collect=lambda *a, **k: 0)
        m = MODELS[spec["model"]]
        self.torch, self.spec, self.m = torch, spec, m
        self.full, self.kg = dataset_view(spec)
        one_to_n = m["mode"] == "one_to_n"
        torch.manual_seed(spec["seed"])
        self.tf = CoreTriplesFactory(
            mapped_triples=torch.as_tensor(self.kg.train),
            num_entities=self.kg.num_entities,
            num_relations=self.kg.num_relations,
            create_inverse_triples=one_to_n,
        )
        loss_name, loss_kw = m["pykeen_loss"]
        self.model = getattr(pk_models, m["pykeen_model"])(
            triples_factory=self.tf,
            **m["pykeen_kwargs"],
            loss=getattr(pk_losses, loss_name)(**loss_kw),
            random_seed=spec["seed"],
        )
        opt = dict(
            optimizer="adam", optimizer_kwargs=dict(lr=m["lr"], **({"fused": True} if spec.get("fused_adam") else {}))
        )
        if not one_to_n:
            self.loop = SLCWATrainingLoop(
                model=self.model,
                triples_factory=self.tf,
                **opt,
                negative_sampler="basic",
                negative_sampler_kwargs=dict(num_negs_per_pos=m["num_neg"]),
                automatic_memory_optimization=False,
            )
            self.batch_size, self.queries_per_batch = m["batch"], m["batch"]
        else:
            cls = LCWATrainingLoop if spec.get("grouped") else per_triple_lcwa_loop(LCWATrainingLoop)
            self.loop = cls(model=self.model, triples_factory=self.tf, **opt, automatic_memory_optimization=False)
            # ours scores 2 queries per triple in a batch of m['batch'] triples: the same 2*batch queries per step
            self.batch_size, self.queries_per_batch = 2 * m["batch"], 2 * m["batch"]
        self.trained = False

        class EpochMarks(TrainingCallback):
            def __init__(self):
                super().__init__()
                self.marks: list[float] = []
                self.losses: list[float] = []

            def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
                self.marks.append(time.perf_counter())
                self.losses.append(epoch_loss)

        self._marks_cls = EpochMarks

    def _train_epochs(self, epochs: int) -> tuple[float, list[float], list[float]]:
        cb = self._marks_cls()
        t0 = time.perf_counter()
        self.loop.train(
            triples_factory=self.tf,
            num_epochs=self.loop._epoch + epochs,
            batch_size=self.batch_size,
            label_smoothing=float(self.m.get("label_smoothing", 0.0)),
            drop_last=False,
            use_tqdm=False,
            use_tqdm_batch=False,
            pin_memory=False,
            callbacks=[cb],
            continue_training=self.trained,
        )
        self.trained = True
        return t0, cb.marks, cb.losses

    def describe(self) -> dict[str, Any]:
        inst = (
            self.loop._create_training_data_loader(
                self.tf, None, batch_size=self.batch_size, shuffle=False, drop_last=False
            )
            if self.m["mode"] == "one_to_n"
            else None
        )
        return {
            "model": type(self.model).__name__,
            "loop": type(self.loop).__name__,
            "loss": type(self.model.loss).__name__,
            "batch_size": self.batch_size,
            "queries_per_epoch": len(inst.dataset) if inst is not None else None,
            "regularizers": [
                type(r).__name__ for r in self.model.modules() if type(r).__name__.endswith("Regularizer")
            ],
            "inverse_triples": bool(self.tf.create_inverse_triples),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "optimizer_kwargs": {k: v for k, v in self.loop.optimizer.defaults.items() if k in ("lr", "fused")},
        }


def per_triple_lcwa_loop(base: type) -> type:
    """PyKEEN's LCWA loop over one query per (triple, side), as our 1-N Trainer scores them.

    PyKEEN's own LCWA groups the (forward + inverse) triples by unique (h, r) with multi-hot targets
    (1,569 queries per UMLS epoch instead of 2 x 5,327). Here the instances are the 2N rows of
    ``_add_inverse_triples_if_necessary`` (forward (h, r, t) and inverse (t, r^-1, h)), each with its
    one answer; PyKEEN's own ``LCWAInstances`` class, collation and scoring (``score_t``) are kept.
    """
    import scipy.sparse
    from pykeen.triples.instances import LCWAInstances
    from torch.utils.data import DataLoader

    class PerTripleLCWATrainingLoop(base):
        def _create_training_data_loader(self, triples_factory, sampler, **kwargs):  # noqa: ANN001
            assert not sampler
            kwargs.pop("sampler", None)
            rows = triples_factory._add_inverse_triples_if_necessary(
                mapped_triples=triples_factory.mapped_triples
            ).numpy()
            n = rows.shape[0]
            onehot = scipy.sparse.csr_matrix(
                (np.ones(n, dtype=np.float32), (np.arange(n), rows[:, 2])), shape=(n, triples_factory.num_entities)
            )
            return DataLoader(dataset=LCWAInstances(pairs=rows[:, :2], compressed=onehot), **kwargs)

    return PerTripleLCWATrainingLoop


def _worker_main(conn, spec: dict[str, Any]) -> None:
    bc.serve_worker(conn, spec, lambda s: OursBackboneWorker(s) if s["system"] == "ours" else PyKEENBackboneWorker(s))


class Worker(bc.Worker):
    """bench_core's process wrapper (same protocol), started on this file's worker main."""

    target = staticmethod(_worker_main)


# ---------------------------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------------------------
def bench_model(args, key: str, plan: dict[str, Any]) -> dict[str, Any]:
    m = MODELS[key]
    base = {
        **DATASETS["umls"],
        "data_root": args.data_root,
        "threads": args.threads,
        "seed": 0,
        "train_subset": plan["train_subset"],
        "model": key,
    }
    specs = [dict(base, system="ours", label="ours")]
    specs += [dict(base, system="pykeen", label=k, **v) for k, v in PYKEEN_VARIANTS.items()]
    if key == "conve" and plan["grouped_lcwa"]:
        specs.append(dict(base, system="pykeen", label=GROUPED, gc=False, grouped=True))
    log(f"{key}: starting {len(specs)} workers")
    workers = [Worker(s) for s in specs]
    per: dict[str, list[float]] = {w.name: [] for w in workers}
    calls: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workers}
    try:
        described = {w.name: w("describe") for w in workers}
        for w in workers:  # warm-up of ours (allocator, lazy init); PyKEEN's first epoch of every call is dropped
            if plan["warmup"] and w.name == "ours":
                w("train", plan["warmup"])
        for rep in range(plan["reps"]):
            k = rep % len(workers)
            for w in workers[k:] + workers[:k]:  # rotate who goes first
                r = w("timed", "train", plan["epochs"])
                per[w.name] += r["epoch_seconds"]
                calls[w.name].append(
                    {
                        "epoch_seconds": [round(x, 5) for x in r["epoch_seconds"]],
                        "losses": r["losses"],
                        "wall_seconds": r["wall_seconds"],
                        "process_cpu_seconds": r["process_cpu_seconds"],
                        "first_interval": r.get("first_interval"),
                        "load_average": os.getloadavg(),
                    }
                )
            log(f"{key} rep {rep + 1}/{plan['reps']}: " + ", ".join(f"{n} {median(v):.4f}s" for n, v in per.items()))
    finally:
        for w in workers:
            w.close()
    n = len(dataset_view(base)[1].train)
    q_ours = 2 * n if m["mode"] == "one_to_n" else n  # scored positive queries per epoch
    s_med = {k: median(v) for k, v in per.items()}
    queries = {k: (described[k].get("queries_per_epoch") or q_ours) if k != "ours" else q_ours for k in per}
    res: dict[str, Any] = {
        "model": m["label"],
        "mode": m["mode"],
        "settings": m["settings"],
        "num_train_triples": n,
        "queries_per_epoch": queries,
        "systems": described,
        "s_per_epoch_median": s_med,
        "s_per_epoch_all": {k: [round(x, 5) for x in v] for k, v in per.items()},
        "pos_triples_per_s": {k: n / v for k, v in s_med.items()},
        "queries_per_s": {k: queries[k] / v for k, v in s_med.items()},
        "loss_after_timed_epochs": {
            k: c[-1]["losses"][-1] if c and c[-1]["losses"] else None for k, c in calls.items()
        },
        "cpu_share": {
            k: sum(c["process_cpu_seconds"] for c in v) / max(sum(c["wall_seconds"] for c in v), 1e-9)
            for k, v in calls.items()
        },
        "calls": calls,
    }
    tp = res["pos_triples_per_s"]
    res["ratio"] = {k: tp["ours"] / tp[k] for k in PYKEEN_VARIANTS}
    if GROUPED in tp:  # different work per epoch: compare per scored query
        res["ratio_queries_vs_grouped_lcwa"] = res["queries_per_s"]["ours"] / res["queries_per_s"][GROUPED]
    return res


def plan_for(args) -> dict[str, Any]:
    if args.quick:
        return {
            "train_subset": 512,
            "warmup": 1,
            "epochs": args.epochs or 1,
            "reps": args.reps or 1,
            "grouped_lcwa": not args.no_grouped,
        }
    return {
        "train_subset": 0,
        "warmup": 1,
        "epochs": args.epochs or 2,
        "reps": args.reps or 3,
        "grouped_lcwa": not args.no_grouped,
    }


def markdown(res: dict[str, Any]) -> str:
    pv = res["provenance"]
    la0, la1 = pv["load_average_start"], res.get("load_average_end", [float("nan")] * 3)
    plan = res["plan"]
    lines = [f"# Backbone training throughput: dans_kgc vs PyKEEN {pv['versions']['pykeen']}", ""]
    if res.get("loaded"):
        lines += [
            f"> **The machine was loaded during this run** (1-minute load average {la0[0]:.2f} at the start, "
            f"{la1[0]:.2f} at the end, on {pv['cpu_count']} cores; above {LOADED_ABOVE}). Other jobs competed "
            "for the cores: absolute seconds are inflated and noisy; the interleaved ratios are the "
            "usable result, and even they move with the load between runs.",
            "",
        ]
    lines += [
        f"- command: `{pv['command']}`  ({'quick smoke run, ' if res['quick'] else ''}{plan['reps']} "
        f"repetitions x {plan['epochs']} timed epochs per system; ours after {plan['warmup']} warm-up epoch(s), "
        "PyKEEN runs epochs + 1 per call and drops the first interval (train() set-up + first epoch))",
        f"- git {pv['git_commit']}, torch {pv['versions']['torch']}, pykeen {pv['versions']['pykeen']}, "
        f"numpy {pv['versions']['numpy']}, Python {pv['python']}",
        f"- CPU: {pv['cpu']} ({pv['cpu_count']} cores), torch threads {pv['torch_threads']}; load average at "
        f"start {', '.join(f'{x:.2f}' for x in la0)}, at end {', '.join(f'{x:.2f}' for x in la1)}; "
        f"{res.get('wall_seconds', 0):.0f} s wall",
        "- data: UMLS, RED-GNN split, training graph = facts + train"
        + (f" (quick: a fixed subset of {plan['train_subset']} triples)" if plan["train_subset"] else ""),
        "",
        "Positive training triples per second, median over every timed epoch; ratios are ours / PyKEEN "
        "(> 1 = ours faster). Ours = `Trainer._train_epoch` as shipped (fused Adam). PyKEEN stock = "
        "what a PyKEEN user gets; no-gc = its per-epoch `gc.collect()` patched out (the kernel-level "
        "comparison); no-gc fused = also `Adam(fused=True)`, the same optimiser as ours.",
        "",
        "| backbone | triples / epoch | queries / epoch | ours s/epoch | PyKEEN stock | PyKEEN no-gc | "
        "PyKEEN no-gc fused | ours triples/s | ours / stock | ours / no-gc | ours / no-gc fused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["models"].values():
        s, ra = r["s_per_epoch_median"], r["ratio"]
        lines.append(
            f"| {r['model']} | {r['num_train_triples']:,} | {r['queries_per_epoch']['ours']:,} | "
            f"{s['ours']:.3f} | {s['pykeen_stock']:.3f} | {s['pykeen_nogc']:.3f} | "
            f"{s['pykeen_nogc_fused_adam']:.3f} | {r['pos_triples_per_s']['ours']:,.0f} | "
            f"**{ra['pykeen_stock']:.2f}x** | **{ra['pykeen_nogc']:.2f}x** | {ra['pykeen_nogc_fused_adam']:.2f}x |"
        )
    conve = res["models"].get("conve")
    if conve and GROUPED in conve["s_per_epoch_median"]:
        q = conve["queries_per_epoch"]
        lines += [
            "",
            f"ConvE, informational: PyKEEN's native LCWA groups the queries by unique (h, r) with multi-hot "
            f"targets, {q[GROUPED]:,} queries per epoch instead of {q['ours']:,} (different work, so only the "
            f"per-query rate compares): PyKEEN no-gc grouped {conve['s_per_epoch_median'][GROUPED]:.3f} s/epoch, "
            f"{conve['queries_per_s'][GROUPED]:,.0f} queries/s vs ours {conve['queries_per_s']['ours']:,.0f} "
            f"queries/s (**{conve['ratio_queries_vs_grouped_lcwa']:.2f}x**).",
        ]
    lines += ["", "Per backbone (identical on both sides unless listed under differences):", ""]
    for r in res["models"].values():
        lines.append(
            f"- **{r['model']}**: {r['settings']}. Loss after the timed epochs (sanity, not comparable "
            "across systems: see the differences): "
            + ", ".join(f"{k} {v:.4f}" for k, v in r["loss_after_timed_epochs"].items() if v is not None)
            + ". CPU share of the timed calls (process CPU s / wall s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_share"].items())
            + "."
        )
    lines += (
        ["", "Settings differences that could not be removed:", ""]
        + [f"- {d}" for d in res.get("differences", DIFFERENCES)]
        + [""]
    )
    return "\n".join(lines) + "\n"


DIFFERENCES = [
    "Optimiser: ours is the shipped Trainer (`Adam(fused=True)`); PyKEEN's default is unfused Adam. The "
    "'no-gc fused' column removes this difference.",
    "RotatE relations: ours stores a phase per coordinate (cos/sin in every forward); PyKEEN stores complex "
    "numbers and re-projects them to unit modulus after every step (`complex_normalize` constrainer). "
    "Initialisation also differs (ours xavier-uniform entities / uniform phases; PyKEEN xavier-uniform / "
    "`init_phases`).",
    "Loss normalisation: PyKEEN's SoftplusLoss averages softplus over the B x (1 + 64) scores (the positive "
    "weighs 1/65); ours adds the positive term to the mean over negatives. PyKEEN's NSSALoss averages its "
    "positive and negative halves. Same cost, different loss values.",
    "ComplEx initialisation: PyKEEN `normal_` (unit variance per complex coordinate, so large initial scores and "
    "losses) vs ours xavier-uniform.",
    "QuatE: PyKEEN's score is `-<h (x) r^, t>` (a sign flip in its code) and its initialiser is "
    "`init_quaternions`; ours is `<h (x) r^, t>` with xavier-uniform rows. Both normalise the relation to "
    "unit quaternions in the forward pass.",
    "ConvE: PyKEEN's loop is LCWA over one query per (triple, side) (2N queries, one-hot targets, PyKEEN's "
    "own `LCWAInstances` data path); it shuffles the 2N queries independently, so a step mixes tail and head "
    "queries of different triples, and BatchNorm sees one batch of 256 queries where ours normalises the 128 "
    "tail and the 128 head queries in two forward passes. PyKEEN's label smoothing goes through "
    "`torch.nn.functional.cross_entropy(label_smoothing=0.1)` as ours; its head queries use inverse relations "
    "as ours (`create_inverse_triples=True`). `drop_last=False` is passed explicitly (PyKEEN drops the last "
    "batch by default for BatchNorm models; ours keeps it). Entity initialisation: xavier-normal (PyKEEN) vs "
    "xavier-uniform (ours).",
    "Negatives: both replace the head or the tail with a uniform random entity, unfiltered, 50/50 overall; "
    "PyKEEN's 'basic' sampler replaces the head in the first half of the batch's flattened B x 64 negatives "
    "(all negatives of the first B/2 positives) and the tail in the rest, ours draws the side per negative.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every worker (both systems)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {tuple(MODELS)}")
    ap.add_argument("--epochs", type=int, default=0, help="timed epochs per repetition (default 2; quick 1)")
    ap.add_argument("--reps", type=int, default=0, help="interleaved repetitions (default 3; quick 1)")
    ap.add_argument("--no-grouped", action="store_true", help="skip the informational PyKEEN grouped-LCWA ConvE row")
    ap.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results" / "bench_backbones"),
        help="output path stem: writes STEM_t{threads}[_quick].json and .md",
    )
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (512 training triples, 1 epoch, 1 rep)")
    ap.add_argument("--data-root", default=str(REPO / "data"), help="where datasets are fetched (from the mirror)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # exit normally: daemon workers are terminated
    models = [s.strip() for s in args.models.split(",") if s.strip()]
    unknown = set(models) - set(MODELS)
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}; choose from {tuple(MODELS)}")
    _quiet()
    plan = plan_for(args)
    res: dict[str, Any] = {
        "quick": args.quick,
        "provenance": provenance(args),
        "plan": plan,
        "loaded_threshold_1min": LOADED_ABOVE,
        "differences": DIFFERENCES,
        "models": {},
    }
    stem = Path(f"{args.out}_t{args.threads}" + ("_quick" if args.quick else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for key in models:
        res["models"][key] = bench_model(args, key, plan)
        res["load_average_end"] = os.getloadavg()
        res["loaded"] = max(res["provenance"]["load_average_start"][0], res["load_average_end"][0]) > LOADED_ABOVE
        res["wall_seconds"] = round(time.perf_counter() - t0, 1)
        res["complete"] = key == models[-1]
        # written after every model, so a stopped run keeps what it measured
        stem.with_suffix(".json").write_text(json.dumps(res, indent=2, default=float) + "\n")
        stem.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    log(f"wrote {stem}.json and {stem}.md ({res['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
