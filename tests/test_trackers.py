"""Experiment trackers (dans_kgc/trackers.py): what `train`, `tune` and `evaluate` log, read back through each
library's own reader (TensorBoard's EventAccumulator, MLflow's MlflowClient) and compared with the files the
run wrote itself (trace.csv, config.yaml, metrics_test.json, study.json)."""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dans_kgc.cli import main

TINY = [
    "--set",
    "threads=1",
    "--set",
    "model.dim=16",
    "--set",
    "train.epochs=3",
    "--set",
    "train.eval_every=2",
    "--set",
    "data.max_eval_triples=200",
]
TEST_KEYS = ("mrr", "hits@1", "hits@3", "hits@10")


def read_trace(run: Path) -> list[dict[str, str]]:
    with open(run / "trace.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def trace_series(run: Path) -> dict[str, dict[int, float]]:
    """column -> {epoch: value} of every non-empty numeric cell of trace.csv (the epoch column is the step)."""
    out: dict[str, dict[int, float]] = {}
    for row in read_trace(run):
        for key, text in row.items():
            if key != "epoch" and text not in ("", None):
                out.setdefault(key, {})[int(row["epoch"])] = float(text)
    return out


def flat(node: dict, prefix: str = "") -> dict[str, object]:
    """Leaves by dotted key (an empty mapping such as datasets: {} has none)."""
    out: dict[str, object] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    """One SQLite store for the module's MLflow checks (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'tracking.db'}"


def train_and_evaluate(out: str, *extra: str, plugins: tuple[str, ...] = ()) -> Path:
    plugin_args = [a for p in plugins for a in ("--plugin", p)]
    assert main(["train", "--dataset", "umls", "--out", out, "--quiet", *TINY, *plugin_args, *extra]) == 0
    assert main(["evaluate", "--run", out, "--quiet", *plugin_args]) == 0
    return Path(out)


# ------------------------------------------------------------------------------------------
# TensorBoard
# ------------------------------------------------------------------------------------------
def test_tensorboard_scalars_equal_the_trace_and_the_test_metrics(in_tmp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_and_evaluate("runs/tb", "--tracker", "tensorboard")
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    scalars = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
    trace = trace_series(run)
    assert {"loss", "seconds", "valid_mrr", "valid_hits@1", "valid_hits@10"} <= set(trace)
    assert set(trace["valid_mrr"]) == {2, 3}  # validated at epoch 2 (eval_every) and the last epoch
    for column, points in trace.items():
        # TensorBoard keeps scalars as 32-bit floats: each equals the trace value rounded to float32
        assert scalars[column] == {step: float(np.float32(v)) for step, v in points.items()}, column
    metrics = json.loads((run / "metrics_test.json").read_text())
    for key in TEST_KEYS:  # the evaluation's metrics, at the run's last epoch
        assert scalars[f"test/{key}"] == {3: float(np.float32(metrics[key]))}, key
    assert scalars["summary/best_valid_mrr"] == {3: float(np.float32(max(trace["valid_mrr"].values())))}
    (params,) = acc.Tensors("params/text_summary")
    text = params.tensor_proto.string_val[0].decode()
    assert "| train.epochs | 3 |" in text and "| dataset | umls |" in text


# ------------------------------------------------------------------------------------------
# MLflow
# ------------------------------------------------------------------------------------------
def mlflow_run(run: Path):
    from mlflow.tracking import MlflowClient

    record = json.loads((run / "tracker.json").read_text())
    assert record["name"] == "mlflow"
    client = MlflowClient(record["reference"]["uri"])
    return client, client.get_run(record["reference"]["run_id"])


def history(client, run_id: str, key: str) -> dict[int, float]:
    points = client.get_metric_history(run_id, key)
    assert len({m.step for m in points}) == len(points), f"{key}: a step logged twice"
    return {m.step: m.value for m in points}


def mlflow_name(column: str) -> str:
    return column.replace("@", "_at_")


def test_mlflow_params_metric_history_and_test_metrics(in_tmp, mlflow_uri):
    run = train_and_evaluate(
        "runs/ml",
        "--tracker",
        "mlflow",
        "--set",
        f"tracker.uri={mlflow_uri}",
        "--set",
        "tracker.experiment=umls-checks",
        "--tag",
        "experiment=main",
    )
    client, tracked = mlflow_run(run)
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == "runs/ml"
    assert client.get_experiment(tracked.info.experiment_id).name == "umls-checks"
    assert tracked.data.tags["experiment"] == "main"
    # parameters: every key of the run's own config.yaml, flattened, as text
    recorded = flat(yaml.safe_load((run / "config.yaml").read_text()))
    assert tracked.data.params == {k: str(v) for k, v in recorded.items()}
    assert tracked.data.params["train.epochs"] == "3" and tracked.data.params["dataset"] == "umls"
    # metric history: each trace column, every epoch it has a value, exactly (MLflow keeps doubles)
    for column, points in trace_series(run).items():
        assert history(client, tracked.info.run_id, mlflow_name(column)) == points, column
    metrics = json.loads((run / "metrics_test.json").read_text())
    for key in TEST_KEYS:
        assert history(client, tracked.info.run_id, f"test/{mlflow_name(key)}") == {3: metrics[key]}, key


def test_mlflow_resume_continues_the_same_run(in_tmp, mlflow_uri):
    sets = ["--tracker", "mlflow", "--set", f"tracker.uri={mlflow_uri}", "--set", "tracker.experiment=resume", *TINY]
    assert main(["train", "--dataset", "umls", "--out", "runs/r", "--quiet", *sets, "--set", "train.epochs=2"]) == 0
    first = json.loads(Path("runs/r/tracker.json").read_text())["reference"]["run_id"]
    assert (
        main(["train", "--dataset", "umls", "--out", "runs/r", "--quiet", "--resume", *sets, "--set", "train.epochs=4"])
        == 0
    )
    client, tracked = mlflow_run(Path("runs/r"))
    assert tracked.info.run_id == first and tracked.info.status == "FINISHED"
    assert len(client.search_runs([tracked.info.experiment_id])) == 1
    assert history(client, first, "loss") == trace_series(Path("runs/r"))["loss"]
    assert sorted(history(client, first, "loss")) == [1, 2, 3, 4]


def test_tune_logs_one_run_per_trial(in_tmp, mlflow_uri):
    from mlflow.tracking import MlflowClient

    space = in_tmp / "space.yaml"
    space.write_text(yaml.safe_dump({"shared": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 5.0e-2}}}))
    sets = [
        a
        for s in (
            "model.dim=16",
            "train.epochs=2",
            "train.eval_every=1",
            "data.max_eval_triples=200",
            "threads=1",
            "tune.startup_trials=2",
            f"tune.space={space}",
            f"tracker.uri={mlflow_uri}",
            "tracker.experiment=tune",
        )
        for a in ("--set", s)
    ]
    assert (
        main(["tune", "--dataset", "umls", "--out", "study", "--quiet", "--trials", "2", "--tracker", "mlflow", *sets])
        == 0
    )
    study = json.loads(Path("study/study.json").read_text())
    client = MlflowClient(mlflow_uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tune").experiment_id])}
    assert sorted(runs) == ["study/trials/0000", "study/trials/0001"]
    for trial in study["trials"]:
        tracked = runs[f"study/trials/{trial['number']:04d}"]
        assert float(tracked.data.params["train.lr"]) == trial["params"]["train.lr"]
        assert tracked.data.tags["trial"] == str(trial["number"])
        valid = history(client, tracked.info.run_id, "valid_mrr")
        assert valid == {int(k): v for k, v in trial["intermediate"].items()}  # what the pruner saw
        assert trial["state"] == "COMPLETE" and tracked.info.status == "FINISHED"  # 2 trials: no pruning yet
        assert tracked.data.metrics["summary/best_valid_mrr"] == trial["value"]


class TrialPruned(Exception):
    """Named as optuna's: a run stopped on purpose."""


@pytest.mark.parametrize("error, status", [(None, "FINISHED"), (TrialPruned, "KILLED"), (RuntimeError, "FAILED")])
def test_mlflow_run_status_follows_how_training_ended(tmp_path, mlflow_uri, error, status):
    from mlflow.tracking import MlflowClient

    from dans_kgc.config import load_config
    from dans_kgc.trackers import RunTracking

    cfg = load_config([], ["tracker.name=mlflow", f"tracker.uri={mlflow_uri}", "tracker.experiment=status"])
    tracking = RunTracking(cfg, tmp_path, dataset="umls")
    summary = {"epochs_run": 1, "best_valid_mrr": 0.5, "best_epoch": 1, "train_seconds": 0.1, "steps": 3}

    def fit() -> dict:
        tracking.log_epoch({"epoch": 1, "loss": 0.25})
        if error is not None:
            raise error("stopped")
        return summary

    if error is None:
        assert tracking.track(fit) == summary
    else:
        with pytest.raises(error):
            tracking.track(fit)
    run_id = json.loads((tmp_path / "tracker.json").read_text())["reference"]["run_id"]
    client = MlflowClient(mlflow_uri)
    assert client.get_run(run_id).info.status == status
    assert history(client, run_id, "loss") == {1: 0.25}


# ------------------------------------------------------------------------------------------
# errors, off by default, a tracker added in one file
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, module", [("mlflow", "mlflow"), ("tensorboard", "torch.utils.tensorboard")])
def test_missing_library_is_one_line_naming_the_extra(in_tmp, caplog, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    caplog.set_level(logging.ERROR)
    assert main(["train", "--dataset", "umls", "--out", "runs/x", "--quiet", "--tracker", name, *TINY]) == 2
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\n" not in message and "tracker.name" in message and "pip install 'dans-kgc[tracking]'" in message
    assert not Path("runs/x/trace.csv").exists()  # refused before training


def test_unknown_tracker_lists_the_registered_ones(in_tmp, caplog):
    assert main(["train", "--dataset", "umls", "--out", "runs/x", "--quiet", "--tracker", "wandb", *TINY]) == 2
    assert "'tracker.name' = 'wandb'" in caplog.text
    assert all(name in caplog.text for name in ("mlflow", "none", "tensorboard"))


def test_off_by_default_writes_nothing(in_tmp):
    run = train_and_evaluate("runs/plain")
    assert not (run / "tracker.json").exists() and not (run / "tensorboard").exists()
    assert not list(Path(".").glob("mlflow.db")) and not Path("mlruns").exists()


PLUGIN = """
import json
from pathlib import Path
from dans_kgc.trackers import ResultTracker, register

@register
class JsonLinesTracker(ResultTracker):
    name = "jsonl"

    def start_run(self, params):
        self.path = Path(self.reference["path"]) if self.reference else self.run_dir / "log.jsonl"
        if not self.reference:
            self.path.write_text(json.dumps({"params": dict(params)}) + "\\n")
        return {"path": str(self.path)}

    def log_metrics(self, metrics, step):
        with self.path.open("a") as fh:
            fh.write(json.dumps({"step": step, "metrics": dict(metrics)}) + "\\n")
"""


def test_a_tracker_added_in_one_file(in_tmp):
    Path("my_tracker.py").write_text(PLUGIN)
    run = train_and_evaluate("runs/p", "--tracker", "jsonl", plugins=("my_tracker.py",))
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert lines[0]["params"]["train.epochs"] == 3
    logged: dict[str, dict[int, float]] = {}
    for line in lines[1:]:
        for key, value in line["metrics"].items():
            logged.setdefault(key, {})[line["step"]] = value
    for column, points in trace_series(run).items():
        assert logged[column] == points, column
    metrics = json.loads((run / "metrics_test.json").read_text())
    assert logged["test/mrr"] == {3: metrics["mrr"]}


def test_config_choices_name_the_registered_trackers():
    from dans_kgc.config import _CHOICES
    from dans_kgc.trackers import TRACKERS

    built_in = {name for name, cls in TRACKERS.items() if cls.__module__ == "dans_kgc.trackers"}  # not plugins'
    assert _CHOICES[("tracker", "name")] == built_in


def test_nan_and_text_are_left_out_of_the_metrics():
    from dans_kgc.trackers import numeric_metrics

    row = {"epoch": 4, "loss": 0.5, "band1_quantile": math.nan, "note": "x", "flag": True, "count": 3}
    assert numeric_metrics(row, skip=("epoch",)) == {"loss": 0.5, "count": 3.0}
