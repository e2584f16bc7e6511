"""The dans-kgc command line end to end on UMLS (tiny budgets)."""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dans_kgc.cli import build_parser, main

TINY = [
    "--set",
    "threads=1",
    "--set",
    "model.dim=16",
    "--set",
    "pretrain.dim=16",
    "--set",
    "pretrain.epochs=2",
    "--set",
    "train.epochs=2",
    "--set",
    "train.eval_every=1",
]


def test_fetch_pretrain_train_evaluate(in_tmp):
    assert main(["data", "fetch", "umls"]) == 0
    assert (in_tmp / "data/umls/redgnn/facts.txt").exists()
    assert main(["pretrain", "--dataset", "umls", "--out", "runs/pre", "--quiet", *TINY]) == 0
    assert (
        main(
            [
                "train",
                "--dataset",
                "umls",
                "--out",
                "runs/uni",
                "--pretrained",
                "runs/pre",
                "--quiet",
                "--tag",
                "experiment=main",
                "--tag",
                "variant=uniform",
                *TINY,
            ]
        )
        == 0
    )
    assert main(["evaluate", "--run", "runs/uni", "--quiet", "--ranks"]) == 0
    metrics = json.loads((in_tmp / "runs/uni/metrics_test.json").read_text())
    for key in (
        "dataset",
        "model",
        "sampler",
        "seed",
        "split",
        "mrr",
        "hits@1",
        "hits@3",
        "hits@10",
        "num_ranked",
        "tie_policy",
        "provenance",
    ):
        assert key in metrics, key
    assert metrics["num_ranked"] == 2 * 633
    assert metrics["tags"] == {"experiment": "main", "variant": "uniform"}
    prov = metrics["provenance"]
    for key in ("config", "git_commit", "packages", "device", "wall_seconds", "seed"):
        assert key in prov, key
    assert 0 < metrics["mrr"] <= 1
    run = json.loads((in_tmp / "runs/uni/run.json").read_text())
    assert run["provenance"]["pretrained"].endswith("model_best.pt")
    assert (in_tmp / "runs/uni/ranks_test.npz").exists()


# What changes between two runs of the same setting: wall-clock time, the process's peak memory (here one process
# runs them all) and the command line (it names the run folder).
TIMING_KEYS = {"seconds", "train_seconds", "triples_per_s", "eval_seconds", "wall_seconds", "peak_rss_mib", "command"}


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    return value


def _train_and_evaluate(run: str, *args: str) -> tuple[list[dict], dict]:
    """Train and evaluate a run: (trace.csv rows as text, metrics_test.json), wall-clock entries dropped."""
    assert main(["train", "--dataset", "umls", "--out", run, "--quiet", *args]) == 0
    assert main(["evaluate", "--run", run, "--quiet"]) == 0
    with open(Path(run) / "trace.csv") as f:
        trace = [_without_timing(row) for row in csv.DictReader(f)]
    return trace, _without_timing(json.loads((Path(run) / "metrics_test.json").read_text()))


def test_replaying_a_run_from_its_config_gives_byte_identical_losses_and_metrics(in_tmp):
    """`train --config RUN/config.yaml` alone (same code, machine and thread count) replays the run: every epoch's
    loss and validation metrics as written, and metrics_test.json, compared as text, not to a tolerance."""
    setting = [*TINY, "--set", "seed=3", "--set", "train.lr=0.01"]  # not the defaults: the replay must read them
    trace, metrics = _train_and_evaluate("runs/a", *setting)
    replay_trace, replay_metrics = _train_and_evaluate("runs/replay", "--config", "runs/a/config.yaml")
    assert [row["loss"] for row in replay_trace] == [row["loss"] for row in trace]
    assert replay_trace == trace
    assert replay_metrics == metrics
    # The comparison can fail: another seed changes the first epoch's loss already.
    other_trace, _ = _train_and_evaluate("runs/seed4", *setting, "--set", "seed=4")
    assert other_trace[0]["loss"] != trace[0]["loss"]


def test_data_stats_table(in_tmp):
    assert main(["data", "stats", "umls", "nations", "--out", "tables/t1"]) == 0
    text = (in_tmp / "tables/t1.md").read_text()
    assert "| umls | redgnn | 135 | 46 | 5327 | 569 | 633 |" in text
    assert (in_tmp / "tables/t1.csv").read_text().startswith("dataset,split,entities,relations,train,valid,test")


def test_bad_key_exits_2_with_message(in_tmp, caplog):
    assert main(["train", "--dataset", "umls", "--out", "r", "--set", "train.epoch=1"]) == 2
    assert "unknown config key 'train.epoch'" in caplog.text


def test_unknown_dataset_exits_2(in_tmp, caplog):
    assert main(["data", "fetch", "umls2"]) == 2
    assert "unknown dataset 'umls2'" in caplog.text


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "dans_kgc.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "pretrain" in out.stdout


