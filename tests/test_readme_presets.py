"""The README's preset table says what `dans-kgc plan` says: jobs, training runs and predicted CPU hours."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from dans_kgc.costs import load_cost_model, preset_cost
from dans_kgc.planning import load_workflow_config, plan_jobs

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(
    r"^\| `(?P<preset>[\w-]+)` \|.*\| (?P<jobs>\d+) \((?P<runs>\d+)\) \| "
    r"(?P<hours>[\d,.]+)(?: \+ (?P<nm>\d+) jobs not modelled)? \|$"
)


@cache
def planned_jobs(preset: str) -> tuple:
    """The jobs `all_tables` plans for a preset (planned once, read by both tables' tests)."""
    config = load_workflow_config(str(ROOT / "config.yaml"), {"preset": preset})
    return tuple(plan_jobs(config, preset, targets="tables"))


def job_counts(preset: str) -> tuple[int, int]:
    """(jobs, training runs): the plan's jobs plus the all_tables target, as `snakemake -n all_tables` counts them."""
    jobs = planned_jobs(preset)
    return len(jobs) + 1, sum(j.rule == "train" for j in jobs)


def readme_rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- preset table -->", 1)[1].split("<!-- /preset table -->", 1)[0]
    return {m["preset"]: m.groupdict() for m in map(ROW.match, table.splitlines()) if m}


def test_the_table_lists_every_preset():
    presets = load_workflow_config(str(ROOT / "config.yaml"), {})["presets"]
    assert set(readme_rows()) == {p for p in presets if not p.startswith("tiny")}  # tiny*: the tests' own


@pytest.mark.parametrize("preset", sorted(readme_rows()))
def test_each_row_matches_the_plan(preset):
    row = readme_rows()[preset]
    cost = preset_cost(
        list(planned_jobs(preset)), load_cost_model(ROOT / "benchmarks" / "results" / "bench_scale.json")
    )
    not_modelled = sum(r["not_modelled"] for r in cost.rows)
    want = (*job_counts(preset), f"{cost.cpu_hours:,.1f}", not_modelled)
    got = (int(row["jobs"]), int(row["runs"]), row["hours"], int(row["nm"] or 0))
    assert got == want, (
        f"README preset table, `{preset}`: (jobs, training runs, CPU hours, not modelled) is {got}, "
        f"`dans-kgc plan --preset {preset} --targets tables` gives {want}"
    )


WORKFLOW_ROW = re.compile(r"^\| `(?P<preset>[\w-]+)` \|.*\| (?P<jobs>\d+) \((?P<runs>\d+)[^|]*\) \|$")


def test_the_workflow_page_table_matches_the_plan():
    """docs/workflow.md's preset table: jobs and training runs per preset, as the plan counts them."""
    text = (ROOT / "docs" / "workflow.md").read_text()
    rows = {m["preset"]: m for m in map(WORKFLOW_ROW.match, text.splitlines()) if m}
    presets = load_workflow_config(str(ROOT / "config.yaml"), {})["presets"]
    assert set(rows) == set(presets), "docs/workflow.md's preset table lists other presets than config.yaml"
    got = {preset: (int(row["jobs"]), int(row["runs"])) for preset, row in rows.items()}
    wrong = {preset: (counts, job_counts(preset)) for preset, counts in got.items() if counts != job_counts(preset)}
    assert not wrong, f"docs/workflow.md preset table (jobs, training runs) -> plan: {wrong}"
