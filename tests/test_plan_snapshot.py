"""The DAG plans exactly what the committed snapshots say (tests/plan_snapshot.py): every job, its inputs,
outputs, params and shell command, for every preset of config.yaml and the variations of backbones,
per-dataset recipes, your own datasets and plugins. A change of the planning code that changes any job
shows as a diff; after an intended change, write the snapshots again (see tests/plan_snapshot.py)."""

from __future__ import annotations

import difflib

import pytest
from plan_snapshot import (
    SNAPSHOT_DIR,
    cases,
    plan_in_subprocess,
    presets,
    snapshot_path,
)

REWRITE = "PYTHONPATH=. DANS_KGC_DATA_MIRROR=... python tests/plan_snapshot.py --write {case}"


# 1-5 s each (one Snakemake planning in its own process); these largest plans and the plugin case (a torch
# import) go with the slow tests, so the default run stays near half a minute
SLOW_CASES = {"method", "fidelity", "tuned", "tiny+every_backbone", "tiny+plugin"}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in cases()],
)
def test_plan_matches_snapshot(case, tmp_path):
    path = snapshot_path(case)
    assert path.exists(), f"no snapshot of case {case}; write it with: {REWRITE.format(case=case)}"
    expected, planned = path.read_text(), plan_in_subprocess(case, tmp_path)
    if planned != expected:
        diff = list(
            difflib.unified_diff(
                expected.splitlines(),
                planned.splitlines(),
                f"{path.name} (committed)",
                f"{path.name} (planned now)",
                lineterm="",
                n=2,
            )
        )
        pytest.fail(
            f"the plan of {case} differs from {path} in {sum(d.startswith(('+', '-')) for d in diff) - 2} "
            f"lines; if intended, write it again with: {REWRITE.format(case=case)}\n" + "\n".join(diff[:120])
        )


def test_snapshots_are_those_of_the_cases():
    """Every preset has a snapshot (a new preset is planned too) and no snapshot is left of a removed case."""
    assert set(presets()) <= set(cases())
    on_disk = {p.stem for p in SNAPSHOT_DIR.glob("*.txt")}
    assert on_disk == set(cases()), (
        sorted(set(cases()) - on_disk),
        sorted(on_disk - set(cases())),
    )
