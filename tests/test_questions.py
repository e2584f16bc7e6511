"""The paper's open questions as DAG experiments: curriculum robustness, DAM's inputs (Q2) and the T / K_b
sweeps of Figure 2 - their tables on hand-made run folders, and how the DAG plans them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_reports import make_run
from workflow_helpers import copy_workflow, job_counts, run_snakemake, write_yaml

from dans_kgc.reports import build_report


# ----------------------------------------------------------------------------------------
# tables on hand-made runs
# ----------------------------------------------------------------------------------------
def _with_dam(run: Path, dam_dir: Path, spearman: float) -> Path:
    """Point a run at a DAM folder (as `dans-kgc train --dam` records it) holding a report with this Spearman."""
    dam_dir.mkdir(parents=True, exist_ok=True)
    (dam_dir / "dam_report.json").write_text(json.dumps({"holdout_spearman": spearman}))
    info = json.loads((run / "run.json").read_text())
    info["stages"] = {"pretrained": None, "dam": str(dam_dir), "diffusion": None}
    (run / "run.json").write_text(json.dumps(info))
    return run


def test_dam_inputs_table_reads_each_runs_dam_fit(tmp_path):
    root = tmp_path / "runs"
    rows = {"random_features": (0.05, [0.60, 0.62]), "full_transe": (0.55, [0.70, 0.74])}
    for variant, (rho, mrrs) in rows.items():
        for seed, mrr in enumerate(mrrs):
            run = make_run(root, "umls", "dam_inputs", variant, seed, mrr=mrr, tags={"experiment": "dam_inputs"})
            _with_dam(run, tmp_path / "dam" / variant, rho)
    out = tmp_path / "t" / "dam_inputs"
    build_report("dam_inputs", [root], out)
    tidy = pd.read_csv(f"{out}.csv")
    rho = tidy[tidy.metric == "dam_spearman"].set_index("variant")["mean"]
    assert rho.to_dict() == pytest.approx({"random_features": 0.05, "full_transe": 0.55})
    mrr = tidy[tidy.metric == "mrr"].set_index("variant")["mean"]
    assert mrr.to_dict() == pytest.approx({"random_features": 0.61, "full_transe": 0.72})
    md = Path(f"{out}.md").read_text()
    assert "ζ held-out ρ" in md and md.index("untrained TransE") < md.index("TransE, full pretraining")
    # committed result folders: the DAM folder is gone, its report copied next to the run
    for variant in rows:
        for run in (root / "umls" / "dam_inputs" / variant).iterdir():
            (run / "dam_report.json").write_text((tmp_path / "dam" / variant / "dam_report.json").read_text())
        (tmp_path / "dam" / variant / "dam_report.json").unlink()
    build_report("dam_inputs", [root], out)
    rho = pd.read_csv(f"{out}.csv").query("metric == 'dam_spearman'").set_index("variant")["mean"]
    assert rho.to_dict() == pytest.approx({"random_features": 0.05, "full_transe": 0.55})


def test_dam_inputs_table_marks_a_run_without_dam_as_missing(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "umls", "dam_inputs", "full_transe", 0, mrr=0.7)  # no stages.dam in run.json
    out = tmp_path / "t" / "dam_inputs"
    build_report("dam_inputs", [root], out)
    tidy = pd.read_csv(f"{out}.csv")
    row = tidy[(tidy.metric == "dam_spearman")].iloc[0]
    assert row["n"] == 0 and pd.isna(row["mean"])


def test_curriculum_table_orders_the_schedules(tmp_path):
    root = tmp_path / "runs"
    for variant, mrr in (("lambda32", 0.5), ("reversed", 0.4), ("easy_to_hard", 0.6), ("no_curriculum", 0.55)):
        make_run(root, "family", "curriculum", variant, 0, mrr=mrr)
    out = tmp_path / "t" / "curriculum"
    build_report("curriculum", [root], out)
    md = Path(f"{out}.md").read_text()
    order = [
        md.index(label)
        for label in ("easy → hard (λ = 8, default)", "reversed curriculum", "abrupt (λ = 32)", "none (uniform weights")
    ]
    assert order == sorted(order)
    assert "**0.600**" in md  # best MRR in bold


# ----------------------------------------------------------------------------------------
# the DAG plan
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_plan(tmp_path_factory) -> str:
    wf = copy_workflow(tmp_path_factory.mktemp("q") / "wf")
    return run_snakemake(wf, "-n", "-p", "--forceall", "all_tables", "all_figures", "--config", "preset=quick").stdout


def _commands(plan: str, needle: str) -> list[str]:
    return [line for line in plan.splitlines() if line.startswith("dans-kgc") and needle in line] + [
        line for line in plan.splitlines() if "dans_kgc_job" in line and needle in line
    ]


def _job_blocks(plan: str, rule: str) -> list[str]:
    return [
        b for b in re.split(r"\n(?=(?:local)?rule )", plan) if b.startswith((f"rule {rule}:", f"localrule {rule}:"))
    ]


def test_quick_plans_the_new_tables_and_a_fixed_target_dam(quick_plan):
    counts = job_counts(quick_plan)
    assert counts["report_table"] == 7 and counts["report_figure"] == 4, counts
    for name in (
        "results/quick/tables/curriculum.csv",
        "results/quick/tables/dam_inputs.csv",
        "figures/quick/curriculum_bands.png",
        "figures/quick/sensitivity.png",
    ):
        assert name in quick_plan, name
    dams = _job_blocks(quick_plan, "dam")
    # the default DAM per dataset (semantic = target = full TransE) and, on UMLS (dam_inputs' dataset), the
    # untrained TransE's, scored by the full one's ranks
    assert len(dams) == 3, dams
    by = [b for b in dams if "_by_" in b]
    assert len(by) == 1 and "--target-pretrained" in by[0] and "dam.semantic_source=random" in by[0]
    # it reads two pretrainings: the untrained TransE (its own pretrain job) and the full one
    inputs = re.search(r"input: (.*)", by[0]).group(1).split(", ")
    assert len(inputs) == 2 and len({Path(p).parent.name for p in inputs}) == 2, inputs
    pretrained = {re.search(r"output: (\S+)", b).group(1) for b in _job_blocks(quick_plan, "pretrain")}
    assert set(inputs) <= pretrained


def test_quick_diagnoses_the_main_runs_only(quick_plan):
    # the preset's own `diagnose` entry: dans + dhns of main, 2 datasets x 2 seeds, on 200 triples
    blocks = _job_blocks(quick_plan, "diagnose")
    assert len(blocks) == 8 and all("/main/" in b for b in blocks)
    assert all("--triples 200" in b for b in blocks)


@pytest.mark.slow
def test_tiny_dag_builds_the_question_tables(tmp_path):
    """A tiny DAG of the new experiments: the K_b = 2 sweep point, the reversed curriculum, DAM from an untrained
    TransE scored against the full one's ranks; their tables and the band-weight figure build from real runs."""
    wf = copy_workflow(tmp_path / "wf")
    extra = write_yaml(
        wf / "q.yaml",
        {
            "presets": {
                "tiny": {
                    "experiments": {
                        "sensitivity": {"grid": {"K_b": ["2"]}},
                        "curriculum": {"variants": ["easy_to_hard", "reversed"]},
                        "dam_inputs": {"variants": ["random_features", "full_transe"]},
                    }
                }
            }
        },
    )
    targets = [
        "results/tiny/tables/curriculum.csv",
        "results/tiny/tables/dam_inputs.csv",
        "figures/tiny/curriculum_bands.png",
        "results/tiny/umls/sensitivity/K_b2/seed0/metrics_test.json",
    ]
    proc = run_snakemake(wf, "--cores", "2", *targets, "--config", "preset=tiny", "--configfile", str(extra))
    counts = job_counts(proc.stdout)
    assert counts["train"] == 5, counts
    kb2 = wf / "results/tiny/umls/sensitivity/K_b2/seed0"
    cfg = yaml.safe_load((kb2 / "config.yaml").read_text())
    assert cfg["diffusion"]["band_steps"] == [0.5, 0.0] and cfg["dtm"]["margin_scales"] == [1.0, 0.7]
    assert [c for c in pd.read_csv(kb2 / "trace.csv").columns if c.startswith("band_w")] == ["band_w1", "band_w2"]
    # the untrained source: 0 epochs; its DAM reads the full TransE's ranks as target
    random_run = json.loads((wf / "results/tiny/umls/dam_inputs/random_features/seed0/run.json").read_text())
    dam = json.loads((wf / random_run["stages"]["dam"] / "dam_report.json").read_text())
    assert dam["semantic_source"] == "random" and dam["target_source"] == "transe"
    semantic = json.loads((wf / Path(dam["provenance"]["pretrained"]).parent / "run.json").read_text())
    assert semantic["summary"]["epochs_run"] == 0
    tidy = pd.read_csv(wf / "results/tiny/tables/dam_inputs.csv")
    rho = tidy[tidy.metric == "dam_spearman"].set_index("variant")["mean"]
    assert set(rho.index) == {"random_features", "full_transe"} and rho.notna().all()
    curriculum = pd.read_csv(wf / "results/tiny/tables/curriculum.csv")
    assert set(curriculum.variant) == {"easy_to_hard", "reversed"}


def test_an_unknown_grid_point_stops_naming_it(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    bad = write_yaml(
        wf / "bad.yaml",
        {"preset": "tiny", "presets": {"tiny": {"experiments": {"sensitivity": {"grid": {"K_b": ["5"]}}}}}},
    )
    proc = run_snakemake(wf, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "sensitivity.grid.K_b: unknown point '5'" in proc.stdout, proc.stdout[-2000:]
