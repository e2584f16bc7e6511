"""The planner (dans_kgc.planning) on its own, without Snakemake: its jobs are the DAG's (the committed plan
snapshots, made by Snakemake from the rules), every input is planned, no two training jobs compute the same,
a shared run folder is the first in experiment order, the run matrix is the config's (an oracle of its own),
a small config checked by hand, and config errors as one line naming the key."""

from __future__ import annotations

import copy
import dataclasses
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from plan_snapshot import (
    VARIATIONS,
    cases,
    parse_snapshot,
    preset_of,
    presets,
    snapshot_path,
)
from workflow_helpers import BUILT_IN_RECIPES, REPO, copy_workflow

from dans_kgc.config import load_defaults
from dans_kgc.planning import (
    PlanError,
    Planner,
    load_workflow_config,
    plan_jobs,
    resolved,
    shell_join,
)

TARGET_RULES = ("all", "all_tables", "all_figures")
# the canonical order of experiments (a run shared by several is placed in the first), as config.yaml says
EXPERIMENT_ORDER = [
    "calibration",
    "main",
    "ablation",
    "sensitivity",
    "curriculum",
    "dam_inputs",
    "tuned",
]
DRAW_ONLY = {"bernoulli", "self_adversarial", "nscaching"}
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _case_config(case: str, workdir: Path) -> dict:
    """The config Snakemake plans the case with: config.yaml, the case's variation, --config preset=..."""
    copy_workflow(workdir)
    updates = [VARIATIONS[case](workdir)] if case in VARIATIONS else []
    return load_workflow_config(workdir / "config.yaml", *updates, {"preset": preset_of(case)})


