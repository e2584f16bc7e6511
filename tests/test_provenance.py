"""Provenance names the CPU and the BLAS kernel: they change the last bits of DAM's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dans_kgc import provenance as prov


def test_cpu_model_reads_the_first_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n"
        "flags\t\t: fpu vme\n\nprocessor\t: 1\nmodel name\t: another\n"
    )
    assert prov.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"


def test_cpu_model_falls_back_to_platform_then_none(tmp_path, monkeypatch):
    no_name = tmp_path / "cpuinfo"
    no_name.write_text("processor\t: 0\nmodel name\t:   \n")
    monkeypatch.setattr(prov.platform, "processor", lambda: "arm")
    assert prov.cpu_model(no_name) == "arm"
    assert prov.cpu_model(tmp_path / "missing") == "arm"
    monkeypatch.setattr(prov.platform, "processor", lambda: "")
    assert prov.cpu_model(no_name) is None


def test_provenance_records_cpu_blas_and_scipy():
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy's BLAS is loaded once NumPy is
    p = prov.provenance({"seed": 3}, torch.device("cpu"), 1.25)
    assert p["seed"] == 3 and p["device"] == "cpu" and p["wall_seconds"] == 1.25
    assert "cpu" in p and "scipy" in p["packages"] and p["packages"]["scipy"]
    assert p["blas"], "NumPy's BLAS library is missing from provenance"
    assert all(entry.endswith(" threads") for entry in p["blas"])


def test_threads_bind_blas_and_openmp_too():
    """`threads: 1` means one thread in NumPy's BLAS and OpenMP as in torch (a fresh interpreter: the limits are
    process-wide)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, numpy, sklearn.cluster, torch\n"
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "from dans_kgc.utils import set_threads\n"
        "threadpool_limits(limits=2)\n"  # not 1 before, whatever the machine's core count
        "set_threads(1)\n"
        "print(json.dumps([torch.get_num_threads()] + [p['num_threads'] for p in threadpool_info()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    assert len(counts) >= 2, "no BLAS / OpenMP pool was found to limit"
    assert counts == [1] * len(counts)


def test_peak_rss_is_the_job_s_own_not_its_parent_s():
    """A job started by a large process (Snakemake, pytest) reports its own peak: a fresh interpreter touches
    400 MiB and frees it while its parent holds 1.2 GiB; the recorded peak is at least the 400 MiB and far below
    the parent's size (getrusage's ru_maxrss would report the parent's 1.2 GiB: it keeps the pre-exec peak)."""
    import json
    import subprocess
    import sys

    import pytest

    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc/self/status (not Linux): peak_rss_mib falls back to getrusage")
    ballast = np.ones(1200 * 2**20 // 8)  # touched: resident in this process
    code = (
        "import json, numpy, torch\n"
        "from dans_kgc.provenance import provenance\n"
        "a = numpy.ones(400 * 2**20 // 8); del a\n"
        "print(json.dumps(provenance({}, torch.device('cpu'), 0.0)['peak_rss_mib']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    recorded = json.loads(out.strip().splitlines()[-1])
    del ballast
    assert 400 <= recorded < 1000, recorded


def test_peak_rss_reads_vmhwm_and_falls_back(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9999 kB\nVmHWM:\t  524288 kB\nVmRSS:\t 1 kB\n")
    assert prov.peak_rss_mib(status) == 512.0
    fallback = prov.peak_rss_mib(tmp_path / "missing")  # getrusage: this process's (and maybe its parent's) peak
    assert fallback is not None and fallback > 10
