"""The tiny preset through `--profile profiles/slurm` on a real single-node SLURM cluster.

The fixture installs Debian's slurm-wlm and munge if absent (needs root and apt), starts
munged, slurmctld and slurmd on 127.0.0.1 with tests/slurm_cluster.sh (no slurmdbd: the
profile polls with squeue) and stops exactly the daemons it started, by PID. Where it cannot
run (not root, no apt) the test FAILS with the reason; set DANS_KGC_SKIP_SLURM=1 to opt out
explicitly (then it is skipped, saying so).

test_tiny_preset_through_slurm: every stage job goes through sbatch and ends COMPLETED (read from
the cluster's jobcomp log, which never forgets a job, unlike squeue after MinJobAge), and every
table and the list of figures equal those of a local run of the same preset.
test_min_job_age_below_poll_gap_stops_before_submitting: with MinJobAge below the plugin's longest
gap between status checks, squeue could forget a finished job and Snakemake would wait forever;
the workflow's onstart check stops first, naming MinJobAge.
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
from workflow_helpers import FIGURES, TABLES, copy_workflow, run_snakemake, tiny_reference

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = Path(__file__).with_name("slurm_cluster.sh")
MAIN_TABLE = "results/tiny/tables/main.csv"
BINARIES = ("sbatch", "squeue", "slurmctld", "slurmd", "munge", "mungekey")
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
OPT_OUT = "DANS_KGC_SKIP_SLURM"
# options of every SLURM run here: threads 1 as in the local run (torch's thread count changes floating-point
# sums), the local cluster's partition, a node with 2 CPUs, a fast first status check
SLURM_ARGS = (
    "--profile",
    "profiles/slurm",
    "--default-resources",
    "slurm_partition=debug",
    "mem_mb=500",
    "runtime=10",
    "--set-threads",
    "pretrain=1",
    "dam=1",
    "diffusion=1",
    "train=1",
    "--jobs",
    "2",
    "--slurm-keep-successful-logs",
    "--latency-wait",
    "10",
)
# columns that record how a run went, not what it computed (efficiency's seconds per epoch, train seconds,
# time to target and the speed ratio; wall time, memory, where and when)
PROVENANCE_COLUMNS = re.compile(r"sec|second|time|ratio_vs_uniform|wall|rss|mem|date|host|commit", re.I)


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
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"{OPT_OUT}=1: the SLURM test was opted out explicitly (it needs root to start a cluster)")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.fail(
            f"the SLURM test starts a local cluster and needs root (apt-get, munged, slurmctld); "
            f"run it as root, or opt out explicitly with {OPT_OUT}=1",
            pytrace=False,
        )
    _install_slurm()
    proc = subprocess.run(
        [str(CLUSTER), "start"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180
    )
    started = re.search(r"started munged=(\d+) slurmctld=(\d+) slurmd=(\d+)", proc.stdout)
    pids = (
        {name: int(pid) for name, pid in zip(("munged", "slurmctld", "slurmd"), started.groups(), strict=True)}
        if started
        else {}
    )
    try:
        if proc.returncode != 0 or not started:
            pytest.fail(f"tests/slurm_cluster.sh start failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
        yield pids
    finally:
        for name in ("slurmd", "slurmctld", "munged"):  # only what this fixture started (0 = was running)
            if pids.get(name, 0) > 0:
                _stop(pids[name])


def _min_job_age(seconds: int) -> int:
    """Set the cluster's MinJobAge; returns the previous value."""
    proc = subprocess.run(
        [str(CLUSTER), "min-job-age", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout
    return int(proc.stdout.split()[0])


def test_min_job_age_below_poll_gap_stops_before_submitting(slurm_cluster, tmp_path):
    """With MinJobAge below the plugin's longest status-check gap a finished job could vanish from squeue
    before Snakemake sees it end, and Snakemake would wait for it forever: the workflow stops at once."""
    wf = copy_workflow(tmp_path / "race")
    previous = _min_job_age(10)
    try:
        proc = run_snakemake(
            wf, MAIN_TABLE, *SLURM_ARGS, "--config", "preset=tiny", timeout=150, check=False, slurm=True
        )
    finally:
        _min_job_age(previous)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "MinJobAge=10s is below" in proc.stdout, proc.stdout[-3000:]
    assert "submitted with SLURM jobid" not in proc.stdout


def _jobcomp_states() -> dict[str, str]:
    """SLURM job id -> final state from the jobcomp log (jobcomp/filetxt: one line per finished job)."""
    text = JOBCOMP.read_text() if JOBCOMP.exists() else ""
    return dict(re.findall(r"JobId=(\d+) .*?JobState=(\S+)", text))


def _table(path: Path):
    import pandas as pd

    frame = pd.read_csv(path)
    return frame[[c for c in frame.columns if not PROVENANCE_COLUMNS.search(str(c))]]


def test_tiny_preset_through_slurm(slurm_cluster, tmp_path, tmp_path_factory):
    wf = copy_workflow(tmp_path / "slurm")
    proc = run_snakemake(
        wf,
        "all_tables",
        "all_figures",
        *SLURM_ARGS,
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--config",
        "preset=tiny",
        timeout=1500,
        slurm=True,
    )

    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout)
    # pretrain, DAM, three warm starts, six training runs (ablation full = main dans), four run diagnoses,
    # three warm-start diagnoses
    assert len(job_ids) == 1 + 1 + 3 + 6 + 4 + 3, proc.stdout[-4000:]
    for _ in range(50):  # slurmctld writes the record as the job ends; Snakemake may have seen it first
        states = _jobcomp_states()
        if all(j in states for j in job_ids):
            break
        time.sleep(0.2)
    assert all(states.get(j) == "COMPLETED" for j in job_ids), (job_ids, states)
    slurm_logs = list((wf / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(job_ids)
    assert any("rule_train" in str(p) for p in slurm_logs) and any("rule_diagnose" in str(p) for p in slurm_logs)
    # fetch and the reports are local rules: never submitted
    assert not (wf / ".snakemake/slurm_logs/rule_report_table").exists()

    # every table equals the local run's (provenance columns such as wall time left out), every figure is there
    local, _ = tiny_reference(tmp_path_factory.getbasetemp())
    tables = sorted(p.relative_to(local) for p in (local / "results/tiny/tables").iterdir())
    assert sorted(p.relative_to(wf) for p in (wf / "results/tiny/tables").iterdir()) == tables
    assert {p.stem for p in (local / "results/tiny/tables").glob("*.csv")} == {*TABLES, "diagnostics"}
    import pandas.testing

    for rel in tables:
        if rel.suffix == ".csv":
            pandas.testing.assert_frame_equal(_table(wf / rel), _table(local / rel), check_exact=True, obj=str(rel))
    figures = sorted(p.relative_to(local) for p in (local / "figures/tiny").iterdir())
    assert sorted(p.relative_to(wf) for p in (wf / "figures/tiny").iterdir()) == figures
    assert {p.stem for p in (local / "figures/tiny").glob("*.png")} == set(FIGURES)
    diagnoses = sorted(p.relative_to(local) for p in (local / "results/tiny/umls/diagnostics").rglob("*.png"))
    assert sorted(p.relative_to(wf) for p in (wf / "results/tiny/umls/diagnostics").rglob("*.png")) == diagnoses
