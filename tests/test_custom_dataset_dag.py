"""Your own dataset in the DAG (config `datasets`): planned like a registered name, and a changed file
reruns the fetch and what was built on it."""

from __future__ import annotations

import pytest
from test_custom_dataset import make_kg
from workflow_helpers import copy_workflow, job_counts, run_snakemake, write_yaml


@pytest.fixture()
def own_wf(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    folder = make_kg(tmp_path / "mykg")
    write_yaml(
        wf / "own.yaml",
        {
            "preset": "tiny",
            "datasets": {"mykg": {"path": str(folder), "protocol": "kge"}},
            "presets": {"tiny": {"datasets": ["mykg"]}},
        },
    )
    return wf, folder


def test_changed_file_reruns_fetch_and_what_is_built_on_it(own_wf):
    wf, folder = own_wf
    plan = run_snakemake(wf, "-n", "all_tables", "--configfile", "own.yaml")
    assert "results/tiny/mykg/main/uniform/seed0" in plan.stdout
    table1 = "results/tiny/tables/table1_datasets.md"
    run_snakemake(wf, table1, "--cores", "1", "--configfile", "own.yaml")
    assert "| mykg | kge | 12 | 2 | 18 | 3 | 3 |" in (wf / table1).read_text()
    record = (wf / "results/tiny/mykg/data/fetch.txt").read_text()
    assert len(record.splitlines()) == 5  # folder + SHA-256 of entities, train, valid, test
    assert job_counts(run_snakemake(wf, "-n", table1, "--configfile", "own.yaml").stdout) == {}
    with (folder / "valid.txt").open("a") as f:
        f.write("e2\tnext\te3\n")
    counts = job_counts(run_snakemake(wf, "-n", table1, "--configfile", "own.yaml").stdout)
    assert counts.get("fetch_dataset") == 1 and counts.get("dataset_stats") == 1
    run_snakemake(wf, table1, "--cores", "1", "--configfile", "own.yaml")
    assert "| mykg | kge | 12 | 2 | 18 | 4 | 3 |" in (wf / table1).read_text()


def test_bad_dataset_entry_stops_naming_the_key(own_wf, tmp_path):
    wf, _ = own_wf
    write_yaml(
        wf / "bad.yaml",
        {
            "preset": "tiny",
            "datasets": {"mykg": {"path": str(tmp_path / "nowhere")}},
            "presets": {"tiny": {"datasets": ["mykg"]}},
        },
    )
    proc = run_snakemake(wf, "-n", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0 and "datasets.mykg.path" in proc.stdout and "Traceback" not in proc.stdout
    write_yaml(wf / "bad.yaml", {"preset": "tiny", "datasets": {"mykg": {"path": "x", "protocl": "kge"}}})
    proc = run_snakemake(wf, "-n", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0 and "protocl" in proc.stdout
