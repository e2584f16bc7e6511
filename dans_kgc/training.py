"""The training loop: mini-batch Adam, pluggable samplers and losses, model selection on
validation MRR, resumable checkpoints and a per-epoch trace.

Resuming: a checkpoint holds model, sampler, optimiser, every RNG state, the best model so far
and the trace, so a run killed after epoch k and resumed gives the same result as one that
never stopped (same seed, same device).
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dans_kgc.checkpoints import BEST_MODEL, init_from_checkpoint, read_checkpoint, stage_record_of
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.evaluation import FilterIndex, evaluate, filter_splits
from dans_kgc.losses import LOSSES, SubsamplingWeights, one_to_n_cross_entropy
from dans_kgc.models import KGEModel, build_model
from dans_kgc.sampling import NegativeSampler, StepContext, build_sampler
from dans_kgc.sampling.dans import DiffusionSampler
from dans_kgc.stages import DRAW_ONLY_SAMPLERS, backbone_of, check_record
from dans_kgc.utils import seed_everything, torch_save, write_text

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
TRACE = "trace.csv"
MODES = ("negative_sampling", "one_to_n")
VALID_HITS = ("hits@1", "hits@3", "hits@10")  # trace columns valid_hits@k beside valid_mrr


class TrainingDivergedError(RuntimeError):
    """The loss became NaN/inf; the message names the run, epoch and step."""


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    return {
        "sampler": gen.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(gen: torch.Generator, state: Mapping[str, Any]) -> None:
    gen.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# Keys that may differ between a run and its resumption: budgets and where/how fast it runs, the
# diagnostics, which only add trace columns (their own generator; the run itself is unchanged), and
# where the run is tracked.
RESUMABLE_CHANGES = {"train.epochs", "train.max_seconds", "train.patience", "threads", "device"}
RESUMABLE_PREFIXES = ("diagnostics", "tracker")


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs (ignoring RESUMABLE_CHANGES)."""
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _config_changes(a, b, path + ".")
        elif a != b and path not in RESUMABLE_CHANGES and path.split(".")[0] not in RESUMABLE_PREFIXES:
            out.append(f"{path}: {a!r} -> {b!r}")
    return out


