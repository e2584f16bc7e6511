"""Small shared helpers: seeding, device choice, atomic file writes."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def release_freed_memory() -> bool:
    """Hand heap memory that Python and torch have freed back to the operating system (glibc).

    Loops that allocate batch-sized score matrices whose size varies from batch to batch (filtered
    ranking: hub queries filter tens of thousands of answers) can make glibc keep every freed block: its
    mmap threshold adapts upwards, later blocks come from the heap, and RSS grew by one batch's
    temporaries per batch (seen: +0.9 GiB over 158 batches at 3k entities, in 4 runs of 5; 10.6 GiB in
    DAM's ranking at 123k entities). Returns whether a trim was made.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def seed_everything(seed: int) -> torch.Generator:
    import torch  # lazily: dataset fetching and the DAG parse must not pay for torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for ``cuda`` without one is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but torch sees no CUDA device; use device: auto or cpu")
    return torch.device(name)


def set_threads(n: int) -> None:
    """``n`` threads for torch and for the BLAS / OpenMP pools under NumPy, SciPy and scikit-learn (DAM's
    features, K-means): else those use every core, which oversubscribes a machine running one job per core.
    ``n`` <= 0 leaves every library at its default."""
    import torch

    if n and n > 0:
        torch.set_num_threads(n)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)  # process-wide until changed; the returned handle only restores


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    An interrupted writer therefore never leaves a partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def torch_save(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):  # torch tensors, numpy arrays
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def find_sorted(sorted_keys: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Position of each of ``keys`` in the ascending ``sorted_keys`` (clamped to a valid index) and whether it
    is there: the one lookup behind triple filters, negative caches and per-query counts."""
    import torch

    at = torch.searchsorted(sorted_keys, keys).clamp_max(len(sorted_keys) - 1)
    return at, sorted_keys[at] == keys
