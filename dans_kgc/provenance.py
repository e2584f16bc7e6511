"""Provenance attached to every result file: config, seed, git commit, versions, device, time, peak memory."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

import dans_kgc

_PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "snakemake")


def git_commit(path: str | Path | None = None) -> str | None:
    cwd = Path(path) if path else Path(dans_kgc.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "dans_kgc": dans_kgc.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name (Linux's ``/proc/cpuinfo``; ``platform.processor()`` elsewhere), or None."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def blas_info() -> list[str]:
    """NumPy / SciPy's BLAS libraries as ``name version (kernel), N threads``: the kernel a CPU gets (and,
    possibly, the thread count) can change the last bits of DAM's and K-means' arithmetic."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return sorted(
        {
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture') or '?'}), "
            f"{p.get('num_threads')} threads"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        }
    )


def peak_rss_mib(status: str | Path = "/proc/self/status") -> float | None:
    """This process's peak resident set so far, in MiB: Linux's ``VmHWM`` (the high-water mark of this address
    space), else ``getrusage`` (KiB on Linux, bytes on macOS), or None without either. Not ``getrusage`` on
    Linux: its ``ru_maxrss`` keeps the peak of the address space before ``exec``, which is a copy of the parent's,
    so a job started by a large process (Snakemake, pytest) would report the parent's size."""
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def device_info(device: torch.device) -> dict[str, Any]:
    import torch  # lazily: report builders need provenance without paying torch's import

    info: dict[str, Any] = {
        "device": str(device),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "blas": blas_info(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return info


def provenance(config: Mapping[str, Any], device: torch.device, wall_seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "config": dict(config),
        "seed": config.get("seed"),
        "git_commit": git_commit(),
        "packages": package_versions(),
        **device_info(device),
        "wall_seconds": round(wall_seconds, 3),
        "peak_rss_mib": peak_rss_mib(),  # what a stage needs of a machine's memory: the stage is the process
        "command": " ".join(sys.argv),
        **extra,
    }
