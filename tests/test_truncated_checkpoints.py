"""A damaged checkpoint stops the CLI with one line naming the file and what to do, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from dans_kgc.config import load_defaults

TINY = ["--set", "threads=1", "--set", "model.dim=8", "--set", "train.epochs=1", "--quiet"]


def _truncated(path: Path) -> None:
    """A real torch checkpoint cut in half, as a kill during a copy or a full disk leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(64, 64)}, "epoch": 3}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _cli(args: list[str], cwd: Path, mirror: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DANS_KGC_DATA_MIRROR": str(mirror)}
    return subprocess.run(
        [sys.executable, "-m", "dans_kgc.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if " ERROR " in line]
    assert len(errors) == 1, out
    return errors[0]


def test_resume_from_truncated_checkpoint_is_one_line(tmp_path, mirror):
    run = tmp_path / "runs" / "r"
    _truncated(run / "checkpoint.pt")
    proc = _cli(["train", "--dataset", "umls", "--out", "runs/r", "--resume", *TINY], tmp_path, mirror)
    assert proc.returncode != 0
    line = _one_error_line(proc)
    assert str(Path("runs/r/checkpoint.pt")) in line and "truncated or corrupt" in line
    assert "delete it and rerun" in line


def test_evaluate_truncated_best_model_is_one_line(tmp_path, mirror):
    run = tmp_path / "runs" / "r"
    cfg = load_defaults()
    cfg["threads"] = 1
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"dataset": "umls", **cfg}))
    _truncated(run / "model_best.pt")
    proc = _cli(["evaluate", "--run", "runs/r", "--quiet"], tmp_path, mirror)
    assert proc.returncode != 0
    line = _one_error_line(proc)
    assert str(Path("runs/r/model_best.pt")) in line and "truncated or corrupt" in line
    assert "rerun 'dans-kgc train" in line