# ------------------------------------------------------------------------------------------
# --help: every argument explained, valid names listed, an example per command
# ------------------------------------------------------------------------------------------
def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("dans-kgc",)):
    """(command path, parser) of the root and every sub-command, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def help_of(*command: str) -> str:
    for path, parser in walk(build_parser()):
        if path[1:] == command:
            return parser.format_help()
    raise AssertionError(f"no sub-command {command}")


def test_every_argument_has_help_and_every_command_an_example():
    commands = list(walk(build_parser()))
    assert len(commands) == 17  # the root, 11 commands, data fetch / stats, dam fit, diffusion fit, results keep
    for path, parser in commands:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, (path, action.dest)
        assert "dans-kgc" in (parser.epilog or ""), path
        text = parser.format_help()
        assert not re.search(r"\{(datasets|samplers|backbones|recipes|trackers|reports|report_builders)\}", text), path


def test_every_example_parses():
    examples = []
    for _, parser in walk(build_parser()):
        lines = (parser.epilog or "").splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("dans-kgc ") and not lines[i - 1].rstrip().endswith("\\"):
                command = line.strip()
                for more in lines[i + 1 :]:
                    if not command.endswith("\\"):
                        break
                    command = command[:-1] + " " + more.strip()
                examples.append(command)
    assert len(examples) >= 20
    for command in examples:
        build_parser().parse_args(shlex.split(command)[1:])  # argparse exits (SystemExit) on a wrong example


def test_name_arguments_list_the_registered_names():
    registry = yaml.safe_load((Path(__file__).parents[1] / "dans_kgc/datasets/registry.yaml").read_text())
    from dans_kgc.models import MODELS
    from dans_kgc.sampling import SAMPLERS
    from dans_kgc.trackers import TRACKERS

    for command in (
        ("train",),
        ("pretrain",),
        ("tune",),
        ("data", "fetch"),
        ("data", "stats"),
        ("dam", "fit"),
        ("diffusion", "fit"),
        ("diagnose",),
    ):
        text = " ".join(help_of(*command).split())  # argparse wraps lines
        assert all(name in text for name in registry), command
    for command in (("train",), ("pretrain",), ("tune",)):
        text = help_of(*command)
        for names in (SAMPLERS, MODELS):
            assert all(name in text for name in names), command
    assert all(name in " ".join(help_of("train").split()) for name in TRACKERS)
    recipes = yaml.safe_load((Path(__file__).parents[1] / "dans_kgc/recipes.yaml").read_text())
    for command in (("train",), ("pretrain",), ("tune",), ("dam", "fit"), ("diffusion", "fit")):
        assert all(name in " ".join(help_of(*command).split()) for name in recipes), command


def test_report_help_lists_every_registered_builder_with_its_options():
    from dans_kgc.reports import REPORTS

    # the builders, found in the sources independently of the registry
    source = Path(__file__).parents[1] / "dans_kgc/reports"
    declared = {
        m
        for f in source.glob("*.py")
        if f.name != "__init__.py"
        for m in re.findall(r'^@register\(\s*"(\w+)"', f.read_text(), re.MULTILINE)
    }
    assert len(declared) == 16 and declared == set(REPORTS)
    text = help_of("report")
    listed = set(re.findall(r"^  (\w+) +(?:table|figure):", text, re.MULTILINE))
    assert listed == declared
    kind_help = " ".join(text.split("positional arguments:")[1].split("options:")[0].split())
    assert all(name in kind_help for name in declared)
    flags = {
        "digits": "--digits",
        "split": "--split",
        "target_mrr": "--target-mrr",
        "target_fraction": "--target-fraction",
    }
    for name, spec in REPORTS.items():
        entry = re.search(rf"^  {name} +(?:table|figure):(.*?)(?=^  \w|\Z)", text, re.MULTILINE | re.DOTALL)
        entry_text = " ".join(entry.group(1).split())
        assert spec.help.split()[0] in entry_text
        for option in spec.options:
            assert flags.get(option, f"--option {option}=") in entry_text, (name, option)


def test_builders_declare_the_options_they_read():
    """Each builder's own ctx.option(...) reads (found in its source) are declared for the help."""
    from dans_kgc.reports import REPORTS

    for name, spec in REPORTS.items():
        read = set(re.findall(r'ctx\.option\("(\w+)"', inspect.getsource(spec.build))) - {"experiments"}
        assert read <= set(spec.options), (name, read - set(spec.options))


def test_help_lists_what_a_plugin_registers(tmp_path, capsys):
    plugin = tmp_path / "loss_report.py"
    plugin.write_text(
        "from dans_kgc.reports import register\n\n"
        "@register('loss_table', help='final training loss', options={'smooth': 'window'})\n"
        "def build(ctx):\n    return []\n"
    )
    with pytest.raises(SystemExit) as done:
        main(["report", "--plugin", str(plugin), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "loss_table" in out and "--option smooth=VALUE: window" in out


@pytest.mark.parametrize("init, warned", [("true", True), ("false", False)])
def test_training_without_its_stage_0_says_it_starts_from_scratch(in_tmp, caplog, init, warned):
    """A run set to start from Stage 0 but given no --pretrained (a replay from config.yaml alone) trains from
    random init: it must say so, since its numbers then differ from the recorded run's."""
    args = [
        "train",
        "--dataset",
        "umls",
        "--out",
        "run",
        "--set",
        "train.epochs=1",
        "--set",
        "model.dim=8",
        "--set",
        f"train.init_from_pretrained={init}",
        "--set",
        "threads=1",
        "--quiet",
    ]
    assert main(args) == 0
    assert ("no --pretrained folder was given" in caplog.text) == warned
