"""The Snakemake DAG: lint, planning, config validation, the tiny preset end to end,
rerun triggers, interruption + --rerun-incomplete, and diverged runs under --keep-going."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import (
    NO_SLURM_BIN,
    built_in_recipe_with,
    copy_workflow,
    env,
    figure_files,
    job_counts,
    plan_jobs,
    run_snakemake,
    snakemake_cmd,
    table_files,
    tiny_reference,
    write_yaml,
)

REPO_WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"


@pytest.fixture()
def wf(tmp_path) -> Path:
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir, _ = tiny_reference(tmp_path_factory.getbasetemp())
    return workdir


# ------------------------------------------------------------------------------------------
# static checks
# ------------------------------------------------------------------------------------------
def test_lint_is_clean(wf):
    proc = run_snakemake(wf, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Lints for" not in proc.stdout, proc.stdout
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout


def test_paper_preset_plans_without_any_data(wf, tmp_path):
    """-n all_tables for the default preset (paper) plans even where no dataset is available."""
    empty_mirror = tmp_path / "no_mirror"
    empty_mirror.mkdir()
    proc = run_snakemake(wf, "-n", "all_tables", mirror=empty_mirror)
    counts = job_counts(proc.stdout)
    # 6 datasets x 5 seeds x (6 samplers + 4 ablation variants, of which `full` is main's dans run: one run
    # per distinct setting); tables: main, ablation, efficiency, paper_vs_ours, hardness
    assert counts["train"] == 6 * 5 * (6 + 3), counts
    assert counts["fetch_dataset"] == counts["pretrain"] == counts["dam"] == 6, counts
    # dans (mu 1, ccd, DAM) + w/o DAM + w/o CCD + dhns warm starts per dataset; w/o DTM shares dans'
    assert counts["diffusion"] == 6 * 4, counts
    assert counts["report_table"] == 5 and counts["dataset_stats"] == 1, counts
    assert not (wf / "results").exists() and not (wf / "data").exists()


def test_every_preset_plans_all_targets(wf):
    # quick adds the curriculum and DAM-input tables and the curriculum's band-weight figure
    for preset, tables, figures in (("paper", 5, 3), ("quick", 7, 4), ("tiny", 5, 3)):
        proc = run_snakemake(wf, "-n", "--config", f"preset={preset}")
        counts = job_counts(proc.stdout)
        assert counts["report_table"] == tables and counts["report_figure"] == figures, (preset, counts)
        assert counts["train"] > 0 and counts["all"] == 1, (preset, counts)
        assert counts["diagnose"] > 0 and counts["diagnose_warm_start"] > 0 and counts["report_diagnostics"] == 1


def test_fidelity_and_calibration_presets_plan_their_backbone_axis(wf):
    """fidelity crosses every main/ablation variant with both backbones, except draw-only samplers on the 1-N
    backbone; one METHOD.md TransE (DAM's source, shared with the TransE backbone) and one ComplEx pretraining
    per dataset; calibration trains each recipe alone, without any stage."""
    proc = run_snakemake(wf, "-n", "all_tables", "--config", "preset=fidelity")
    counts = job_counts(proc.stdout)
    # 2 datasets x 3 seeds x (ComplEx: 6 main + 4 ablation; TransE: 9 main + 4 ablation; main includes the
    # uniform_term control), less ablation full@X, which is main dans@X (one run per distinct setting)
    assert counts["train"] == 2 * 3 * ((6 + 3) + (9 + 3)), counts
    assert "main/uniform_term@complex_n3_1n/seed0" in proc.stdout
    assert counts["pretrain"] == 4 and counts["dam"] == 2, counts
    assert "main/uniform@complex_n3_1n/seed0" in proc.stdout and "main/bernoulli@transe/seed0" in proc.stdout
    for sampler in ("bernoulli", "self_adversarial", "nscaching"):
        assert f"main/{sampler}@complex_n3_1n" not in proc.stdout, sampler
    proc = run_snakemake(wf, "-n", "all_tables", "--config", "preset=calibration")
    counts = job_counts(proc.stdout)
    assert counts["train"] == 2 * 3 * 7 and "pretrain" not in counts and "dam" not in counts, counts
    assert "calibration/redgnn/seed0" in proc.stdout
    assert counts["report_table"] == 2, counts  # calibration, relations


def test_diffusion_samplers_run_on_redgnn_and_unsupported_samplers_leave_pairs_out(wf):
    """Crossing main with RED-GNN plans the diffusion samplers on it too (its own Stage 0 and warm starts in its
    candidate space); a backbone's `unsupported_samplers` entry (e.g. a plugin backbone's) leaves those pairs out."""
    variants = {"main": {"variants": ["uniform", "uniform_term", "dhns", "dans"]}}
    extra = write_yaml(
        wf / "rg.yaml", {"presets": {"tiny": {"backbones": ["redgnn", "transe"], "experiments": variants}}}
    )
    proc = run_snakemake(wf, "-n", "all_tables", "--config", "preset=tiny", "--configfile", str(extra))
    for sampler in ("uniform", "uniform_term", "dhns", "dans"):
        assert f"main/{sampler}@redgnn/seed0" in proc.stdout and f"main/{sampler}@transe/seed0" in proc.stdout
    assert "pretrain/redgnn-" in proc.stdout
    limited = write_yaml(
        wf / "rg_limited.yaml",
        {
            "unsupported_samplers": {"redgnn": {"samplers": ["dans", "dhns"], "reason": "a test"}},
            "presets": {"tiny": {"backbones": ["redgnn", "transe"], "experiments": variants}},
        },
    )
    proc = run_snakemake(wf, "-n", "all_tables", "--config", "preset=tiny", "--configfile", str(limited))
    assert "main/uniform_term@redgnn/seed0" in proc.stdout
    assert "main/dans@redgnn" not in proc.stdout and "main/dhns@redgnn" not in proc.stdout
    assert "main/dans@transe/seed0" in proc.stdout and "main/dhns@transe/seed0" in proc.stdout


@pytest.mark.slow
def test_backbone_recipe_per_dataset(wf):
    """A recipe's `per_dataset` entry replaces its keys on that dataset only: in the calibration run, in the
    backbone's Stage 0 and warm start (their own folders), and in the crossed runs; other datasets keep the
    shared keys (RED-GNN's published setting differs per dataset)."""
    small = built_in_recipe_with(  # the built-in redgnn at toy sizes, with a per_dataset entry of its own
        "redgnn",
        {
            "model.dim": 8,
            "model.gnn_layers": 2,
            "train.batch_size": 300,
            "train.eval_batch_size": 500,
            "train.epochs": 1,
            "per_dataset": {"nations": {"model.dim": 4, "model.activation": "relu"}},
        },
    )
    extra = write_yaml(
        wf / "per_dataset.yaml",
        {
            "backbones": {"redgnn": small},
            "presets": {
                "tiny": {
                    "datasets": ["umls", "nations"],
                    "backbones": ["redgnn"],
                    "experiments": {"calibration": {"variants": ["redgnn"]}, "main": {"variants": ["uniform", "dans"]}},
                }
            },
        },
    )
    calibration = [f"results/tiny/{ds}/calibration/redgnn/seed0/metrics_test.json" for ds in ("umls", "nations")]
    run_snakemake(wf, *calibration, "--cores", "1", "--config", "preset=tiny", "--configfile", str(extra), timeout=900)
    for ds, dim, activation in (("umls", 8, "tanh"), ("nations", 4, "relu")):
        cfg = yaml.safe_load((wf / f"results/tiny/{ds}/calibration/redgnn/seed0/config.yaml").read_text())
        assert (cfg["model"]["dim"], cfg["model"]["gnn_layers"], cfg["model"]["activation"]) == (dim, 2, activation)
    # the crossing: each dataset's Stage 0 and warm start are fitted with its own recipe (another folder key)
    proc = run_snakemake(wf, "-n", "all_tables", "--config", "preset=tiny", "--configfile", str(extra))
    stages = {}
    for job in plan_jobs(proc.stdout):
        if job["rule"] in ("pretrain", "diffusion"):
            stages.setdefault((job["rule"], job["wildcards"]["dataset"]), []).append(job["output"][0].split("/")[4])
    redgnn = {ds: [k for k in stages[("pretrain", ds)] if k.startswith("redgnn-")] for ds in ("umls", "nations")}
    assert len(redgnn["umls"]) == len(redgnn["nations"]) == 1 and redgnn["umls"] != redgnn["nations"], stages
    warm = {ds: stages[("diffusion", ds)] for ds in ("umls", "nations")}
    assert warm["umls"] and warm["nations"] and set(warm["umls"]).isdisjoint(warm["nations"]), warm


def test_profiles_plan(wf):
    for profile in ("local", "gpu", "slurm", "slurm-gpu"):
        proc = run_snakemake(wf, "--profile", f"profiles/{profile}", "-n", "--config", "preset=tiny")
        assert job_counts(proc.stdout)["train"] > 0, profile
    gpu = run_snakemake(wf, "--profile", "profiles/gpu", "-n", "-p", "--config", "preset=tiny")
    assert "gpu_slot=1" in gpu.stdout
    cpu = run_snakemake(wf, "--profile", "profiles/local", "-n", "-p", "--config", "preset=tiny")
    assert "gpu_slot" not in cpu.stdout and "gpu=1" not in cpu.stdout


TORCH_RULES = ("pretrain", "dam", "diffusion", "train", "diagnose", "diagnose_warm_start")


def _gpu_jobs_at_once(wf: Path, slots: int) -> list[int]:
    """How many GPU jobs the scheduler starts together, round by round, with `--resources gpu_slot=SLOTS`.

    A --touch run schedules like a real one (resources are honoured, unlike -n, which starts every ready
    job at once) but runs nothing. Placeholders stand in for the data and stage outputs (pretraining, DAM,
    warm starts), so the first round has every training run and warm-start diagnosis ready at once."""
    plan = plan_jobs(run_snakemake(wf, "all_tables", "-n", "--config", "preset=tiny").stdout)
    for job in plan:
        if job["rule"] in ("fetch_dataset", "pretrain", "dam", "diffusion"):
            for out in job["output"]:
                (wf / out).parent.mkdir(parents=True, exist_ok=True)
                (wf / out).write_text("placeholder of the --touch scheduling test\n")
    proc = run_snakemake(
        wf,
        "all_tables",
        "--profile",
        "profiles/gpu",
        "--touch",
        "--cores",
        "16",
        "--resources",
        f"gpu_slot={slots}",
        "--config",
        "preset=tiny",
    )
    rounds = proc.stdout.split("Execute ")[1:]
    return [sum(job["rule"] in TORCH_RULES for job in plan_jobs(r)) for r in rounds]


def test_gpu_slots_let_several_jobs_share_a_card(wf):
    """profiles/gpu: each torch job takes one gpu_slot; N slots put up to N of them on the card at once (the
    first round has 9 ready: 6 training runs, 3 warm-start diagnoses)."""
    at_once = _gpu_jobs_at_once(wf, 1)
    assert at_once[0] == 1 and max(at_once) == 1, at_once
    at_once = _gpu_jobs_at_once(copy_workflow(wf.parent / "three"), 3)
    assert at_once[0] == 3 and max(at_once) == 3, at_once
    assert not list((wf / "results").rglob("metrics_test.json")), "a --touch run must not produce anything"


BAD_CONFIGS = {
    "top-level key": ({"presett": "tiny"}, "presett"),
    "preset key": ({"presets": {"tiny": {"seedz": [0]}}}, "seedz"),
    "experiment selection key": (
        {"presets": {"tiny": {"experiments": {"main": {"variantz": ["uniform"]}}}}},
        "variantz",
    ),
    "dans-kgc key in overrides": ({"presets": {"tiny": {"overrides": {"train.epochz": 3}}}}, "train.epochz"),
    "dans-kgc value type": ({"presets": {"tiny": {"overrides": {"train.epochs": "many"}}}}, "train.epochs"),
    "dans-kgc key in a variant": (
        {"experiments": {"ablation": {"variants": {"wo_x": {"dtm.enabeld": False}}}}},
        "dtm.enabeld",
    ),
    "managed key": ({"presets": {"tiny": {"overrides": {"seed": 3}}}}, "'seed'"),
    "unknown preset": ({"preset": "huge"}, "huge"),
    "unknown dataset": ({"presets": {"tiny": {"datasets": ["umlz"]}}}, "umlz"),
    "unknown variant": ({"presets": {"tiny": {"experiments": {"main": {"variants": ["unifrom"]}}}}}, "unifrom"),
    "enum value": ({"on_divergence": "maybe"}, "on_divergence"),
    "per-dataset recipe, unknown dataset": (
        {"backbones": {"redgnn": {"model.name": "redgnn", "per_dataset": {"famliy": {"model.dim": 8}}}}},
        "backbones.redgnn.per_dataset.famliy: unknown dataset 'famliy'",
    ),
    "per-dataset recipe, backbone identity": (
        {"backbones": {"redgnn": {"model.name": "redgnn", "per_dataset": {"family": {"model.name": "transe"}}}}},
        "backbones.redgnn.per_dataset.family: key 'model.name' says what the backbone is",
    ),
    "per-dataset recipe, dans-kgc key": (
        {"backbones": {"redgnn": {"model.name": "redgnn", "per_dataset": {"family": {"model.dimm": 8}}}}},
        "model.dimm",
    ),
    "recipe without model.name": ({"backbones": {"redgnn": {"model.dim": 8}}}, "backbones.redgnn: no model.name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_wrong_config_stops_naming_the_key(wf, case):
    extra, needle = BAD_CONFIGS[case]
    extra = {"preset": "tiny", **extra}
    proc = run_snakemake(wf, "-n", "--configfile", str(write_yaml(wf / "bad.yaml", extra)), check=False)
    assert proc.returncode != 0, proc.stdout
    assert needle in proc.stdout, proc.stdout[-3000:]


# ------------------------------------------------------------------------------------------
# the tiny preset end to end
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_preset_end_to_end(tiny_run):
    for path in table_files(tiny_run) + figure_files(tiny_run):
        assert path.exists() and path.stat().st_size > 0, path
    runs = sorted(tiny_run.glob("results/tiny/umls/*/*/seed0/metrics_test.json"))
    assert len(runs) == 6, runs  # main 3 + ablation 2 + sensitivity 2, ablation full = main dans (one run)
    assert not (tiny_run / "results/tiny/umls/ablation/full").exists()
    shared = json.loads((tiny_run / "results/tiny/umls/main/dans/seed0/run.json").read_text())["tags"]
    assert shared["stands_for"] == "main/dans,ablation/full", shared
    assert ",full," in (tiny_run / "results/tiny/tables/ablation.csv").read_text()
    for m in runs:
        metrics = json.loads(m.read_text())
        assert 0.0 < metrics["mrr"] <= 1.0, m
        assert metrics["tags"]["experiment"] == m.parts[-4] and metrics["tags"]["variant"] == m.parts[-3]
    # stages computed once per dataset: one pretrain, one DAM, three warm starts (name-<hash of inputs>)
    assert len(list((tiny_run / "results/tiny/umls/pretrain").iterdir())) == 1
    assert len(list((tiny_run / "results/tiny/umls/dam").iterdir())) == 1
    assert sorted(p.name.rsplit("-", 1)[0] for p in (tiny_run / "results/tiny/umls/diffusion").iterdir()) == [
        "dans-mu1.0-ccd-dam",
        "dans-mu1.0-null-dam",
        "dans-mu2.0-ccd-dam",
    ]
    # logs and benchmark records per job
    assert (tiny_run / "logs/train/tiny/umls/main/dans/seed0.log").exists()
    assert (tiny_run / "results/benchmarks/train/tiny/umls/main/dans/seed0.tsv").exists()
    # diagnostics: one per DANS run (main dans = ablation full, ablation wo_ccd, sensitivity mu2.0 / eta0.9) and per
    # warm start
    diag = tiny_run / "results/tiny/umls/diagnostics"
    assert len(list(diag.glob("*/*/seed0.json"))) == 4 and len(list(diag.glob("warm_start/*.json"))) == 3
    for path in [diag / "main/dans/seed0.json", *diag.glob("warm_start/*.json")]:
        result = json.loads(path.read_text())
        bands = result["bands"]["rows"]
        assert len(bands) == 4 and all(0.0 <= b[m] <= 1.0 for b in bands for m in ("active", "outscore", "quantile"))
        assert len(result["denoiser"]["mse"]) == 8  # diffusion.steps of the tiny preset
        assert {r["sampler"] for r in result["false_negatives"]["rows"]} >= {"uniform", "nscaching", "dans"}
        assert path.with_suffix(".md").exists() and path.with_suffix(".png").stat().st_size > 0
    assert "band4_quantile" in (tiny_run / "results/tiny/umls/main/dans/seed0/trace.csv").read_text()
    hardness = (tiny_run / "results/tiny/tables/hardness.csv").read_text()
    assert "band4_quantile_mean" in hardness and ",dans," in hardness
    table = (tiny_run / "results/tiny/tables/diagnostics.md").read_text()
    assert "main/dans seed 0" in table and "warm start dans-mu1.0-ccd-dam" in table
    assert (tiny_run / "logs/diagnose/tiny/umls/main/dans/seed0.log").exists()
    assert (tiny_run / "results/benchmarks/diagnose/tiny/umls/main/dans/seed0.tsv").exists()
    # a second run has nothing to do
    proc = run_snakemake(tiny_run, "all_tables", "all_figures", "-n", "--config", "preset=tiny")
    assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, expected",
    [
        # a DTM key: only the runs of the DANS sampler (4: main dans = ablation full is one run), their diagnoses
        # (and the reports that show them: the main, ablation, efficiency, paper_vs_ours and hardness tables)
        (
            {"dtm.lambda": 4.0},
            {"train": 4, "diagnose": 4, "report_table": 5, "report_figure": 3, "report_diagnostics": 1},
        ),
        # a warm-start key: the warm starts (and their diagnoses) and the DANS runs; never pretraining, DAM or the
        # baselines
        (
            {"diffusion.warmstart_epochs": 3},
            {
                "diffusion": 3,
                "diagnose_warm_start": 3,
                "train": 4,
                "diagnose": 4,
                "report_table": 5,
                "report_figure": 3,
                "report_diagnostics": 1,
            },
        ),
        # a reverse-chain key the warm start does not read: the DANS runs only, no new warm start
        (
            {"diffusion.sampling_steps": 4},
            {"train": 4, "diagnose": 4, "report_table": 5, "report_figure": 3, "report_diagnostics": 1},
        ),
        # the training-time hardness columns: read by the diffusion runs only, not by the baselines
        (
            {"diagnostics.triples": 100},
            {"train": 4, "diagnose": 4, "report_table": 5, "report_figure": 3, "report_diagnostics": 1},
        ),
        # a key of a sampler the preset does not run: nothing
        ({"samplers.nscaching.cache_size": 9}, {}),
        # a pretraining key: everything downstream of pretraining, but not the data stage
        (
            {"pretrain.lr": 0.02},
            {
                "pretrain": 1,
                "dam": 1,
                "diffusion": 3,
                "train": 6,
                "diagnose": 4,
                "diagnose_warm_start": 3,
                "report_table": 5,
                "report_figure": 3,
                "report_diagnostics": 1,
            },
        ),
    ],
)
def test_changed_hyper_parameter_reruns_only_affected_jobs(tiny_run, change, expected):
    extra = write_yaml(tiny_run / "change.yaml", {"presets": {"tiny": {"overrides": change}}})
    proc = run_snakemake(
        tiny_run, "all_tables", "all_figures", "-n", "--config", "preset=tiny", "--configfile", str(extra)
    )
    counts = job_counts(proc.stdout)
    counts.pop("all_tables", None), counts.pop("all_figures", None), counts.pop("total", None)
    assert counts == expected, proc.stdout[-4000:]


# ------------------------------------------------------------------------------------------
# interruption: SIGKILL during training, then --rerun-incomplete
# ------------------------------------------------------------------------------------------
LONG_MAIN = {
    "presets": {
        "tiny": {"overrides": {"train.epochs": 25}, "experiments": {"main": {"variants": ["uniform", "bernoulli"]}}}
    }
}
MAIN_TABLE = "results/tiny/tables/main.csv"


@pytest.mark.slow
def test_sigkill_then_rerun_incomplete_resumes(tmp_path):
    reference = copy_workflow(tmp_path / "reference")
    run_snakemake(
        reference,
        MAIN_TABLE,
        "--cores",
        "2",
        "--config",
        "preset=tiny",
        "--configfile",
        str(write_yaml(reference / "long.yaml", LONG_MAIN)),
    )

    wf = copy_workflow(tmp_path / "killed")
    args = ["--cores", "2", "--config", "preset=tiny", "--configfile", str(write_yaml(wf / "long.yaml", LONG_MAIN))]
    runs = [wf / f"results/tiny/umls/main/{v}/seed0" for v in ("uniform", "bernoulli")]
    proc = subprocess.Popen(
        snakemake_cmd(MAIN_TABLE, *args),
        cwd=wf,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if any((r / "checkpoint.pt").exists() and not (r / "run.json").exists() for r in runs):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the workflow finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its running jobs, like a lost node
        proc.wait()
    killed = [r for r in runs if not (r / "metrics_test.json").exists()]
    assert any((r / "checkpoint.pt").exists() for r in killed), "no training job was killed mid-run"
    (pretrain,) = (wf / "results/tiny/umls/pretrain").glob("*/run.json")
    finished = {p: p.stat().st_mtime_ns for p in [pretrain, wf / "results/tiny/umls/data/fetch.txt"]}
    finished.update(
        {r / "metrics_test.json": (r / "metrics_test.json").stat().st_mtime_ns for r in runs if r not in killed}
    )

    run_snakemake(wf, "--unlock", *args)
    rerun = run_snakemake(wf, MAIN_TABLE, "--rerun-incomplete", *args)
    counts = job_counts(rerun.stdout)
    assert counts.get("train") == len(killed) and "pretrain" not in counts and "fetch_dataset" not in counts, counts
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    resumed = [
        r for r in killed if "resuming from" in (wf / f"logs/train/tiny/umls/main/{r.parts[-2]}/seed0.log").read_text()
    ]
    assert resumed, "no interrupted run resumed from its checkpoint"
    for r in resumed:
        assert json.loads((r / "run.json").read_text())["summary"]["resumed_from_epoch"] > 0
    assert (wf / MAIN_TABLE).read_text() == (reference / MAIN_TABLE).read_text()


# ------------------------------------------------------------------------------------------
# a diverging run: recorded (default) or failing (--keep-going finishes the rest)
# ------------------------------------------------------------------------------------------
DIVERGE = {
    "experiments": {"main": {"variants": {"diverge": {"train.sampler": "uniform", "train.margin": float("nan")}}}},
    "presets": {"tiny": {"experiments": {"main": {"variants": ["uniform", "diverge"]}}}},
}


@pytest.mark.slow
def test_diverged_run_is_recorded_and_tables_still_build(wf):
    extra = str(write_yaml(wf / "diverge.yaml", DIVERGE))
    proc = run_snakemake(
        wf,
        MAIN_TABLE,
        "results/tiny/tables/efficiency.csv",
        "--keep-going",
        "--cores",
        "2",
        "--config",
        "preset=tiny",
        "--configfile",
        extra,
    )
    assert "DIVERGED, recorded as a failed run" in proc.stdout and "loss is nan" in proc.stdout
    log = (wf / "logs/train/tiny/umls/main/diverge/seed0.log").read_text()
    assert "loss is nan at epoch 1" in log and "recorded as a failed run" in log
    metrics = json.loads((wf / "results/tiny/umls/main/diverge/seed0/metrics_test.json").read_text())
    assert metrics["status"] == "failed" and metrics["mrr"] is None
    assert json.loads((wf / "results/tiny/umls/main/uniform/seed0/metrics_test.json").read_text())["mrr"] > 0
    assert (wf / MAIN_TABLE).exists() and (wf / "results/tiny/tables/efficiency.csv").exists()
    assert "diverge" in (wf / MAIN_TABLE).read_text()


@pytest.mark.slow
def test_diverged_run_fails_with_on_divergence_fail(wf):
    extra = str(write_yaml(wf / "diverge.yaml", {**DIVERGE, "on_divergence": "fail"}))
    proc = run_snakemake(
        wf, MAIN_TABLE, "--keep-going", "--cores", "2", "--config", "preset=tiny", "--configfile", extra, check=False
    )
    assert proc.returncode != 0
    assert "Error in rule train" in proc.stdout and "loss is nan at epoch 1" in proc.stdout
    # --keep-going: the healthy run still finished; its failed neighbour left no outputs
    assert (wf / "results/tiny/umls/main/uniform/seed0/metrics_test.json").exists()
    assert not (wf / "results/tiny/umls/main/diverge/seed0/run.json").exists()


# ------------------------------------------------------------------------------------------
# every backbone through the whole chain
# ------------------------------------------------------------------------------------------
TINY_CHANGES = {  # the built-in recipes at toy sizes
    "rotate_nssa": {"model.dim": 8, "train.num_negatives": 4},
    "distmult_n3_1n": {"model.dim": 8},
    "complex_n3_1n": {"model.dim": 8},
    "quate_n3_1n": {"model.dim": 4},
    "conve_1n": {"model.dim": 8, "model.conve_filters": 2, "train.batch_size": 512},
    "redgnn": {"model.dim": 8, "model.gnn_layers": 2, "train.batch_size": 256},
}
# a config's recipe replaces the built-in one of its name whole: each is the built-in's keys with its toy sizes
TINY_BACKBONES = {name: built_in_recipe_with(name, changes) for name, changes in TINY_CHANGES.items()}
# backbones the diffusion samplers cannot run on (config.yaml `unsupported_samplers`): none since RED-GNN got its
# candidate space; kept so a backbone added there is checked the same way
NO_DIFFUSION: set = set()


@pytest.mark.slow
def test_every_backbone_runs_pretrain_dam_warm_start_and_training(wf):
    """Each backbone: its own Stage 0, a warm start in its space, DANS-KGC and DHNS on top, a row in main.csv;
    draw-only samplers are left out on 1-N backbones; the calibration table holds each backbone alone."""
    import yaml

    names = ["transe", *TINY_BACKBONES]
    # a preset of its own: the tiny one's sizes, 1 epoch, and only the experiments asserted below (a merge into
    # `tiny` would keep its ablation and sensitivity, a third more jobs on every backbone)
    tiny = yaml.safe_load((wf / "config.yaml").read_text())["presets"]["tiny"]
    preset = {
        "datasets": tiny["datasets"],
        "seeds": tiny["seeds"],
        "backbones": names,
        "overrides": {**tiny["overrides"], "pretrain.epochs": 1, "train.epochs": 1},
        "experiments": {"main": {"variants": ["uniform", "bernoulli", "dhns", "dans"]}, "calibration": {}},
        "resources": tiny["resources"],
    }
    extra = write_yaml(wf / "backbones.yaml", {"backbones": TINY_BACKBONES, "presets": {"backbones": preset}})
    run_snakemake(
        wf, "all_tables", "--cores", "2", "--config", "preset=backbones", "--configfile", str(extra), timeout=1500
    )
    root = wf / "results/backbones/umls"
    for name in names:
        samplers = (
            ["uniform"]
            + ([] if name in NO_DIFFUSION else ["dhns", "dans"])
            + (["bernoulli"] if name in ("transe", "rotate_nssa") else [])
        )
        for sampler in samplers:
            metrics = json.loads((root / f"main/{sampler}@{name}/seed0/metrics_test.json").read_text())
            assert metrics.get("status") != "failed" and 0.0 < metrics["mrr"] <= 1.0, (name, sampler)
            assert metrics["tags"]["backbone"] == name and "anchor_outscores_answer" in metrics["anchor_diagnostic"]
        assert not (root / f"main/bernoulli@{name}").exists() or name in ("transe", "rotate_nssa")
        for sampler in ("dhns", "dans"):
            assert not (root / f"main/{sampler}@{name}").exists() or name not in NO_DIFFUSION, (name, sampler)
        calib = json.loads((root / f"calibration/{name}/seed0/metrics_test.json").read_text())
        assert calib["backbone"]["name"] == calib["model"] and calib["train_summary"]["epochs_run"] == 1
    # one Stage-0 pretraining per backbone, METHOD.md's TransE (DAM's source) shared with the TransE backbone
    pretrained = {json.loads((p / "run.json").read_text())["backbone"]["name"] for p in (root / "pretrain").iterdir()}
    assert pretrained == {"transe", "rotate", "distmult", "complex", "quate", "conve", "redgnn"}
    assert len(list((root / "dam").iterdir())) == 1
    # each warm-start diagnosis names the backbone it ran on with its Stage 0's training mode
    diagnosed = {
        json.loads(p.read_text())["subject"]["backbone"] for p in (root / "diagnostics/warm_start").glob("*.json")
    }
    assert {"TransE (NS)", "ComplEx (1-N)", "ConvE (1-N)", "RED-GNN (1-N)"} <= diagnosed, diagnosed
    main = (wf / "results/backbones/tables/main.csv").read_text()
    calibration = (wf / "results/backbones/tables/calibration.csv").read_text()
    relations = (wf / "results/backbones/tables/relations.md").read_text()  # per relation, every backbone
    for label in ("TransE", "RotatE", "DistMult", "ComplEx", "QuatE", "ConvE", "RED-GNN"):
        assert label in main and label in calibration and label in relations, label


# ------------------------------------------------------------------------------------------
# one run per distinct setting
# ------------------------------------------------------------------------------------------
def _distinct_settings(wf: Path, preset: str) -> dict:
    """An oracle independent of common.smk: config.yaml's preset + variant overrides less the package
    defaults, per dataset and seed -> the (experiment, variant) folders that share them, in the canonical
    order main > ablation > sensitivity."""
    import yaml

    from dans_kgc.config import load_defaults

    defaults, cfg = load_defaults(), yaml.safe_load((wf / "config.yaml").read_text())

    def default(key):
        node = defaults
        for part in key.split("."):
            node = node[part]
        return node

    p = cfg["presets"][preset]
    out: dict = {}
    for exp in ("main", "ablation", "sensitivity", "curriculum", "dam_inputs"):
        chosen = p["experiments"].get(exp)
        if chosen is None:
            continue
        spec = cfg["experiments"][exp]
        if exp == "sensitivity":
            grids = chosen.get("grid") or {name: None for name in spec["grid"]}  # listed grids only
            variants = {}
            for name, values in grids.items():
                g = spec["grid"][name]
                if "points" in g:  # named points: several keys each
                    variants.update(
                        {f"{name}{pt}": {**spec["base"], **g["points"][str(pt)]} for pt in values or g["points"]}
                    )
                else:
                    variants.update({f"{name}{v}": {**spec["base"], g["key"]: v} for v in values or g["values"]})
        else:
            variants = {v: spec["variants"][v] for v in chosen.get("variants") or spec["variants"]}
        for variant, ov in variants.items():
            flat = {**(p.get("overrides") or {}), **ov}
            key = frozenset((k, repr(v)) for k, v in flat.items() if v != default(k))
            for ds in chosen.get("datasets") or p["datasets"]:
                for seed in chosen.get("seeds") or p["seeds"]:
                    out.setdefault((ds, seed, key), []).append(f"results/{preset}/{ds}/{exp}/{variant}/seed{seed}")
    return out


@pytest.mark.parametrize("preset", ["tiny", "quick"])
def test_one_train_job_per_distinct_setting(wf, preset):
    """The same effective settings in two experiments train once, in the first one's folder (main dans =
    ablation full = the sensitivity base point); every report that shows them reads that folder."""
    proc = run_snakemake(wf, "-n", "--config", f"preset={preset}")
    jobs = plan_jobs(proc.stdout)
    trained = sorted(str(Path(j["output"][0]).parent) for j in jobs if j["rule"] == "train")
    settings = _distinct_settings(wf, preset)
    assert len(trained) == len(settings) == job_counts(proc.stdout)["train"], (trained, settings)
    assert trained == sorted(folders[0] for folders in settings.values())
    shared = {folders[0]: folders[1:] for folders in settings.values() if len(folders) > 1}
    # tiny: ablation full = main dans; quick also: the sensitivity base points mu1.0 and eta0.5, the default
    # curriculum, and the curriculum without DTM = the ablation's w/o DTM
    assert f"results/{preset}/umls/main/dans/seed0" in shared, shared
    assert f"results/{preset}/umls/ablation/full/seed0" in shared[f"results/{preset}/umls/main/dans/seed0"]
    if preset == "quick":
        assert {f"results/quick/umls/sensitivity/{v}/seed0" for v in ("mu1.0", "eta0.5")} | {
            "results/quick/umls/curriculum/easy_to_hard/seed0"
        } < set(shared["results/quick/umls/main/dans/seed0"])
        assert shared["results/quick/umls/ablation/wo_dtm/seed0"] == [
            "results/quick/umls/curriculum/no_curriculum/seed0"
        ]
    reports = {
        j["wildcards"].get("table") or j["wildcards"].get("figure"): j["input"]
        for j in jobs
        if j["rule"] in ("report_table", "report_figure")
    }
    dans = f"results/{preset}/umls/main/dans/seed0/metrics_test.json"
    for name in ("main", "ablation", "paper_vs_ours", "hardness") + (("sensitivity",) if preset == "quick" else ()):
        assert dans in reports[name], name
    every_input = {p for j in jobs for p in j["input"]}
    for duplicates in shared.values():
        assert not any(p.startswith(d + "/") for d in duplicates for p in every_input), duplicates
    # a shared run says what it stands for; a change of that label alone does not retrain it (the job resumes)
    assert "stands_for" in (wf / "workflow/scripts/dans_kgc_job.py").read_text()


def test_shared_run_is_placed_under_every_label(tmp_path):
    """A run folder tagged stands_for=main/dans,ablation/full is loaded as both runs by the reports."""
    from dans_kgc.reports.runs import load_runs, select

    run = tmp_path / "umls/main/dans/seed0"
    run.mkdir(parents=True)
    tags = {"experiment": "main", "variant": "dans", "stands_for": "main/dans,ablation/full@transe"}
    (run / "metrics_test.json").write_text(json.dumps({"dataset": "umls", "seed": 0, "mrr": 0.5, "tags": tags}))
    (run / "run.json").write_text(json.dumps({"dataset": "umls", "seed": 0, "tags": tags}))
    records = load_runs([run])
    assert sorted((r.experiment, r.variant, r.recipe) for r in records) == [
        ("ablation", "full", "transe"),
        ("main", "dans", None),
    ]
    assert [r.variant for r in select(records, ["ablation"])] == ["full"]
    assert all(r.value("mrr") == 0.5 for r in records)


# ------------------------------------------------------------------------------------------
# Snakemake's report
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_snakemake_report_lists_every_table_and_figure(tiny_run, tmp_path):
    """`snakemake --report report.zip` of the finished tiny run: every table and figure (and run diagnosis)
    in the browsable report, with its caption from workflow/report/."""
    import zipfile

    out = tmp_path / "report.zip"
    run_snakemake(tiny_run, "--report", str(out), "--config", "preset=tiny")
    from collections import Counter

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        text = " ".join(archive.read(n).decode(errors="replace") for n in names if n.endswith((".html", ".js")))
    wanted = [p for p in table_files(tiny_run) if p.suffix == ".csv"] + [
        tiny_run / "results/tiny/tables/diagnostics.csv"
    ]
    wanted += [p for p in figure_files(tiny_run) if p.suffix == ".png"]
    wanted += sorted((tiny_run / "results/tiny/umls/diagnostics").rglob("*.png"))
    assert len(wanted) == 7 + 3 + 4 + 3
    # the report keeps each file as report/data/raw/<hash>/<name>: count the names (the diagnoses are seed0.png)
    packed = Counter(Path(n).name for n in names if "/data/raw/" in n)
    missing = Counter(p.name for p in wanted) - packed
    assert not missing, (missing, names)
    for kind in ("table1_datasets", "main", "ablation", "sensitivity", "diagnosis"):
        caption = " ".join((REPO_WORKFLOW / "report" / f"{kind}.rst").read_text().split()[:3])
        assert caption in text, kind


def test_every_table_and_figure_has_a_report_caption():
    """`snakemake --report` needs workflow/report/NAME.rst for every table and figure a preset can build
    (dans_kgc.planning TABLES / FIGURES): a new report without one would break the report of the presets that
    build it."""
    from dans_kgc.planning import FIGURES, TABLES

    names = set(TABLES) | set(FIGURES)
    assert {"main", "efficiency_tuned", "curves_tuned", "tuning_history"} <= names
    missing = sorted(n for n in names if not (REPO_WORKFLOW / "report" / f"{n}.rst").exists())
    assert not missing, missing


def test_runs_without_slurm_never_wait_for_a_slurm_controller():
    """The SLURM test leaves SLURM's client tools installed with no controller running; there the real
    `scontrol show config`, which snakemake-executor-plugin-slurm runs at every Snakemake start, waits ~9 s.
    Every other workflow test's environment answers it at once, as a machine without SLURM does."""
    import shutil
    import time

    start = time.perf_counter()
    proc = subprocess.run(["scontrol", "show", "config"], env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and time.perf_counter() - start < 5
    assert shutil.which("scontrol", path=env()["PATH"]) == str(NO_SLURM_BIN / "scontrol")
    real = shutil.which("scontrol", path=env(slurm=True)["PATH"])
    assert real is None or Path(real).parent != NO_SLURM_BIN  # the SLURM test gets the machine's own