def _jobs_as_dicts(config: dict, preset: str) -> list[dict]:
    """plan_jobs as plain dicts; a config with plugins is planned in a child process (importing a plugin
    registers its sampler or backbone for the rest of this process)."""
    if not config.get("plugins"):
        return [dataclasses.asdict(j) | {"command": j.command} for j in plan_jobs(config, preset)]
    code = (
        "import dataclasses, json, sys; from dans_kgc.planning import plan_jobs; "
        "print(json.dumps([dataclasses.asdict(j) | {'command': j.command} "
        "for j in plan_jobs(json.load(sys.stdin), sys.argv[1])]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, preset],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


_PLANNED: dict[str, tuple[dict, list[dict]]] = {}


@pytest.fixture()
def planned(tmp_path_factory):
    """case -> (its config, its planned jobs as dicts), once per test session."""

    def get(case: str) -> tuple[dict, list[dict]]:
        if case not in _PLANNED:
            workdir = tmp_path_factory.mktemp(case.replace("+", "_"))
            config = _case_config(case, workdir)
            jobs = _jobs_as_dicts(config, preset_of(case))
            for j in jobs:  # as the snapshot writes them: quoted with the real paths, then <WORKDIR>
                j["shell"], j["args_text"] = (
                    shell_join(j["command"]),
                    shlex.join(j["args"]),
                )
            text = json.dumps(jobs).replace(str(workdir), "<WORKDIR>")
            _PLANNED[case] = config, json.loads(text)
        return _PLANNED[case]

    return get


def _named(files: dict | list) -> list[str]:
    return [f"{k}={v}" for k, v in files.items()] if isinstance(files, dict) else list(files)


# ------------------------------------------------------------------------------------------
# the planner's jobs are the DAG's
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", cases())
def test_planned_jobs_are_those_snakemake_plans(case, planned):
    """Against the committed snapshot (Snakemake's DAG of the rules): the same jobs, and each with the same
    inputs, outputs, log, benchmark, resources and dans-kgc command line (shell rules: the shell command up to
    its redirection; the job-script rules: their params.args)."""
    _, jobs = planned(case)
    dag = {
        (
            j["rule"],
            tuple(f.split("=", 1)[-1] for f in j["output"]),
        ): j  # less the rules' output names
        for j in parse_snapshot(snapshot_path(case).read_text())
        if j["rule"] not in TARGET_RULES
    }
    mine = {(j["rule"], tuple(j["outputs"])): j for j in jobs}
    assert len(mine) == len(jobs), "two planned jobs with the same outputs"
    assert sorted(mine) == sorted(dag), (
        sorted(set(dag) - set(mine))[:5],
        sorted(set(mine) - set(dag))[:5],
    )
    for key, job in mine.items():
        want = dag[key]
        assert _named(job["inputs"]) == want["input"], key
        assert [job["log"]] == want["log"] and job["benchmark"] == want["benchmark"], key
        assert " ".join(f"{k}={v}" for k, v in job["resources"].items()) == want["resources"], key
        for field in ("dataset", "experiment", "variant", "seed"):
            if field in want["wildcards"]:
                assert str(job[field]) == want["wildcards"][field], (key, field)
        if "script" in want:
            assert job["args_text"] == want["params"]["args"], key
        else:
            assert want["shell"].startswith(job["shell"] + " >"), (
                key,
                job["shell"],
                want["shell"],
            )


# ------------------------------------------------------------------------------------------
# invariants of every preset's plan
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", presets())
def test_every_input_is_planned_and_every_output_written_once(preset, planned):
    _, jobs = planned(preset)
    outputs = [f for j in jobs for f in j["outputs"]]
    assert len(outputs) == len(set(outputs))
    assert len({j["log"] for j in jobs}) == len({j["benchmark"] for j in jobs}) == len(jobs)
    missing = {f for j in jobs for f in _inputs(j)} - set(outputs)
    assert not missing, sorted(missing)[:5]
    # each job's --out is where its outputs go
    for j in jobs:
        assert all(f.startswith(j["out"]) for f in j["outputs"]), (
            j["rule"],
            j["out"],
            j["outputs"],
        )


def _inputs(job: dict) -> list[str]:
    return list(job["inputs"].values()) if isinstance(job["inputs"], dict) else job["inputs"]


@pytest.mark.parametrize("preset", presets())
def test_no_two_training_jobs_compute_the_same(preset, planned):
    """One run per distinct setting: no two train jobs share the dataset, seed, stage inputs and the full
    dans-kgc config their overrides resolve to."""
    _, jobs = planned(preset)
    seen: dict[str, str] = {}
    for j in (j for j in jobs if j["rule"] == "train"):
        what = json.dumps(
            [j["dataset"], j["seed"], _inputs(j), resolved(j["overrides"])],
            sort_keys=True,
        )
        assert what not in seen, f"{j['out']} computes what {seen[what]} computes"
        seen[what] = j["out"]


def _expected_runs(config: dict, preset: str) -> set[tuple[str, str, str, int]]:
    """(dataset, experiment, variant, seed) of every run the config's preset asks for, read off the config:
    calibration = one run per backbone; sensitivity = one per grid value or point; tuned = main's variants;
    with a `backbones:` list every other experiment's variants run as VARIANT@BACKBONE, except draw-only
    samplers on 1-N backbones and samplers a backbone's model cannot run (unsupported_samplers)."""
    defaults = load_defaults()
    # dans-kgc's recipes, the config's own replacing those of the same name
    recipes = {**BUILT_IN_RECIPES, **(config.get("backbones") or {})}

    def get(flat: dict, key: str):
        if key in flat:
            return flat[key]
        node = defaults
        for part in key.split("."):
            node = node[part]
        return node

    p = config["presets"][preset]
    out = set()
    for exp, chosen in (p.get("experiments") or {}).items():
        chosen, spec = chosen or {}, config["experiments"][exp]
        if exp == "calibration":
            variants = {b: {} for b in recipes}
        elif exp == "sensitivity":
            variants = {}
            for name, grid in spec["grid"].items():
                if chosen.get("grid") and name not in chosen["grid"]:
                    continue
                values = (chosen.get("grid") or {}).get(name) or grid.get("points") or grid["values"]
                for v in values:
                    variants[f"{name}{v}"] = {
                        **spec["base"],
                        **(grid["points"][str(v)] if "points" in grid else {grid["key"]: v}),
                    }
        else:
            variants = dict(config["experiments"]["main" if exp == "tuned" else exp]["variants"])
        if chosen.get("variants"):
            variants = {v: variants[v] for v in chosen["variants"]}
        if p.get("backbones") and exp != "calibration":
            crossed = {}
            for b in p["backbones"]:
                for v, ov in variants.items():
                    flat = {
                        **(p.get("overrides") or {}),
                        **recipes[b],
                        **ov,
                    }
                    sampler = get(flat, "train.sampler")
                    unsupported = (config.get("unsupported_samplers") or {}).get(get(flat, "model.name")) or {}
                    if not (
                        (get(flat, "train.mode") == "one_to_n" and sampler in DRAW_ONLY)
                        or sampler in unsupported.get("samplers", [])
                    ):
                        crossed[f"{v}@{b}"] = ov
            variants = crossed
        for ds in chosen.get("datasets") or p["datasets"]:
            for seed in chosen.get("seeds") or p["seeds"]:
                out |= {(ds, exp, v, seed) for v in variants}
    return out


@pytest.mark.parametrize("case", cases())
def test_training_jobs_stand_for_every_run_once_first_in_experiment_order(case, planned):
    """Every run of the matrix is trained in exactly one train job's folder, that job being the first of the
    runs it stands for in the order calibration > main > ablation > sensitivity > curriculum > dam_inputs >
    tuned (so ablation `full` is trained as main `dans`, never the other way round)."""
    config, jobs = planned(case)
    labels = Counter()
    for j in (j for j in jobs if j["rule"] == "train"):
        members = j["stands_for"]
        assert members[0] == f"{j['experiment']}/{j['variant']}", (j["out"], members)
        ranks = [EXPERIMENT_ORDER.index(m.split("/")[0]) for m in members]
        assert ranks == sorted(ranks), members
        labels.update((j["dataset"], *m.split("/", 1), j["seed"]) for m in members)
    assert max(labels.values()) == 1
    assert set(labels) == _expected_runs(config, preset_of(case))


# ------------------------------------------------------------------------------------------
# a small config, planned by hand
# ------------------------------------------------------------------------------------------
HAND_CONFIG = {
    "preset": "hand",
    "device": "cpu",
    "sampler_stages": {"dans": ["dam", "diffusion"], "dhns": ["diffusion"]},
    "diagnose": {
        "triples": 50,
        "seed": 3,
        "experiments": ["main", "ablation", "sensitivity"],
    },
    "experiments": {
        "main": {
            "variants": {
                "uniform": {"train.sampler": "uniform"},
                "dans": {"train.sampler": "dans"},
            }
        },
        "ablation": {
            "variants": {
                "full": {"train.sampler": "dans"},
                "wo_dam": {"train.sampler": "dans", "dans.use_dam": False},
            }
        },
        "sensitivity": {
            "base": {"train.sampler": "dans"},
            "grid": {"mu": {"key": "diffusion.mu", "values": [1.0, 2.0]}},
        },
    },
    "presets": {
        "hand": {
            "datasets": ["umls"],
            "seeds": [0, 1],
            "overrides": {"train.epochs": 3, "dam.epochs": 4, "samplers.dhns.T": 8},
            "experiments": {"main": {}, "ablation": {}, "sensitivity": {"seeds": [0]}},
            "resources": {
                "default": {"mem_mb": 500, "runtime": 7},
                "train": {"mem_mb": 900},
            },
        }
    },
}


@pytest.fixture()
def hand(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(HAND_CONFIG))
    config = load_workflow_config(path, schema=SCHEMA)
    return config, {(j.rule, j.out): j for j in plan_jobs(config, "hand")}


def test_hand_config_jobs(hand):
    """main {uniform, dans} x 2 seeds, ablation {full, wo_dam} x 2 seeds, sensitivity mu {1.0, 2.0} x seed 0:
    ablation full and sensitivity mu1.0 (mu's default) are main dans, so 7 training runs; one TransE
    pretraining and DAM fit; warm starts: mu 1 with DAM, mu 1 without, mu 2; every dans run diagnosed."""
    config, jobs = hand
    # the schema's defaults
    assert config["data_root"] == "data" and config["on_divergence"] == "record"
    assert Counter(rule for rule, _ in jobs) == {
        "fetch_dataset": 1,
        "dataset_stats": 1,
        "pretrain": 1,
        "dam": 1,
        "diffusion": 3,
        "train": 7,
        "diagnose": 5,
        "diagnose_warm_start": 3,
        "report_table": 5,
        "report_figure": 3,
        "report_diagnostics": 1,
    }
    root = "results/hand/umls"
    trained = {out.removeprefix(root + "/") for rule, out in jobs if rule == "train"}
    assert trained == {
        "main/uniform/seed0",
        "main/uniform/seed1",
        "main/dans/seed0",
        "main/dans/seed1",
        "ablation/wo_dam/seed0",
        "ablation/wo_dam/seed1",
        "sensitivity/mu2.0/seed0",
    }
    assert jobs[("train", f"{root}/main/dans/seed0")].stands_for == [
        "main/dans",
        "ablation/full",
        "sensitivity/mu1.0",
    ]
    assert jobs[("train", f"{root}/main/dans/seed1")].stands_for == [
        "main/dans",
        "ablation/full",
    ]
    (pkey,) = [j.key for (rule, _), j in jobs.items() if rule == "pretrain"]
    assert pkey.startswith("transe-") and jobs[("dam", f"{root}/dam/{pkey}")].inputs == {
        "pretrain": f"{root}/pretrain/{pkey}/run.json"
    }
    warm = sorted(j.key.rsplit("-", 1)[0] for (rule, _), j in jobs.items() if rule == "diffusion")
    assert warm == ["dans-mu1.0-ccd-dam", "dans-mu1.0-ccd-nodam", "dans-mu2.0-ccd-dam"]


def test_hand_config_commands(hand):
    _, jobs = hand
    root = "results/hand/umls"
    (pkey,) = [j.key for (rule, _), j in jobs.items() if rule == "pretrain"]
    dkey = {j.key.rsplit("-", 1)[0]: j.key for (rule, _), j in jobs.items() if rule == "diffusion"}
    base = "--set device=cpu --set data.root=data"
    uniform = jobs[("train", f"{root}/main/uniform/seed1")]
    # a uniform run reads no DAM or diffusion key and no other sampler's: only train.epochs of the overrides
    assert shlex.join(uniform.args) == (
        f"train --dataset umls --out {root}/main/uniform/seed1 --quiet --pretrained {root}/pretrain/{pkey} "
        f"--tag experiment=main --tag variant=uniform {base} --set train.epochs=3 --set train.sampler=uniform "
        "--set seed=1"
    )
    assert uniform.inputs == {
        "data": f"{root}/data/fetch.txt",
        "pretrain": f"{root}/pretrain/{pkey}/run.json",
    }
    assert uniform.overrides == {
        "train.epochs": 3,
        "train.sampler": "uniform",
        "seed": 1,
    }
    assert uniform.resources == {"mem_mb": 900, "runtime": 7, "gpu": 0} and uniform.model == "transe"
    assert uniform.command[-2:] == ["--set", "threads=1"] and (
        uniform.experiment,
        uniform.seed,
    ) == ("main", 1)
    dans = jobs[("train", f"{root}/main/dans/seed0")]
    assert shlex.join(dans.args) == (
        f"train --dataset umls --out {root}/main/dans/seed0 --quiet --pretrained {root}/pretrain/{pkey} "
        f"--dam {root}/dam/{pkey} --diffusion {root}/diffusion/{dkey['dans-mu1.0-ccd-dam']} "
        "--tag experiment=main --tag variant=dans --tag stands_for=main/dans,ablation/full,sensitivity/mu1.0 "
        f"{base} --set dam.epochs=4 --set train.epochs=3 --set train.sampler=dans --set seed=0"
    )
    wo_dam = jobs[("train", f"{root}/ablation/wo_dam/seed1")]
    assert wo_dam.inputs["diffusion"] == f"{root}/diffusion/{dkey['dans-mu1.0-ccd-nodam']}/diffusion.pt"
    assert "dans.use_dam=false" in wo_dam.args and wo_dam.backbone is None
    fetch = jobs[("fetch_dataset", f"{root}/data/fetch.txt")]
    assert shlex.join(fetch.command) == f"dans-kgc data fetch umls {base}"
    assert fetch.resources == {"mem_mb": 500, "runtime": 7}
    warm = jobs[
        (
            "diagnose_warm_start",
            f"{root}/diagnostics/warm_start/{dkey['dans-mu2.0-ccd-dam']}",
        )
    ]
    assert shlex.join(warm.args) == (
        f"diagnose --out {warm.out} --warm-start {root}/diffusion/{warm.key} --pretrained {root}/pretrain/{pkey} "
        f"--dataset umls --dam {root}/dam/{pkey} --triples 50 --seed 3 {base}"
    )
    # ablation `full` is read from main/dans's folder
    ablation = jobs[("report_table", "results/hand/tables/ablation")]
    shown = (
        "main/dans/seed0",
        "main/dans/seed1",
        "ablation/wo_dam/seed0",
        "ablation/wo_dam/seed1",
    )
    assert ablation.inputs == [f"{root}/{r}/metrics_test.json" for r in shown]


def test_hand_config_on_cuda_asks_for_a_gpu_per_torch_job(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**HAND_CONFIG, "device": "cuda"}))
    jobs = plan_jobs(load_workflow_config(path, schema=SCHEMA), "hand")
    gpus = {j.rule: j.resources.get("gpu") for j in jobs}
    assert gpus == {
        "fetch_dataset": None,
        "dataset_stats": None,
        "pretrain": 1,
        "dam": 1,
        "diffusion": 1,
        "train": 1,
        "diagnose": 1,
        "diagnose_warm_start": 1,
        "report_table": None,
        "report_figure": None,
        "report_diagnostics": None,
    }


