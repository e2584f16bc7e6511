"""Training loop: seeded determinism, exact resume, divergence errors, model selection."""

from __future__ import annotations

import csv

import pytest
import torch

from dans_kgc.checkpoints import BEST_MODEL, load_trained_model
from dans_kgc.datasets import load_dataset
from dans_kgc.training import CHECKPOINT, Trainer, TrainingDivergedError, build_run
from tests.conftest import tiny_config


def _fit(cfg, kg, out, resume=False):
    model, sampler = build_run(cfg, kg)
    trainer = Trainer(cfg, kg, model, sampler, out, torch.device("cpu"), "redgnn", show_progress=False)
    summary = trainer.fit(resume=resume)
    return trainer, summary


@pytest.fixture(scope="module")
def umls(umls_root):
    return load_dataset(umls_root, "umls")


@pytest.mark.parametrize("sampler", ["uniform", "bernoulli", "self_adversarial"])
def test_same_seed_same_result(umls, tmp_path, sampler):
    cfg = tiny_config(**{"train.sampler": sampler, "train.epochs": 2})
    a, sa = _fit(cfg, umls, tmp_path / "a")
    b, sb = _fit(cfg, umls, tmp_path / "b")
    assert sa["best_valid_mrr"] == sb["best_valid_mrr"]
    assert torch.equal(a.model.entity.weight, b.model.entity.weight)
    c, sc = _fit(tiny_config(**{"train.sampler": sampler, "train.epochs": 2, "seed": 1}), umls, tmp_path / "c")
    assert not torch.equal(a.model.entity.weight, c.model.entity.weight)


def test_resume_equals_uninterrupted(umls, tmp_path):
    full_cfg = tiny_config(**{"train.epochs": 4, "train.eval_every": 2, "train.checkpoint_every": 1})
    full, s_full = _fit(full_cfg, umls, tmp_path / "full")
    # "Killed" after epoch 2: a run with the same seed stopped at 2 epochs leaves its checkpoint ...
    _fit(tiny_config(**{"train.epochs": 2, "train.eval_every": 2, "train.checkpoint_every": 1}), umls, tmp_path / "cut")
    assert (tmp_path / "cut" / CHECKPOINT).exists()
    # ... and a fresh process resumes it with the full budget.
    resumed, s_res = _fit(full_cfg, umls, tmp_path / "cut", resume=True)
    assert s_res["resumed_from_epoch"] == 2
    assert s_res["best_valid_mrr"] == s_full["best_valid_mrr"]
    assert s_res["steps"] == s_full["steps"]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    with open(tmp_path / "cut" / "trace.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_nan_loss_names_the_run(umls, tmp_path):
    cfg = tiny_config(**{"train.lr": 1e30, "train.loss": "softplus", "model.name": "distmult", "train.epochs": 3})
    with pytest.raises(TrainingDivergedError, match=str(tmp_path / "nan")):
        _fit(cfg, umls, tmp_path / "nan")


def test_best_model_is_the_best_validation_epoch(umls, tmp_path):
    cfg = tiny_config(**{"train.epochs": 4, "train.eval_every": 1, "train.lr": 0.05})
    trainer, summary = _fit(cfg, umls, tmp_path / "r")
    with open(tmp_path / "r" / "trace.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["valid_mrr"]]
    best = max(rows, key=lambda r: float(r["valid_mrr"]))
    assert summary["best_epoch"] == int(best["epoch"])
    model = load_trained_model(tmp_path / "r" / BEST_MODEL)
    assert trainer.validate() is not None
    trainer.model.load_state_dict(model.state_dict())
    assert trainer.validate() == pytest.approx(float(best["valid_mrr"]), abs=1e-12)


def test_patience_stops_early(umls, tmp_path):
    cfg = tiny_config(**{"train.epochs": 50, "train.eval_every": 1, "train.patience": 1, "train.lr": 0.5})
    _, summary = _fit(cfg, umls, tmp_path / "r")
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs_run"] < 50


def test_training_learns_umls(umls, tmp_path):
    """A known-good setting must beat chance (MRR ~ 0.04 for 135 entities) by far."""
    cfg = tiny_config(**{"train.epochs": 15, "train.eval_every": 15, "train.lr": 0.01, "model.dim": 32})
    _, summary = _fit(cfg, umls, tmp_path / "r")
    assert summary["best_valid_mrr"] > 0.4


def test_resume_refuses_a_checkpoint_of_other_settings(umls, tmp_path):
    _fit(tiny_config(**{"train.epochs": 1}), umls, tmp_path / "r")
    with pytest.raises(ValueError, match="train.lr"):
        _fit(tiny_config(**{"train.epochs": 2, "train.lr": 0.5}), umls, tmp_path / "r", resume=True)
