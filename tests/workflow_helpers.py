"""Helpers of the Snakemake workflow tests (test_workflow.py, test_slurm.py).

Every test runs the workflow in a temporary copy of the repository's Snakefile, config.yaml,
workflow/ and profiles/, with the dataset mirror from DANS_KGC_DATA_MIRROR (or ../shared/datasets),
so nothing is written into the checkout. Snakemake is the one installed beside this Python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DANS_KGC_DATA_MIRROR", REPO.parent / "shared" / "datasets"))
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "profiles")
TABLES = ("table1_datasets", "main", "ablation", "efficiency", "paper_vs_ours", "hardness")
FIGURES = ("sensitivity", "curves", "bands")
# the built-in backbone recipes as dans_kgc/recipes.yaml states them, read as a file (not through dans_kgc.recipes)
BUILT_IN_RECIPES: dict = yaml.safe_load((REPO / "dans_kgc" / "recipes.yaml").read_text())


def built_in_recipe_with(name: str, changes: dict) -> dict:
    """A workflow-config recipe that replaces the built-in ``name``: its keys, ``changes`` replacing some (a
    `per_dataset` in ``changes`` replaces the built-in's whole)."""
    return {**BUILT_IN_RECIPES[name], **changes}


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    return dest


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# a stand-in `scontrol` that fails at once (see the script): first on PATH for every run that does not use SLURM
NO_SLURM_BIN = Path(__file__).with_name("no_slurm_bin")


def env(mirror: Path | None = None, slurm: bool = False) -> dict[str, str]:
    """The environment of a Snakemake run: the data mirror, this Python's bin first, and, unless ``slurm``, no
    SLURM client that waits for a controller (NO_SLURM_BIN)."""
    out = dict(os.environ)
    out["DANS_KGC_DATA_MIRROR"] = str(MIRROR if mirror is None else mirror)
    path = [str(Path(sys.executable).parent)] + ([] if slurm else [str(NO_SLURM_BIN)])
    out["PATH"] = os.pathsep.join([*path, out.get("PATH", "")])
    out.setdefault("MPLBACKEND", "Agg")
    return out


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def run_snakemake(
    workdir: Path, *args: str, timeout: float = 600, mirror: Path | None = None, check: bool = True, slurm: bool = False
) -> subprocess.CompletedProcess:
    """`snakemake ARGS` in ``workdir``; output (stdout + stderr) in ``.stdout``. ``slurm``: the run talks to a
    real SLURM cluster (the machine's own scontrol).

    Put targets first: --config and --configfile take every argument that follows them.
    """
    proc = subprocess.run(
        snakemake_cmd(*args),
        cwd=workdir,
        env=env(mirror, slurm),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run: rule -> count (empty if nothing to do)."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3 :]:
                m = re.match(r"^(\S+)\s+(\d+)$", row.strip())
                if not m:
                    break
                counts[m.group(1)] = int(m.group(2))
            break
    return counts


def plan_jobs(output: str) -> list[dict]:
    """The jobs of a dry run's (or --touch run's) log: [{"rule": name, "input": [...], "output": [...],
    "wildcards": {...}, "resources": "..."}] in printed order."""
    jobs: list[dict] = []
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            jobs.append({"rule": m.group(1), "input": [], "output": [], "wildcards": {}, "resources": ""})
            continue
        m = re.match(r"^    (input|output|wildcards|resources): (.*)$", line)
        if m and jobs:
            key, value = m.groups()
            if key in ("input", "output"):
                jobs[-1][key] = value.split(", ")
            elif key == "wildcards":
                jobs[-1][key] = dict(item.split("=", 1) for item in value.split(", "))
            else:
                jobs[-1][key] = value
    return jobs


def table_files(workdir: Path, preset: str = "tiny") -> list[Path]:
    out = []
    for name in TABLES:
        exts = ("csv", "md") if name == "table1_datasets" else ("csv", "md", "tex")
        out += [workdir / "results" / preset / "tables" / f"{name}.{ext}" for ext in exts]
    return out


def figure_files(workdir: Path, preset: str = "tiny") -> list[Path]:
    return [workdir / "figures" / preset / f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")]


_TINY: dict[str, object] = {}


def tiny_reference(tmp_root: Path) -> tuple[Path, float]:
    """The `tiny` preset run end to end (all_tables + all_figures) with the local profile.

    Cached for the pytest session (the slurm test compares its tables with these).
    Returns (working directory, wall seconds).
    """
    if "error" in _TINY:
        raise AssertionError(f"the tiny reference run failed earlier in this session: {_TINY['error']}")
    if "dir" not in _TINY:
        workdir = copy_workflow(tmp_root / "tiny_local")
        start = time.perf_counter()
        try:
            proc = run_snakemake(
                workdir,
                "all_tables",
                "all_figures",
                "--profile",
                "profiles/local",
                "--cores",
                "2",
                "--config",
                "preset=tiny",
                timeout=1200,
            )
        except Exception as err:
            _TINY["error"] = str(err)[:3000]
            raise
        _TINY.update(dir=workdir, seconds=time.perf_counter() - start, output=proc.stdout)
        print(f"\ntiny preset end to end (local profile, 2 cores): {_TINY['seconds']:.0f} s")
    return _TINY["dir"], _TINY["seconds"]  # type: ignore[return-value]
