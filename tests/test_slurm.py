"""The tiny preset through `--profile profiles/slurm` on a real single-node SLURM cluster.

The fixture installs Debian's slurm-wlm and munge if absent (needs root and apt), starts
munged, slurmctld and slurmd on 127.0.0.1 with tests/slurm_cluster.sh (no slurmdbd: the
profile polls with squeue) and stops exactly the daemons it started, by PID. The test
checks that the stage jobs went through sbatch and that the main table equals the one of
a local run of the same preset.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workflow_helpers import copy_workflow, env, run_snakemake, tiny_reference

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = Path(__file__).with_name("slurm_cluster.sh")
MAIN_TABLE = "results/tiny/tables/main.csv"
BINARIES = ("sbatch", "squeue", "slurmctld", "slurmd", "munge", "mungekey")


def _install_slurm() -> None:
    if all(shutil.which(b) for b in BINARIES) and Path("/usr/sbin/munged").exists():
        return
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        proc = subprocess.run(cmd, env=apt, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def slurm_cluster():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("starting a SLURM cluster needs root")
    _install_slurm()
    proc = subprocess.run([str(CLUSTER), "start"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=180)
    started = re.search(r"started munged=(\d+) slurmctld=(\d+) slurmd=(\d+)", proc.stdout)
    pids = {name: int(pid) for name, pid in zip(("munged", "slurmctld", "slurmd"), started.groups())} if started else {}
    try:
        if proc.returncode != 0 or not started:
            pytest.fail(f"tests/slurm_cluster.sh start failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
        yield pids
    finally:
        for name in ("slurmd", "slurmctld", "munged"):  # only what this fixture started (0 = was running)
            if pids.get(name, 0) > 0:
                _stop(pids[name])


def test_tiny_preset_through_slurm(slurm_cluster, tmp_path, tmp_path_factory):
    wf = copy_workflow(tmp_path / "slurm")
    # threads 1 as in the local run (torch's thread count changes floating-point sums), the
    # local cluster's partition and a node with 2 CPUs; fast first status check.
    proc = run_snakemake(
        wf, MAIN_TABLE, "--profile", "profiles/slurm",
        "--default-resources", "slurm_partition=debug", "mem_mb=500", "runtime=10",
        "--set-threads", "pretrain=1", "dam=1", "diffusion=1", "train=1",
        "--jobs", "2", "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
        "--latency-wait", "10", "--config", "preset=tiny", timeout=900)

    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout)
    # pretrain, DAM, one diffusion warm start, three training runs (uniform, bernoulli, dans)
    assert len(job_ids) == 6, proc.stdout[-4000:]
    states = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i %T"], stdout=subprocess.PIPE, text=True,
                            env=env()).stdout
    state_of = dict(line.split() for line in states.splitlines() if line.strip())
    assert all(state_of.get(j) == "COMPLETED" for j in job_ids), (job_ids, states)
    slurm_logs = list((wf / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(job_ids)
    assert any("rule_train" in str(p) for p in slurm_logs)
    # fetch and the reports are local rules: never submitted
    assert not (wf / ".snakemake/slurm_logs/rule_report_table").exists()

    local, _ = tiny_reference(tmp_path_factory.getbasetemp())
    assert (wf / MAIN_TABLE).read_text() == (local / MAIN_TABLE).read_text()
