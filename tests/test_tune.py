"""`dans-kgc tune`: equal-budget search on UMLS at toy size, resume after SIGKILL mid-trial, search-space
checks, keys left out, the DAG's tune stage and tuned runs, and the tuning reports on hand-made studies."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import copy_workflow, job_counts, run_snakemake, write_yaml

from dans_kgc.cli import main
from dans_kgc.config import load_config
from dans_kgc.tuning import SpaceError, load_space, resolve_space

TINY = [
    "model.dim=16",
    "train.eval_every=1",
    "train.checkpoint_every=1",
    "data.max_eval_triples=300",
    "threads=1",
    "tune.startup_trials=2",
]
SPACE = {
    "shared": {
        "train.lr": {"type": "float", "low": 1.0e-3, "high": 5.0e-2, "log": True},
        "train.margin": {"type": "float", "low": 0.5, "high": 4.0},
    }
}


def tune_args(out: Path, space: Path, *extra: str) -> list[str]:
    sets = [a for s in [*TINY, f"tune.space={space}", *extra] for a in ("--set", s)]
    return ["tune", "--dataset", "umls", "--out", str(out), "--quiet", *sets]


def study_trials(out: Path) -> list:
    import optuna

    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{out / 'study.db'}")
    return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{out / 'study.db'}").get_trials()


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------
def test_tune_cli_equal_budget_best_yaml_and_rerun(in_tmp):
    space = write_yaml(in_tmp / "space.yaml", SPACE)
    args = tune_args(in_tmp / "study", space, "train.epochs=5", "tune.epochs=2", "tune.max_seconds=60")
    assert main([*args, "--trials", "3"]) == 0
    info = json.loads((in_tmp / "study/study.json").read_text())
    budget = info["budget"]
    # the per-trial budget replaced train.epochs / train.max_seconds and is recorded as used
    assert (budget["trials"], budget["epochs_per_trial"], budget["max_seconds_per_trial"]) == (3, 2, 60.0)
    assert budget["trials_finished"] == 3 and budget["complete"] + budget["pruned"] == 3
    assert budget["wall_seconds_total"] > 0 and budget["epochs_run_total"] <= 3 * 2
    # the pruner saw the validation curve: valid MRR reported at every validation (Trainer.on_validation)
    for t in info["trials"]:
        trace = (in_tmp / f"study/trials/{t['number']:04d}/trace.csv").read_text().splitlines()
        assert len(t["intermediate"]) == len(trace) - 1 >= 1, t
    for t in info["trials"]:
        cfg = yaml.safe_load((in_tmp / f"study/trials/{t['number']:04d}/config.yaml").read_text())
        assert cfg["train"]["epochs"] == 2 and cfg["train"]["max_seconds"] == 60
        assert cfg["train"]["lr"] == t["params"]["train.lr"]
    # objective = the best trial's best validation MRR (run.json), never test
    best = info["best"]
    run = json.loads((in_tmp / f"study/trials/{best['trial']:04d}/run.json").read_text())
    assert best["value"] == run["summary"]["best_valid_mrr"]
    assert best["value"] == max(t["value"] for t in info["trials"] if t["state"] == "COMPLETE")
    assert not list((in_tmp / "study/trials").glob("*/metrics_test.json"))
    # best.yaml: flat overrides a run reads with --config, with the study's provenance
    cfg = load_config([in_tmp / "study/best.yaml"])
    assert cfg["train"]["lr"] == best["params"]["train.lr"] and cfg["train"]["margin"] == best["params"]["train.margin"]
    assert cfg["tuned"]["study"] == info["study"] and cfg["tuned"]["trial"] == best["trial"]
    assert cfg["tuned"]["objective"] == best["value"] and cfg["tuned"]["budget"]["epochs_per_trial"] == 2
    # the default SQLite file is recorded relative to the working directory: no machine's folders in the records
    assert cfg["tuned"]["storage"] == info["storage"] == "sqlite:///study/study.db"
    # a rerun finds the study finished (the total is --trials, not --trials more)
    assert main([*args, "--trials", "3"]) == 0
    assert len(study_trials(in_tmp / "study")) == 3
    # the study refuses other settings (an unequal budget) in one line naming the key
    assert main(tune_args(in_tmp / "study", space, "train.epochs=5", "tune.epochs=3", "tune.max_seconds=60")) == 2


def test_sigkill_mid_trial_then_rerun_continues_that_trial(in_tmp):
    space = write_yaml(in_tmp / "space.yaml", SPACE)
    out = in_tmp / "study"
    args = [*tune_args(out, space, "train.epochs=8", "train.batch_size=128"), "--trials", "4"]
    cmd = [sys.executable, "-m", "dans_kgc.cli", *args]
    victim = out / "trials/0001"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (victim / "checkpoint.pt").exists() and not (victim / "run.json").exists():
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the study finished before trial 1 could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {t.number: t for t in study_trials(out)}
    assert before[1].state.name == "RUNNING" and not (victim / "run.json").exists()
    killed_params = dict(before[1].params)

    assert main(args) == 0
    trials = study_trials(out)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials), [t.state for t in trials]
    assert trials[1].params == killed_params  # continued, not re-sampled
    assert json.loads((victim / "run.json").read_text())["summary"]["resumed_from_epoch"] >= 1
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params), "a trial was repeated"
    assert (out / "best.yaml").exists()
    assert json.loads((out / "study.json").read_text())["budget"]["trials_finished"] == 4


# ------------------------------------------------------------------------------------------
# search spaces
# ------------------------------------------------------------------------------------------
BAD_SPACES = {
    "unknown key": ({"shared": {"train.lrr": {"type": "float", "low": 0.1, "high": 1.0}}}, "train.lrr"),
    "bad distribution type": ({"shared": {"train.lr": {"type": "gaussian", "low": 0.1, "high": 1.0}}}, "train.lr"),
    "log with low 0": (
        {"samplers": {"dans": {"dans.eta": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}},
        "dans.eta",
    ),
    "low >= high": ({"shared": {"train.margin": {"type": "float", "low": 2.0, "high": 1.0}}}, "train.margin"),
    "float on an int key": (
        {"shared": {"train.num_negatives": {"type": "float", "low": 1.0, "high": 8.0}}},
        "train.num_negatives",
    ),
    "choice of the wrong type": (
        {"shared": {"model.dim": {"type": "categorical", "choices": [16, "big"]}}},
        "model.dim",
    ),
    "untunable budget key": ({"shared": {"train.epochs": {"type": "int", "low": 1, "high": 9}}}, "train.epochs"),
    "unknown field": ({"shared": {"train.lr": {"type": "float", "low": 0.1, "high": 1.0, "logg": True}}}, "logg"),
    "unknown section": ({"sharedd": {}}, "sharedd"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_search_space_is_one_line_naming_the_key(tmp_path, case):
    data, needle = BAD_SPACES[case]
    with pytest.raises(SpaceError) as err:
        load_space(write_yaml(tmp_path / "space.yaml", data))
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_bad_search_space_stops_the_command_without_traceback(in_tmp, caplog):
    space = write_yaml(in_tmp / "space.yaml", BAD_SPACES["unknown key"][0])
    with caplog.at_level(logging.ERROR):
        assert main(tune_args(in_tmp / "study", space)) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "train.lrr" in errors[0] and "Traceback" not in errors[0]
    assert not (in_tmp / "study").exists()  # refused before any trial or storage


def test_package_space_loads_and_leaves_out_what_a_run_cannot_change():
    space = load_space()
    cfg = load_config([], ["train.sampler=dans"])
    keys, _ = resolve_space(space, cfg)
    assert {
        "train.lr",
        "train.margin",
        "model.dim",
        "train.filter_negatives",
        "diffusion.mu",
        "dans.eta",
        "dtm.lambda",
        "dtm.sigma",
    } <= set(keys)
    # stage inputs: the pretraining fixes the dimension (init_from_pretrained), the warm start its architecture
    keys, notes = resolve_space(space, cfg, ["pretrained", "dam", "diffusion"])
    assert "model.dim" not in keys and "diffusion.mu" in keys and "dans.eta" in keys
    assert any(n.startswith("model.dim: left out") and "--pretrained" in n for n in notes), notes
    keys, _ = resolve_space(space, load_config([], ["train.init_from_pretrained=false"]), ["pretrained"])
    assert "model.dim" in keys
    # a 1-N backbone samples no negatives and has no margin; its own space adds N3's weight
    keys, notes = resolve_space(space, load_config([], ["model.name=complex", "train.mode=one_to_n"]))
    assert "train.margin" not in keys and "train.num_negatives" not in keys and "model.reg_weight" in keys
    assert "train.filter_negatives" not in keys  # 1-N refuses it: nothing is drawn to filter
    assert any(n.startswith("train.margin: left out (train.mode=one_to_n") for n in notes), notes
    keys, _ = resolve_space(space, load_config([], ["train.sampler=self_adversarial"]))
    assert "train.adversarial_temperature" in keys and "dans.eta" not in keys


# ------------------------------------------------------------------------------------------
# the DAG
# ------------------------------------------------------------------------------------------
def _job_blocks(output: str, rule: str) -> list[str]:
    blocks = output.split("\nrule ")
    return [b for b in blocks if b.startswith(f"{rule}:")]


def test_tuned_preset_plans_tune_jobs_and_runs_reading_best_yaml(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    proc = run_snakemake(wf, "-n", "all_tables", "all_figures", "--config", "preset=tuned")
    counts = job_counts(proc.stdout)
    # per dataset: TransE x 6 samplers + ComplEx-N3 (1-N) x 3 (draw-only samplers left out); 3 seeds default + tuned
    assert counts["tune"] == 2 * (6 + 3), counts
    assert counts["train"] == 2 * 3 * 2 * (6 + 3), counts
    # main, efficiency, paper_vs_ours, hardness + tuning, efficiency_tuned; curves, bands + tuning_history, curves_tuned
    assert counts["report_table"] == 6 and counts["report_figure"] == 4, counts
    assert "results/tuned/tables/tuning.csv" in proc.stdout and "figures/tuned/tuning_history.png" in proc.stdout
    assert (
        "results/tuned/tables/efficiency_tuned.csv" in proc.stdout and "figures/tuned/curves_tuned.png" in proc.stdout
    )
    tuned = [b for b in _job_blocks(proc.stdout, "train") if "experiment=tuned," in b]
    assert len(tuned) == 2 * 3 * 9
    for block in tuned:
        variant = block.split("variant=")[1].split(",")[0]
        inputs = next(ln for ln in block.splitlines() if "input:" in ln)
        assert f"/tune/{variant}/best.yaml" in inputs, block
    for block in _job_blocks(proc.stdout, "train"):
        if "experiment=main," in block:
            assert "best.yaml" not in block
    tune = _job_blocks(proc.stdout, "tune")
    assert any("/pretrain/" in b and "/dam/" in b and "/diffusion/" in b for b in tune)  # dans: the train rule's stages
    # the other presets gain no tune job or tuning report
    counts = job_counts(run_snakemake(wf, "-n", "--config", "preset=tiny").stdout)
    assert "tune" not in counts and counts["report_table"] == 5 and counts["report_figure"] == 3, counts


@pytest.mark.slow
def test_tiny_tune_preset_end_to_end(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    run_snakemake(wf, "--profile", "profiles/local", "--cores", "2", "--config", "preset=tiny_tune", timeout=900)
    root = wf / "results/tiny_tune/umls"
    for variant in ("uniform", "dans"):
        study = json.loads((root / f"tune/{variant}/study.json").read_text())
        assert study["budget"]["trials"] == 3 and study["budget"]["epochs_per_trial"] == 2
        best = yaml.safe_load((root / f"tune/{variant}/best.yaml").read_text())
        args = json.loads((root / f"tuned/{variant}/seed0/workflow_args.json").read_text())
        assert args[args.index("--config") + 1].endswith(f"tune/{variant}/best.yaml")
        searched = [k for k in best if not k.startswith("tuned.")]
        assert not [a for a in args if a.split("=")[0] in searched], "a --set overrides best.yaml"
        run = json.loads((root / f"tuned/{variant}/seed0/run.json").read_text())
        assert run["provenance"]["tuned_from"]["study"] == best["tuned.study"]
        assert run["provenance"]["tuned_from"]["trial"] == best["tuned.trial"]
        cfg = yaml.safe_load((root / f"tuned/{variant}/seed0/config.yaml").read_text())
        assert all(cfg[k.split(".")[0]][k.split(".")[1]] == v for k, v in best.items() if k in searched)
        assert (wf / f"logs/tune/tiny_tune/umls/{variant}.log").exists()
        assert (wf / f"results/benchmarks/tune/tiny_tune/umls/{variant}.tsv").exists()
    table = (wf / "results/tiny_tune/tables/tuning.csv").read_text()
    assert "tiny_tune-umls-dans" in table and "tiny_tune-umls-uniform" in table
    assert (wf / "figures/tiny_tune/tuning_history.png").stat().st_size > 0


# ------------------------------------------------------------------------------------------
# reports on hand-made studies and runs (known answers)
# ------------------------------------------------------------------------------------------
def _study(path: Path, name: str, sampler: str, values: list, epochs: int = 4) -> Path:
    trials = [
        {
            "number": i,
            "state": "PRUNED" if v is None else "COMPLETE",
            "value": v,
            "params": {"train.lr": 0.01 * (i + 1)},
            "intermediate": {},
        }
        for i, v in enumerate(values)
    ]
    done = [t for t in trials if t["value"] is not None]
    best = max(done, key=lambda t: t["value"])
    path.mkdir(parents=True)
    (path / "study.json").write_text(
        json.dumps(
            {
                "kind": "dans_kgc_study",
                "study": name,
                "dataset": "umls",
                "sampler": sampler,
                "model": "transe",
                "budget": {
                    "trials": len(values),
                    "trials_finished": len(values),
                    "epochs_per_trial": epochs,
                    "max_seconds_per_trial": 0.0,
                    "wall_seconds_total": 12.5,
                    "complete": len(done),
                    "pruned": len(values) - len(done),
                    "failed": 0,
                },
                "best": {"trial": best["number"], "value": best["value"], "params": best["params"]},
                "trials": trials,
            }
        )
    )
    (path / "trials/0000").mkdir(parents=True)  # a trial folder: never read as a result
    (path / "trials/0000/run.json").write_text(json.dumps({"tags": {"experiment": "tune"}}))
    return path


def _run(path: Path, experiment: str, sampler: str, seed: int, mrr: float, study: str | None = None) -> Path:
    path.mkdir(parents=True)
    cfg = {
        "dataset": "umls",
        "seed": seed,
        "model": {"name": "transe"},
        "train": {"sampler": sampler, "mode": "negative_sampling"},
    }
    if study:
        cfg["tuned"] = {"study": study, "trial": 1}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    tags = {"experiment": experiment, "variant": sampler}
    (path / "run.json").write_text(json.dumps({"dataset": "umls", "sampler": sampler, "seed": seed, "tags": tags}))
    (path / "metrics_test.json").write_text(
        json.dumps({"dataset": "umls", "sampler": sampler, "seed": seed, "mrr": mrr, "tags": tags, "split": "test"})
    )
    return path


def test_tuning_reports_known_answers(tmp_path):
    import pandas as pd

    from dans_kgc.reports import build_report

    s1 = _study(tmp_path / "tune/uniform", "s-uniform", "uniform", [0.30, None, 0.35, 0.33])
    s2 = _study(tmp_path / "tune/dans", "s-dans", "dans", [0.20, 0.40, None, 0.38])
    runs = [_run(tmp_path / f"main/uniform/seed{s}", "main", "uniform", s, m) for s, m in ((0, 0.50), (1, 0.60))]
    runs += [
        _run(tmp_path / f"tuned/uniform/seed{s}", "tuned", "uniform", s, m, "s-uniform")
        for s, m in ((0, 0.70), (1, 0.80))
    ]
    runs += [
        _run(tmp_path / "main/dans/seed0", "main", "dans", 0, 0.55),
        _run(tmp_path / "tuned/dans/seed0", "tuned", "dans", 0, 0.52, "s-dans"),
    ]
    build_report("tuning", [s1, s2, *runs], tmp_path / "out/tuning")
    df = pd.read_csv(tmp_path / "out/tuning.csv").set_index("variant")
    assert df.loc["uniform", "default_mean"] == pytest.approx(0.55) and df.loc[
        "uniform", "tuned_mean"
    ] == pytest.approx(0.75)
    assert df.loc["uniform", "delta"] == pytest.approx(0.20) and df.loc["uniform", "tuned_n"] == 2
    assert df.loc["dans", "delta"] == pytest.approx(-0.03)
    assert df.loc["uniform", "best_valid_mrr"] == 0.35 and df.loc["uniform", "best_trial"] == 2
    assert df.loc["dans", "study"] == "s-dans" and df.loc["dans", "budget_epochs_per_trial"] == 4
    assert df.loc["uniform", "budget_trials"] == 4 and df.loc["uniform", "budget_pruned"] == 1
    md = (tmp_path / "out/tuning.md").read_text()
    assert "every study had the same budget" in md and "4/4 × (4 ep)" in md
    # a study with another budget is called out
    s3 = _study(tmp_path / "tune2/dans", "s-dans", "dans", [0.2, 0.4], epochs=9)
    build_report("tuning", [s1, s3, *runs], tmp_path / "out/tuning2")
    assert "DIFFERENT budgets" in (tmp_path / "out/tuning2.md").read_text()

    build_report("tuning_history", [tmp_path / "tune"], tmp_path / "out/history")
    lines = json.loads((tmp_path / "out/history.provenance.json").read_text())["lines"]["umls"]
    assert lines["s-uniform"] == {"trials": [0, 1, 2, 3], "best": [0.30, 0.30, 0.35, 0.35]}
    assert lines["s-dans"] == {"trials": [0, 1, 2, 3], "best": [0.20, 0.40, 0.40, 0.40]}
    assert (tmp_path / "out/history.png").stat().st_size > 0
