"""Trained-model files: the best model of a run (``model_best.pt``) and loading it back.

Below ``training`` on purpose: DAM, the diffusion warm start and the samplers load trained
backbones without importing the training loop (which imports the samplers).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from dans_kgc.models import KGEModel, build_model

log = logging.getLogger(__name__)

BEST_MODEL = "model_best.pt"


class CorruptCheckpointError(ValueError):
    """A checkpoint file exists but cannot be read back (truncated by a kill or a full disk)."""


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu", remedy: str | None = None) -> dict[str, Any]:
    """The saved dict of ``path``. A file that does not unpickle stops with one line naming it and
    ``remedy`` (what to do), not torch's traceback: files are written atomically, so such a file was
    damaged after the fact (copied half, disk full, edited) and only rewriting it helps."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model here; run 'dans-kgc pretrain' or 'dans-kgc train' first")
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError, ... by damage
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise CorruptCheckpointError(
            f"{path}: cannot read this checkpoint, truncated or corrupt ({type(err).__name__}: {reason[:120]}); "
            + (remedy or "rerun the command that wrote it, or delete the file to start that stage over")
        ) from None
    if not isinstance(ck, dict):
        raise CorruptCheckpointError(
            f"{path}: not a dans-kgc checkpoint (holds {type(ck).__name__}); "
            + (remedy or "rerun the command that wrote it")
        )
    return ck


def load_trained_model(path: str | Path, device: torch.device | str = "cpu", remedy: str | None = None) -> KGEModel:
    """The backbone saved in ``path`` (a ``model_best.pt``), in eval mode (no dropout, frozen batch norm)."""
    ck = read_checkpoint(path, device, remedy)
    model = build_model(ck["model_config"], ck["num_entities"], ck["num_relations"])
    model.load_state_dict(ck["model"])
    return model.to(device).eval()


def stage_record_of(run_dir: str | Path) -> dict[str, Any] | None:
    """The stage record saved with a run folder's best model (None for files of older versions)."""
    return read_checkpoint(Path(run_dir) / BEST_MODEL).get("stage_record")


def init_from_checkpoint(model: KGEModel, path: str | Path) -> None:
    """Copy a trained backbone's parameters into ``model`` (same backbone and shapes, checked by the caller)."""
    state = read_checkpoint(path)["model"]
    model.load_state_dict(state)