def fact_split(
    triples: torch.Tensor, fact_ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random split of ``triples`` into (propagation graph: ``int(fact_ratio * n)`` triples, queries: the rest),
    drawn from ``generator`` (the run's checkpointed one, so a resumed run draws the same splits)."""
    perm = torch.randperm(len(triples), generator=generator)
    k = int(fact_ratio * len(triples))
    return triples[perm[:k]], triples[perm[k:]]


class Trainer:
    def __init__(
        self,
        cfg: Mapping[str, Any],
        kg: KnowledgeGraph,
        model: KGEModel,
        sampler: NegativeSampler,
        out_dir: str | Path,
        device: torch.device,
        protocol: str,
        show_progress: bool = True,
        on_validation: Callable[[int, float], None] | None = None,
        on_epoch: Sequence[Callable[[Mapping[str, Any]], None]] = (),
    ):
        self.cfg = cfg
        self.tcfg = cfg["train"]
        self.kg = kg
        self.model = model.to(device)
        self.sampler = sampler.to(device)
        self.out = Path(out_dir)
        self.device = device
        self.protocol = protocol
        self.show_progress = show_progress
        self.loss_fn = LOSSES[self.tcfg["loss"]]
        self.mode = self.tcfg["mode"]
        if self.mode not in MODES:
            raise ValueError(f"train.mode = {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.mode == "one_to_n" and sampler.name in DRAW_ONLY_SAMPLERS:
            raise ValueError(
                f"train.mode = one_to_n scores every entity, so sampler '{sampler.name}' (which only "
                "chooses discrete negatives) would change nothing; use train.sampler=uniform for plain "
                "1-N, or a sampler that adds loss terms (dans, dhns)"
            )
        if self.mode == "one_to_n" and getattr(sampler, "base_sampler", "uniform") != "uniform":
            raise ValueError(
                f"train.mode = one_to_n has no random negatives to weight, so dans.base_sampler = "
                f"{sampler.base_sampler} would change nothing; set dans.base_sampler=uniform"
            )
        if self.mode == "one_to_n" and self.tcfg.get("filter_negatives", False):
            raise ValueError(
                "train.filter_negatives = true: train.mode = one_to_n draws no random negatives to "
                "filter (every entity is scored); set train.filter_negatives=false"
            )
        if self.mode == "one_to_n" and self.tcfg.get("subsampling", False):
            raise ValueError(
                "train.subsampling = true weights the positives of negative sampling (RotatE's "
                "recipe); train.mode = one_to_n does not use it: set train.subsampling=false"
            )
        self.subsampling: SubsamplingWeights | None = (
            SubsamplingWeights(torch.from_numpy(kg.train), kg.num_relations)
            if self.tcfg.get("subsampling", False)
            else None
        )
        if self.mode == "negative_sampling" and getattr(model, "reciprocal", False):
            raise ValueError(
                f"model.name = {model.name} scores head queries through inverse relations; negative "
                "sampling would push only the tail-side positive: use train.mode=one_to_n"
            )
        mcfg = cfg["model"]
        self.regularizer, self.reg_weight = str(mcfg["regularizer"]), float(mcfg["reg_weight"])
        if self.regularizer not in ("none", "n3", "l2"):
            raise ValueError(f"model.regularizer = {self.regularizer!r}; expected none, n3 or l2")
        self.stage_record: dict[str, Any] | None = None  # set by the pretrain command; saved with the best model
        # weight decay and lr decay act on the backbone's group only (RED-GNN's lamb and decay_rate)
        groups = [
            {
                "params": list(model.parameters()),
                "lr": self.tcfg["lr"],
                "weight_decay": float(self.tcfg["weight_decay"]),
            }
        ]
        sampler_params = [p for p in sampler.parameters() if p.requires_grad]
        if sampler_params:
            groups.append({"params": sampler_params, "lr": getattr(sampler, "learning_rate", self.tcfg["lr"])})
        # fused: one kernel per step instead of ~8 passes over the tables (2-4x faster Adam on CPU)
        self.optimizer = torch.optim.Adam(groups, fused=True)
        self.train_triples = torch.from_numpy(kg.train)
        self.fact_ratio = float(self.tcfg["fact_ratio"])
        if self.fact_ratio and not getattr(model, "needs_graph", False):
            raise ValueError(
                f"train.fact_ratio = {self.fact_ratio} re-splits the propagation graph of a graph backbone "
                f"(model.name=redgnn); model.name = {model.name} has none: set train.fact_ratio=0"
            )
        self.model.attach_graph(self.train_triples)
        self.valid_filter = FilterIndex(
            kg.all_true(filter_splits(protocol, "valid")), kg.num_entities, kg.num_relations
        )
        self.epoch = 0
        self.step = 0
        self.best: dict[str, Any] = {"valid_mrr": -math.inf, "epoch": 0, "state": None}
        self.bad_evals = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.resumed_from: int | None = None
        self.hardness_probe = self._hardness_probe()
        # called with (epoch, valid MRR) after every validation; it may raise to stop the run (dans-kgc tune's
        # pruner raises optuna.TrialPruned), so it runs before that epoch's checkpoint is written
        self.on_validation = on_validation
        # called with each epoch's trace row as it joins the trace (experiment trackers, dans_kgc/trackers.py)
        self.on_epoch = list(on_epoch)

    def _hardness_probe(self) -> Any:
        """Band hardness measured at every validation (trace columns band{k}_active / _outscore / _quantile)
        for a diffusion sampler when ``diagnostics.triples`` > 0; its draws never touch the run's generators."""
        if not isinstance(self.sampler, DiffusionSampler):
            return None
        dcfg = self.cfg.get("diagnostics") or {}
        triples = int(dcfg.get("triples", 0) or 0)
        if triples <= 0:
            return None
        from dans_kgc.diagnostics import HardnessProbe

        return HardnessProbe(self.kg, triples, int(dcfg.get("seed", 0) or 0))

    # --- checkpoints --------------------------------------------------------------------
    def _checkpoint(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "sampler": self.sampler.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "rng": _rng_state(self.sampler.generator),
            "config": dict(self.cfg),
        }

    def save_checkpoint(self) -> None:
        torch_save(self._checkpoint(), self.out / CHECKPOINT)

    def load_checkpoint(self) -> bool:
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        ck = read_checkpoint(
            path,
            self.device,
            remedy="delete it and rerun the same command to start the run over (the epochs it held are lost)",
        )
        changed = _config_changes(ck.get("config", {}), self.cfg)
        if changed:
            raise ValueError(
                f"{path}: checkpoint was written with other settings ({', '.join(changed)}); "
                "resume with the run's own config, or delete the checkpoint to start over"
            )
        self.model.load_state_dict(ck["model"])
        self.sampler.load_state_dict(ck["sampler"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.epoch, self.step = ck["epoch"], ck["step"]
        self.best, self.bad_evals, self.history = ck["best"], ck["bad_evals"], ck["history"]
        self.train_seconds = ck["train_seconds"]
        _set_rng_state(self.sampler.generator, ck["rng"])
        self.resumed_from = self.epoch
        return True

    def carry_optimizer(self, stage0: str | Path) -> str:
        """Start Adam from Stage 0's state of the backbone's parameters (``train.resume_optimizer``): the moments
        and step counts of that run's last checkpoint, so a continued run goes on as one uninterrupted run would
        (no fresh bias-corrected first steps). This run's learning rate and the sampler's own group stay as they
        are. Stage 0's best model (this run's start) must be its last epoch: the moments belong to those weights.
        Returns the checkpoint's path (provenance)."""
        path = Path(stage0) / CHECKPOINT
        remedy = "rerun the Stage-0 job that wrote it, or set train.resume_optimizer=false"
        ck = read_checkpoint(path, self.device, remedy=remedy)
        best, last = int(ck["best"]["epoch"]), int(ck["epoch"])
        if best != last:
            raise ValueError(
                f"{path}: Stage 0's best model is from epoch {best}, its last checkpoint from epoch {last}, so its "
                "Adam moments belong to other weights than this run starts from; set train.resume_optimizer=false"
            )
        saved = ck["optimizer"]
        ids, params = saved["param_groups"][0]["params"], self.optimizer.param_groups[0]["params"]
        shapes = [tuple(p.shape) for p in params]
        moments = [saved["state"].get(i, {}).get("exp_avg") for i in ids]
        if len(ids) != len(params) or any(
            m is not None and tuple(m.shape) != s for m, s in zip(moments, shapes, strict=True)
        ):
            raise ValueError(
                f"{path}: Stage 0's optimizer holds other parameters than this backbone ({len(ids)} tensors; this "
                f"run: {len(params)}); train.resume_optimizer needs Stage 0 to train this same backbone"
            )
        for i, param in zip(ids, params, strict=True):
            if i in saved["state"]:
                self.optimizer.state[param] = {
                    k: v.detach().clone().to(param.device) if torch.is_tensor(v) else v
                    for k, v in saved["state"][i].items()
                }
        return str(path)

    # --- one epoch ----------------------------------------------------------------------
    def _epoch_queries(self) -> torch.Tensor:
        """The epoch's training triples; under ``train.fact_ratio`` the rest of a seeded re-split whose
        other part (``fact_ratio`` of the training graph) becomes the model's propagation graph."""
        if not self.fact_ratio:
            return self.train_triples
        graph, queries = fact_split(self.train_triples, self.fact_ratio, self.sampler.generator)
        self.model.attach_graph(graph.to(self.device))
        return queries

    def _set_epoch_lr(self) -> None:
        """lr of epoch e (0-based) = lr * lr_decay**e: a function of the epoch, so a resumed run agrees."""
        decay = float(self.tcfg["lr_decay"])
        if decay != 1.0:
            self.optimizer.param_groups[0]["lr"] = self.tcfg["lr"] * decay**self.epoch

    def _train_epoch(self, epochs: int) -> dict[str, float]:
        self.model.train()
        self._set_epoch_lr()
        queries = self._epoch_queries()
        n = len(queries)
        bs = self.tcfg["batch_size"]
        perm = torch.randperm(n, generator=self.sampler.generator)
        total, count = 0.0, 0
        extra: dict[str, float] = {}
        for i in range(0, n, bs):
            pos = queries[perm[i : i + bs]]
            loss_rand, pos_scores, pos_scores_head, pos = self._random_loss(pos)
            loss_rand = loss_rand + self.model.regularization(pos, self.regularizer, self.reg_weight)
            progress = (self.epoch + i / n) / max(epochs, 1)
            ctx = StepContext(
                pos=pos,
                pos_scores=pos_scores,
                model=self.model,
                progress=progress,
                step=self.step,
                pos_scores_head=pos_scores_head,
                loss_family=self.loss_family,
                loss_reduction=str(self.tcfg["loss_reduction"]),
            )
            loss, logs = self.sampler.total_loss(loss_rand, ctx)
            loss_value = loss.item()  # one host sync per step, also used for the finiteness check
            if not math.isfinite(loss_value):
                raise TrainingDivergedError(
                    f"run {self.out}: loss is {loss_value} at epoch {self.epoch + 1}, step {self.step} "
                    f"(sampler {self.sampler.name}, model {self.model.name}, lr {self.tcfg['lr']})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.model.post_step()
            self.sampler.after_step(pos, self.model)
            self.step += 1
            total += loss_value * len(pos)
            count += len(pos)
            for k, v in logs.items():
                extra[k] = extra.get(k, 0.0) + v * len(pos)
        out = {"loss": total / max(count, 1)}
        out.update({k: v / max(count, 1) for k, v in extra.items()})
        out.update(self.sampler.epoch_logs())
        return out

    @property
    def loss_family(self) -> str:
        """How L_rand pushes a negative, so a generated one is pushed alike (``losses.band_loss``)."""
        if self.mode == "one_to_n":
            return "softmax"
        return "margin" if self.tcfg["loss"] == "margin" else "softplus"

    def _random_loss(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``L_rand`` of a batch of positives, their tail- and head-side scores, and the positives on the device.

        negative_sampling: the configured loss over the sampler's discrete negatives.
        one_to_n: softmax cross-entropy of each tail query (h, r, ?) and head query (?, r, t)
        (the reciprocal view) against every entity, with label smoothing.
        """
        if self.mode == "one_to_n":
            pos = pos.to(self.device)
            tails = self.model.score_all_tails(pos[:, 0], pos[:, 1])
            heads = self.model.score_all_heads(pos[:, 1], pos[:, 2])
            scores, targets = torch.cat([tails, heads]), torch.cat([pos[:, 2], pos[:, 0]])
            loss = one_to_n_cross_entropy(
                scores, targets, float(self.tcfg["label_smoothing"]), self.tcfg["loss_reduction"]
            )
            return loss, tails.gather(1, pos[:, 2:3]).squeeze(1), heads.gather(1, pos[:, 0:1]).squeeze(1), pos
        neg = self.sampler.corrupt(pos).to(self.device)
        pos = pos.to(self.device)
        pos_scores, neg_scores = self.model.score_positive_and_corrupted(pos, neg)
        weights = self.sampler.negative_weights(neg_scores)
        loss = self.loss_fn(
            pos_scores,
            neg_scores,
            weights,
            margin=self.tcfg["margin"],
            adversarial_temperature=self.tcfg["adversarial_temperature"],
            row_weights=None if self.subsampling is None else self.subsampling(pos),
        )
        return loss, pos_scores, None, pos

    def validation_metrics(self) -> dict[str, Any]:
        metrics, _ = evaluate(
            self.model,
            self.kg,
            "valid",
            self.protocol,
            self.tcfg["eval_batch_size"],
            self.device,
            self.cfg["data"]["max_eval_triples"],
            self.valid_filter,
        )
        return metrics

    def validate(self) -> float:
        return self.validation_metrics()["mrr"]

    def fit(self, resume: bool = False) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.load_checkpoint():
            log.info("resumed %s from epoch %d", self.out, self.epoch)
        epochs = self.tcfg["epochs"]
        bar = tqdm(
            total=epochs,
            initial=self.epoch,
            desc=f"train {self.sampler.name}",
            unit="epoch",
            disable=not self.show_progress,
            mininterval=1.0,
        )
        stop_reason = "epochs"
        if self.epoch == 0 and self.epoch < epochs:  # a resumed run keeps its sampler's measured state
            self.sampler.refresh(self.model)
        while self.epoch < epochs:
            t0 = time.perf_counter()
            row = self._train_epoch(epochs)
            self.epoch += 1
            epoch_s = time.perf_counter() - t0
            self.train_seconds += epoch_s
            row = {
                "epoch": self.epoch,
                "seconds": round(epoch_s, 4),
                "train_seconds": round(self.train_seconds, 4),
                **row,
            }
            row["triples_per_s"] = round(len(self.train_triples) / max(epoch_s, 1e-9), 1)
            if self.epoch % self.tcfg["eval_every"] == 0 or self.epoch == epochs:
                valid = self.validation_metrics()
                mrr = valid["mrr"]
                row.update({"valid_mrr": mrr, **{f"valid_{k}": valid[k] for k in VALID_HITS}})
                if self.hardness_probe is not None:  # the bands the epoch trained with, before a refresh moves them
                    row.update(self.hardness_probe(self.sampler, self.model))
                row.update(self.sampler.refresh(self.model))
                if mrr > self.best["valid_mrr"]:
                    self.best = {"valid_mrr": mrr, "epoch": self.epoch, "state": copy.deepcopy(self.model.state_dict())}
                    self.bad_evals = 0
                else:
                    self.bad_evals += 1
            self.history.append(row)
            for callback in self.on_epoch:
                callback(row)
            if self.on_validation is not None and "valid_mrr" in row:
                self.on_validation(self.epoch, row["valid_mrr"])
            bar.update(1)
            bar.set_postfix(
                loss=f"{row['loss']:.4f}", valid_mrr=f"{self.best['valid_mrr']:.4f}", tps=f"{row['triples_per_s']:.0f}"
            )
            patience = self.tcfg["patience"]
            budget = self.tcfg["max_seconds"]
            if patience and self.bad_evals >= patience:
                stop_reason = "early_stopping"
            elif budget and self.train_seconds >= budget:
                stop_reason = "time_budget"
            if self.epoch % self.tcfg["checkpoint_every"] == 0 or self.epoch == epochs or stop_reason != "epochs":
                self.write_trace()
                self.save_checkpoint()
            if stop_reason != "epochs":
                break
        bar.close()
        if self.best["state"] is None:  # zero epochs, or no validation run: keep the current weights
            self.best = {
                "valid_mrr": float("nan"),
                "epoch": self.epoch,
                "state": copy.deepcopy(self.model.state_dict()),
            }
        torch_save(
            {
                "model": self.best["state"],
                "model_config": dict(self.cfg["model"]),
                "num_entities": self.kg.num_entities,
                "num_relations": self.kg.num_relations,
                "best_epoch": self.best["epoch"],
                "best_valid_mrr": self.best["valid_mrr"],
                "backbone": backbone_of(self.cfg["model"], self.mode),
                "stage_record": self.stage_record,
                "sampler": self.sampler.state_dict(),
            },
            self.out / BEST_MODEL,
        )
        self.write_trace()
        return {
            "epochs_run": self.epoch,
            "best_epoch": self.best["epoch"],
            "best_valid_mrr": self.best["valid_mrr"],
            "train_seconds": round(self.train_seconds, 3),
            "steps": self.step,
            "stop_reason": stop_reason,
            "resumed_from_epoch": self.resumed_from,
        }

    def write_trace(self) -> None:
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        write_text(self.out / TRACE, buf.getvalue())


def build_run(
    cfg: Mapping[str, Any], kg: KnowledgeGraph, pretrained: str | Path | None = None, **resources: Any
) -> tuple[KGEModel, NegativeSampler]:
    """Seeded construction of backbone and sampler (same seed -> same initial state).

    With ``pretrained`` (a Stage-0 run folder) and ``train.init_from_pretrained``, the backbone
    starts from that run's best model, which must be a pretraining of this backbone on this
    dataset (its stage record is checked).
    """
    gen = seed_everything(cfg["seed"])
    model = build_model(cfg["model"], kg.num_entities, kg.num_relations)
    if pretrained is not None and cfg["train"]["init_from_pretrained"]:
        folder = Path(pretrained)
        check_record(
            stage_record_of(folder),
            str(folder / BEST_MODEL),
            kg=kg,
            backbone=backbone_of(cfg["model"]),
            what="initialising this run (train.init_from_pretrained: true)",
        )
        init_from_checkpoint(model, folder / BEST_MODEL)
    sampler = build_sampler(cfg["train"]["sampler"], kg, cfg, gen, **resources)
    return model, sampler
