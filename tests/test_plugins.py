"""Your own sampler: --plugin MODULE_OR_FILE on every command, config `plugins` for every DAG job, and the
README's "Adding your own negative sampler" example as written."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_custom_dataset import make_kg
from workflow_helpers import REPO, copy_workflow, run_snakemake, write_yaml

from dans_kgc.cli import build_parser

EXAMPLE = REPO / "examples" / "my_sampler.py"
TINY = [
    "--set",
    "threads=1",
    "--set",
    "model.dim=8",
    "--set",
    "train.epochs=1",
    "--set",
    "train.eval_every=1",
    "--quiet",
]


def test_readme_example_is_the_example_file():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Adding your own negative sampler.*?```python\n(.*?)```", readme, re.S).group(1)
    assert block == EXAMPLE.read_text()


def test_every_command_takes_plugin():
    parser = build_parser()
    commands = [
        ["data", "fetch", "x"],
        ["data", "stats", "x", "--out", "o"],
        ["pretrain", "--dataset", "x", "--out", "o"],
        ["train", "--dataset", "x", "--out", "o"],
        ["dam", "fit", "--dataset", "x", "--pretrained", "p", "--out", "o"],
        ["diffusion", "fit", "--dataset", "x", "--pretrained", "p", "--out", "o"],
        ["evaluate", "--run", "r"],
        ["diagnose", "--run", "r", "--out", "o"],
        ["report", "main", "--runs", "r", "--out", "o"],
    ]
    for cmd in commands:
        args = parser.parse_args([*cmd, "--plugin", "a.py", "--plugin", "b"])
        assert args.plugin == ["a.py", "b"], cmd


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # a fresh process: a registered plugin must not leak into other tests
    return subprocess.run(
        [sys.executable, "-m", "dans_kgc.cli", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def kg_cfg(tmp_path):
    folder = make_kg(tmp_path / "mykg")
    cfg = tmp_path / "mykg.yaml"
    cfg.write_text(f"data: {{custom: {{mykg: {{path: {folder}}}}}}}\n")
    return cfg


def test_example_sampler_trains_through_the_cli(tmp_path, kg_cfg):
    proc = _cli(
        [
            "train",
            "--dataset",
            "mykg",
            "--config",
            str(kg_cfg),
            "--out",
            "runs/h",
            "--plugin",
            str(EXAMPLE),
            "--set",
            "train.sampler=hardest_of_k",
            *TINY,
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    run = json.loads((tmp_path / "runs/h/run.json").read_text())
    assert run["sampler"] == "hardest_of_k" and run["summary"]["epochs_run"] == 1
    assert _cli(["evaluate", "--run", "runs/h", "--quiet", "--plugin", str(EXAMPLE)], tmp_path).returncode == 0


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("train.sampler", "nope", "unknown sampler 'nope'; registered: bernoulli, dans, dhns, hardest_of_k,"),
        ("model.name", "nope", "config key 'model.name' = 'nope'; expected one of ['complex', 'conve',"),
    ],
)
def test_unknown_name_lists_registered_and_plugins(tmp_path, kg_cfg, key, value, expected):
    proc = _cli(
        [
            "train",
            "--dataset",
            "mykg",
            "--config",
            str(kg_cfg),
            "--out",
            "runs/x",
            "--plugin",
            str(EXAMPLE),
            "--set",
            f"{key}={value}",
            *TINY,
        ],
        tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and expected in errors[0] and f"plugins loaded: {EXAMPLE}" in errors[0], proc.stderr
    bare = _cli(
        ["train", "--dataset", "mykg", "--config", str(kg_cfg), "--out", "runs/x", "--set", f"{key}={value}", *TINY],
        tmp_path,
    )
    assert "no plugins loaded (add yours with --plugin MODULE_OR_FILE)" in bare.stderr


def test_bad_plugin_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('oops')\n")
    for plugin, expected in (
        (str(broken), "import failed: RuntimeError: oops"),
        ("no_such_module_x", "cannot import"),
        (str(tmp_path / "missing.py"), "no such file"),
    ):
        proc = _cli(["data", "fetch", "umls", "--plugin", plugin], tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert expected in proc.stderr and plugin in proc.stderr


def test_plugin_sampler_is_its_own_row_of_a_dag_main_table(tmp_path):
    """config `plugins` reaches every job: a tiny main experiment on a 12-entity KG with the example sampler."""
    wf = copy_workflow(tmp_path / "wf")
    folder = make_kg(tmp_path / "mykg")
    write_yaml(
        wf / "own.yaml",
        {
            "preset": "tiny",
            "plugins": [str(EXAMPLE)],
            "datasets": {"mykg": {"path": str(folder)}},
            "experiments": {"main": {"variants": {"hardest_of_k": {"train.sampler": "hardest_of_k"}}}},
            "presets": {
                "tiny": {"datasets": ["mykg"], "experiments": {"main": {"variants": ["uniform", "hardest_of_k"]}}}
            },
        },
    )
    run_snakemake(wf, "results/tiny/tables/main.csv", "--cores", "2", "--configfile", "own.yaml", timeout=600)
    with (wf / "results/tiny/tables/main.csv").open() as f:
        rows = list(csv.DictReader(f))
    variants = {r.get("variant") for r in rows}
    assert {"uniform", "hardest_of_k"} <= variants, rows[:3]
    run = json.loads((wf / "results/tiny/mykg/main/hardest_of_k/seed0/run.json").read_text())
    assert run["sampler"] == "hardest_of_k"


BACKBONE = """
from dans_kgc.models import MODELS, TransE


class TransE2(TransE):
    name = "transe2"


MODELS[TransE2.name] = TransE2
"""


def test_plugin_backbone_plans_in_the_dag_and_a_broken_plugin_stops_it(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    plugin = tmp_path / "backbone.py"
    plugin.write_text(BACKBONE)
    cfg = {"preset": "tiny", "presets": {"tiny": {"overrides": {"model.name": "transe2"}}}}
    refused = run_snakemake(wf, "-n", "all_tables", "--configfile", str(write_yaml(wf / "a.yaml", cfg)), check=False)
    assert refused.returncode != 0 and "'transe2'" in refused.stdout
    planned = run_snakemake(
        wf, "-n", "-p", "all_tables", "--configfile", str(write_yaml(wf / "b.yaml", {**cfg, "plugins": [str(plugin)]}))
    )
    assert f"--plugin {plugin}" in planned.stdout and "model.name=transe2" in planned.stdout
    broken = run_snakemake(
        wf,
        "-n",
        "--configfile",
        str(write_yaml(wf / "c.yaml", {"preset": "tiny", "plugins": [str(tmp_path / "missing.py")]})),
        check=False,
    )
    assert broken.returncode != 0 and "config plugins: plugin" in broken.stdout and "no such file" in broken.stdout