# ------------------------------------------------------------------------------------------
# the config
# ------------------------------------------------------------------------------------------
BAD = {
    "unknown dataset": (
        {"presets": {"hand": {"datasets": ["umlz"]}}},
        "presets.hand.datasets: unknown dataset 'umlz'",
    ),
    "managed key": (
        {"presets": {"hand": {"overrides": {"seed": 3}}}},
        "presets.hand.overrides: key 'seed'",
    ),
    "unknown variant": (
        {"presets": {"hand": {"experiments": {"main": {"variants": ["unifrom"]}}}}},
        "unifrom",
    ),
    "dans-kgc key": (
        {"presets": {"hand": {"overrides": {"train.epochz": 3}}}},
        "train.epochz",
    ),
    "stage key in a variant": (
        {"experiments": {"main": {"variants": {"x": {"dam.epochs": 2}}}}},
        "key 'dam.epochs' belongs to a per-dataset stage",
    ),
    "unknown preset": ({"preset": "huge"}, "config key 'preset': 'huge'"),
    "schema": ({"presets": {"hand": {"seedz": [0]}}}, "at 'presets.hand'"),
    "unknown backbone": (
        {"presets": {"hand": {"backbones": ["nope"]}}},
        "presets.hand.backbones: unknown backbone(s) nope (known: transe, rotate_nssa,",
    ),
    "recipe without model.name": (
        {"backbones": {"redgnn": {"model.dim": 8}}},
        "config backbones.redgnn: no model.name; a recipe names the backbone it sets up (it replaces the "
        "registered recipe 'redgnn' whole)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_one_line_naming_the_key(case, tmp_path):
    update, needle = BAD[case]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(HAND_CONFIG))
    with pytest.raises(PlanError) as err:
        plan_jobs(load_workflow_config(path, update, schema=SCHEMA), "hand")
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_requested_folder_outside_the_plan_is_a_plan_error(hand):
    config, _ = hand
    plan = Planner(config)
    with pytest.raises(
        PlanError,
        match="is not trained: it has the same effective settings as results/hand/umls/main/dans/seed0",
    ):
        plan.train_args(plan.runs("hand", ["ablation"])[0])
    with pytest.raises(PlanError, match="no pretraining 'transe-00000000' in preset 'hand'"):
        plan.pretrain_args("hand", "umls", "transe-00000000")


def test_recipes_of_the_workflow_config_are_planned_beside_the_built_in_ones(tmp_path):
    """config `backbones:` adds recipes (a preset crosses with one, calibration trains it) and one with a built-in's
    name replaces that recipe whole: none of the built-in complex_n3_1n's other keys (N3, xavier_normal) remain."""
    config = copy.deepcopy(HAND_CONFIG)
    config["backbones"] = {
        "transe_wide": {"model.name": "transe", "model.dim": 512},
        "complex_n3_1n": {"model.name": "complex", "model.dim": 16, "train.mode": "one_to_n"},
    }
    config["experiments"]["calibration"] = {"base": {"train.sampler": "uniform", "train.init_from_pretrained": False}}
    config["presets"]["hand"].update(
        seeds=[0],
        backbones=["transe_wide"],
        experiments={"main": {"variants": ["uniform"]}, "calibration": {}},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    planned = plan_jobs(load_workflow_config(path, schema=SCHEMA), "hand")
    jobs = {j.out.removeprefix("results/hand/umls/"): j for j in planned}
    built_in = ["transe", "rotate_nssa", "distmult_n3_1n", "complex_n3_1n", "quate_n3_1n", "conve_1n", "redgnn"]
    calibrated = {f"calibration/{b}/seed0" for b in [*built_in, "transe_wide"]}
    assert {out for out, j in jobs.items() if j.rule == "train"} == calibrated | {"main/uniform@transe_wide/seed0"}

    def recipe_keys(out: str) -> dict:
        return {k: v for k, v in jobs[out].overrides.items() if k.startswith("model.") or k == "train.mode"}

    assert recipe_keys("main/uniform@transe_wide/seed0") == {"model.name": "transe", "model.dim": 512}
    assert jobs["main/uniform@transe_wide/seed0"].backbone == "transe_wide"
    assert recipe_keys("calibration/transe_wide/seed0") == {"model.name": "transe", "model.dim": 512}
    assert recipe_keys("calibration/complex_n3_1n/seed0") == {
        "model.name": "complex",
        "model.dim": 16,
        "train.mode": "one_to_n",
    }
    # a built-in recipe the config leaves alone: RotatE with NSSA, as dans_kgc/recipes.yaml gives it
    assert recipe_keys("calibration/rotate_nssa/seed0") == {
        "model.name": "rotate",
        "model.dim": 256,
        "model.gamma": 9.0,
        "model.init": "uniform",
    }
    assert jobs["calibration/rotate_nssa/seed0"].overrides["train.loss"] == "nssa"
