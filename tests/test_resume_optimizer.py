"""`train.resume_optimizer`: a run continued from a Stage-0 backbone starts Adam from Stage 0's moments.

Checked against an independent optimiser: torch's own (non-fused) Adam loaded with Stage 0's saved state and given
the same gradients must land on the same weights as the run's carried optimiser; a fresh Adam must not."""

from __future__ import annotations

import copy

import pytest
import torch

from dans_kgc.checkpoints import BEST_MODEL, load_trained_model, read_checkpoint
from dans_kgc.cli import main
from dans_kgc.config import load_config
from dans_kgc.pipeline import run_training
from dans_kgc.training import CHECKPOINT

SETS = [
    "model.name=complex",
    "model.dim=8",
    "model.regularizer=n3",
    "model.reg_weight=0.005",
    "train.mode=one_to_n",
    "train.lr=0.01",
    "train.batch_size=512",
    "train.eval_every=1",
    "train.checkpoint_every=1",
    "threads=1",
    "device=cpu",
    "seed=0",
]


@pytest.fixture(scope="module")
def stage0(umls_root, mirror, tmp_path_factory):
    """A 2-epoch Stage 0 of ComplEx 1-N on UMLS, trained with its own loss (--source backbone)."""
    out = tmp_path_factory.mktemp("stage0") / "pretrain"
    sets = [*SETS, "pretrain.backbone_epochs=2", f"data.root={umls_root}", f"data.mirror={mirror}"]
    args = ["pretrain", "--dataset", "umls", "--out", str(out), "--source", "backbone", "--quiet"]
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    return out


def config(umls_root, mirror, **extra) -> dict:
    sets = [*SETS, "train.epochs=1", f"data.root={umls_root}", f"data.mirror={mirror}"]
    return load_config([], sets + [f"{k}={v}" for k, v in extra.items()])


class Stop(Exception):
    """Ends the run once the hook has looked at its optimiser."""


def first_step(cfg, stage0, out):
    """(weights after one Adam step with fixed gradients, the run's optimiser state before it)."""
    seen = {}

    def hook(trainer):
        params = trainer.optimizer.param_groups[0]["params"]
        seen["state"] = {i: copy.deepcopy(trainer.optimizer.state.get(p, {})) for i, p in enumerate(params)}
        gen = torch.Generator().manual_seed(7)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        trainer.optimizer.step()
        seen["weights"] = [p.detach().clone() for p in params]
        raise Stop

    with pytest.raises(Stop):
        run_training(cfg, "umls", out, pretrained=stage0, trainer_hook=hook)
    return seen


def reference_step(cfg, stage0):
    """The same step by torch's plain Adam loaded with Stage 0's saved state: the run as if never interrupted."""
    model = load_trained_model(stage0 / BEST_MODEL, "cpu")
    params = list(model.parameters())
    adam = torch.optim.Adam(params, lr=cfg["train"]["lr"])
    adam.load_state_dict(read_checkpoint(stage0 / CHECKPOINT)["optimizer"])
    for group in adam.param_groups:
        group["lr"] = cfg["train"]["lr"]
    gen = torch.Generator().manual_seed(7)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    adam.step()
    return [p.detach().clone() for p in params]


def test_carried_adam_takes_the_uninterrupted_step(stage0, umls_root, mirror, tmp_path):
    cfg = config(umls_root, mirror, **{"train.resume_optimizer": "true"})
    carried = first_step(cfg, stage0, tmp_path / "carried")
    saved = read_checkpoint(stage0 / CHECKPOINT)["optimizer"]["state"]
    steps = {int(s["step"]) for s in saved.values()}
    assert len(steps) == 1 and steps.pop() > 0
    for i, state in carried["state"].items():  # the moments and step counts are Stage 0's, value for value
        assert torch.equal(state["exp_avg"], saved[i]["exp_avg"]) and torch.equal(state["step"], saved[i]["step"])
    want = reference_step(cfg, stage0)
    for got, ref in zip(carried["weights"], want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    fresh = first_step(config(umls_root, mirror), stage0, tmp_path / "fresh")
    assert fresh["state"][0] == {}  # by default Adam starts over, and its first step differs
    assert max((a - b).abs().max().item() for a, b in zip(fresh["weights"], want, strict=True)) > 1e-4


def test_refusals_name_the_reason(stage0, umls_root, mirror, tmp_path):
    cfg = config(umls_root, mirror, **{"train.resume_optimizer": "true"})
    with pytest.raises(ValueError, match="needs the Stage-0 run"):
        run_training(cfg, "umls", tmp_path / "no_stage0")
    # a Stage 0 whose best model is not its last epoch: the moments belong to other weights
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in (BEST_MODEL, "run.json"):
        (moved / name).write_bytes((stage0 / name).read_bytes())
    ck = read_checkpoint(stage0 / CHECKPOINT)
    ck["best"]["epoch"] = 1
    torch.save(ck, moved / CHECKPOINT)
    with pytest.raises(ValueError, match="best model is from epoch 1, its last checkpoint from epoch 2"):
        run_training(cfg, "umls", tmp_path / "run", pretrained=moved)
    (moved / CHECKPOINT).unlink()
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        run_training(cfg, "umls", tmp_path / "run2", pretrained=moved)
