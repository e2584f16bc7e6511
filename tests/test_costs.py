"""Cost estimates: the fits recover known power laws, a job is priced from its own settings, and a preset's
plan is priced job by job."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dans_kgc.costs import CostModelError, dataset_size, job_seconds, load_cost_model, preset_cost, read_benchmark

GRAPHS = {
    "a": (10_000, 1_000),
    "b": (40_000, 1_500),
    "c": (90_000, 9_000),
    "d": (300_000, 12_000),
    "e": (1_000_000, 100_000),
}


def law(t: float, e: float, k: float, b: float, c: float) -> float:
    return k * t**b * e**c


def bench_json(tmp_path: Path) -> Path:
    """A scale benchmark whose seconds follow known laws exactly (independent of the fitting code)."""
    cells: dict[str, Any] = {}
    for g, (t, e) in GRAPHS.items():
        for stage in ("fetch", "stats", "dam", "evaluate", "diagnose", "report"):
            cells[f"{g}/{stage}"] = {"status": "ok", "seconds": law(t, e, 1e-4, 1.0, 0.5)}
        for stage, k in (
            ("pretrain", 2e-4),
            ("train_uniform", 1e-4),
            ("train_dans", 8e-4),
            ("diffusion", 3e-4),
            ("diffusion_dhns", 3e-4),
        ):
            epoch = law(t, e, k, 1.0, 0.0)
            cells[f"{g}/{stage}"] = {
                "status": "ok",
                "epoch_seconds": epoch,
                "seconds": epoch + law(t, e, 1e-3, 0.5, 0.5),
            }
    cells["e/train_dans"]["status"] = "exit 137"  # a failed cell is left out of the fit, not read as a time
    graphs = {g: {"triples": t, "entities": e} for g, (t, e) in GRAPHS.items()}
    path = tmp_path / "bench_scale.json"
    path.write_text(json.dumps({"cells": cells, "graphs": graphs, "machine": "test", "threads": 1}))
    return path


def test_fits_recover_the_power_laws(tmp_path):
    model = load_cost_model(bench_json(tmp_path))
    dam = model.stage("dam")
    assert (dam.b, dam.c) == pytest.approx((1.0, 0.5), abs=1e-9)
    assert dam.seconds(500_000, 50_000) == pytest.approx(law(500_000, 50_000, 1e-4, 1.0, 0.5), rel=1e-9)
    train = model.stage("train_dans")
    assert train.seconds(200_000, 7) == pytest.approx(8e-4 * 200_000, rel=1e-9)
    assert train.overhead.seconds(200_000, 5_000) == pytest.approx(law(200_000, 5_000, 1e-3, 0.5, 0.5), rel=1e-9)


@dataclass
class Job:
    rule: str
    dataset: str | None = "d"
    model: str | None = "transe"
    overrides: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    benchmark: str = ""  # Snakemake's record: results/benchmarks/RULE/PRESET/...tsv
    preset: str = "p"


def test_a_training_job_is_priced_from_its_own_settings(tmp_path):
    model = load_cost_model(bench_json(tmp_path))
    t, e = 100_000, 10_000
    job = Job("train", overrides={"train.sampler": "dans", "train.epochs": 30, "train.eval_every": 10})
    epoch, overhead = 8e-4 * t, law(t, e, 1e-3, 0.5, 0.5)
    expected = 30 * epoch + 3 * overhead + law(t, e, 1e-4, 1.0, 0.5)  # 30 epochs, 3 validations, the test ranking
    assert job_seconds(job, model, (t, e)) == pytest.approx(expected, rel=1e-9)
    tune = Job(
        "tune", overrides={"train.sampler": "uniform", "tune.trials": 4, "tune.epochs": 5, "train.eval_every": 5}
    )
    assert job_seconds(tune, model, (t, e)) == pytest.approx(4 * (5 * 1e-4 * t + law(t, e, 1e-3, 0.5, 0.5)), rel=1e-9)
    warm = Job("diffusion", overrides={"diffusion.warmstart_epochs": 50}, args=["--kind", "dhns"])
    assert job_seconds(warm, model, (t, e)) == pytest.approx(50 * 3e-4 * t + law(t, e, 1e-3, 0.5, 0.5), rel=1e-9)
    assert job_seconds(Job("train", model="complex", overrides={"train.sampler": "dans"}), model, (t, e)) is None


def test_a_preset_is_priced_job_by_job(tmp_path):
    model = load_cost_model(bench_json(tmp_path))
    sizes = {"d": (100_000, 10_000), "f": (10_000, 1_000)}
    jobs = [
        Job("dam"),
        Job("dam", dataset="f"),
        Job("train", overrides={"train.epochs": 2, "train.eval_every": 1}),
        Job("train", model="complex"),
        Job("report_table", dataset=None),
    ]
    cost = preset_cost(jobs, model, sizes=sizes)
    rows = {(r["dataset"], r["rule"]): r for r in cost.rows}
    assert rows[("d", "dam")]["cpu_hours"] == pytest.approx(law(100_000, 10_000, 1e-4, 1.0, 0.5) / 3600)
    priced = 2 * 1e-4 * 100_000 + 2 * law(100_000, 10_000, 1e-3, 0.5, 0.5) + law(100_000, 10_000, 1e-4, 1.0, 0.5)
    assert rows[("d", "train")]["jobs"] == 2 and rows[("d", "train")]["not_modelled"] == 1
    assert rows[("d", "train")]["cpu_hours"] == pytest.approx(priced / 3600)
    report = (law(100_000, 10_000, 1e-4, 1.0, 0.5) + law(10_000, 1_000, 1e-4, 1.0, 0.5)) / 2
    assert rows[("(all)", "report_table")]["cpu_hours"] == pytest.approx(report / 3600)
    assert any("complex" in r for r in cost.not_modelled)
    assert "5 jobs" in cost.markdown("p", cores=8)


def test_sizes_before_a_fetch_and_errors(tmp_path):
    assert dataset_size("fb15k-237") == (272_115, 14_541)
    assert dataset_size("yago3-10-twin") == (1_079_040, 123_182)
    (tmp_path / "mine" / "kge").mkdir(parents=True)
    (tmp_path / "mine" / "kge" / "train.txt").write_text("a\tr\tb\nb\tr\tc\n\nc\ts\ta\n")
    assert dataset_size("mine", tmp_path) == (3, 3)
    assert dataset_size("nowhere", tmp_path) is None
    with pytest.raises(CostModelError, match="no scale benchmark"):
        load_cost_model(tmp_path / "missing.json")
    model = load_cost_model(bench_json(tmp_path))
    with pytest.raises(CostModelError, match="train_nscaching"):
        job_seconds(Job("train", overrides={"train.sampler": "nscaching"}), model, (10, 10))
    assert math.isfinite(model.stage("fetch").seconds(1, 1))


def test_plan_prices_the_snakefile_targets(in_tmp, capsys):
    """`dans-kgc plan` lists the jobs Snakemake would run for a target: all_tables of tiny, job for job."""
    from dans_kgc.cli import main
    from dans_kgc.planning import load_workflow_config, plan_jobs

    repo = Path(__file__).resolve().parents[1]
    config = load_workflow_config(repo / "config.yaml", {"preset": "tiny"})
    tables = plan_jobs(config, "tiny", targets="tables")
    everything = plan_jobs(config, "tiny")
    assert {j.rule for j in tables} >= {"pretrain", "dam", "train", "report_table"}
    assert "report_figure" not in {j.rule for j in tables} and "report_figure" in {j.rule for j in everything}
    assert (
        main(
            [
                "plan",
                "--preset",
                "tiny",
                "--targets",
                "tables",
                "--workflow-config",
                str(repo / "config.yaml"),
                "--costs",
                str(bench_json(in_tmp)),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"**{len(tables)} jobs" in out and "| umls | train |" in out
    args = [
        "plan",
        "--preset",
        "tiny",
        "--workflow-config",
        str(repo / "config.yaml"),
        "--costs",
        str(bench_json(in_tmp)),
    ]
    assert main([*args, "--measured", "no/such/folder"]) == 2  # one line, no traceback
    (in_tmp / "records").mkdir()
    assert main([*args, "--measured", str(in_tmp / "records")]) == 0
    assert "Measured: no job's Snakemake record below" in capsys.readouterr().out
    assert (
        main(
            [
                "plan",
                "--preset",
                "nope",
                "--workflow-config",
                str(repo / "config.yaml"),
                "--costs",
                str(bench_json(in_tmp)),
            ]
        )
        == 2
    )


def test_entities_get_no_exponent_of_their_own_when_they_grow_with_the_triples():
    """Along one family of shapes (entities = triples / 9) the split between the two exponents is not identified:
    the fit must give the combined exponent in triples, not two huge opposite ones."""
    from dans_kgc.costs import fit_power_law

    pts = [(t, t / 9, law(t, t / 9, 1e-4, 1.0, 0.5)) for t in (1e4, 4e4, 1.6e5, 1e6)]
    f = fit_power_law(pts)
    assert f.c == 0.0 and f.b == pytest.approx(1.5, abs=1e-9)
    assert f.seconds(3e5, 3e5 / 9) == pytest.approx(law(3e5, 3e5 / 9, 1e-4, 1.0, 0.5), rel=1e-9)


HEAD = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def record(path: Path, *rows: tuple[float, float, float]) -> None:
    """A Snakemake benchmark record: one (wall s, max_rss MB, cpu_time s) row per repeat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + "".join(f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t90\t{cpu}\n" for s, rss, cpu in rows))


@pytest.mark.parametrize("layout", ["dag", "kept"])
def test_measured_records_sit_beside_the_prediction(tmp_path, layout):
    """`plan --measured`: each row's measured jobs, CPU hours (cpu_time) and peak RSS, summed by hand; the
    predicted / measured ratio over the jobs both priced and measured, from the closed-form fits."""
    model = load_cost_model(bench_json(tmp_path))
    t, e = 100_000, 10_000
    setting = {"train.sampler": "uniform", "train.epochs": 2, "train.eval_every": 1}
    jobs = [
        Job("dataset_stats", dataset=None, benchmark="results/benchmarks/dataset_stats/p.tsv"),
        Job("dam", benchmark="results/benchmarks/dam/p/d/transe-1.tsv"),
        Job("train", overrides=setting, benchmark="results/benchmarks/train/p/d/main/uniform/seed0.tsv"),
        Job("train", overrides=setting, benchmark="results/benchmarks/train/p/d/main/uniform/seed1.tsv"),
        Job("train", model="complex", benchmark="results/benchmarks/train/p/d/main/uniform@complex/seed0.tsv"),
    ]
    cost = preset_cost(jobs, model, sizes={"d": (t, e)})
    root = tmp_path / "records"
    where = {  # the DAG's layout -> the kept one (reference/P/benchmarks: no preset folder)
        "dataset_stats/p.tsv": "dataset_stats.tsv",
        "dam/p/d/transe-1.tsv": "dam/d/transe-1.tsv",
        "train/p/d/main/uniform/seed0.tsv": "train/d/main/uniform/seed0.tsv",
        "train/p/d/main/uniform@complex/seed0.tsv": "train/d/main/uniform@complex/seed0.tsv",
    }
    rows = {
        "dataset_stats/p.tsv": [(2.0, 90.0, 36.0)],
        "dam/p/d/transe-1.tsv": [(400.0, 500.0, 360.0)],
        "train/p/d/main/uniform/seed0.tsv": [(4000.0, 800.0, 3600.0), (8000.0, 900.0, 7200.0)],  # two repeats
        "train/p/d/main/uniform@complex/seed0.tsv": [(2000.0, 2000.0, 1800.0)],
    }
    for rel, rs in rows.items():
        record(root / (rel if layout == "dag" else where[rel]), *rs)
    cost.measure(jobs, root)
    by = {(r["dataset"], r["rule"]): r for r in cost.rows}
    assert by[("d", "dam")]["measured"] == 1 and by[("d", "dam")]["measured_cpu_hours"] == pytest.approx(0.1)
    train = by[("d", "train")]
    assert train["measured"] == 2 and train["jobs"] == 3
    assert train["measured_cpu_hours"] == pytest.approx((5400 + 1800) / 3600)  # repeats averaged, then summed
    assert train["measured_wall_hours"] == pytest.approx((6000 + 2000) / 3600)
    assert train["peak_rss_mb"] == 2000.0
    assert train["priced_measured"] == 1  # the ComplEx run is measured but not priced
    # predicted, by the closed forms: stats and dam one process each; uniform 2 epochs + 2 validations + the test
    stats = law(t, e, 1e-4, 1.0, 0.5)
    dam = law(t, e, 1e-4, 1.0, 0.5)
    uniform = 2 * 1e-4 * t + 2 * law(t, e, 1e-3, 0.5, 0.5) + law(t, e, 1e-4, 1.0, 0.5)
    predicted, measured = (stats + dam + uniform) / 3600, (36 + 360 + 5400) / 3600
    text = cost.markdown("p", cores=2)
    assert "| d | train | 3 |" in text and "| 2 | 2.00 | 2,000 |" in text
    assert "4 of 5 jobs" in text and "largest polled peak RSS 2,000 MB (train on d;" in text
    assert f"predicted / measured {predicted / measured:.2f})" in text


def test_a_broken_record_is_named(tmp_path):
    bad = tmp_path / "r.tsv"
    bad.write_text("s\tmax_rss\n1.0\t2.0\n")
    with pytest.raises(CostModelError, match=r"r\.tsv: no column 'cpu_time'"):
        read_benchmark(bad)
    bad.write_text(HEAD + "x\t0\t1\t1\t1\t1\t0\t0\t90\t1\n")
    with pytest.raises(CostModelError, match=r"r\.tsv: column 's'"):
        read_benchmark(bad)
    bad.write_text("")
    with pytest.raises(CostModelError, match="expected a header"):
        read_benchmark(bad)
