"""The dans-kgc command line end to end on UMLS (tiny budgets)."""
from __future__ import annotations

import json
import subprocess
import sys

from dans_kgc.cli import main

TINY = ["--set", "threads=1", "--set", "model.dim=16", "--set", "pretrain.dim=16", "--set", "pretrain.epochs=2",
        "--set", "train.epochs=2", "--set", "train.eval_every=1"]


def test_fetch_pretrain_train_evaluate(in_tmp):
    assert main(["data", "fetch", "umls"]) == 0
    assert (in_tmp / "data/umls/redgnn/facts.txt").exists()
    assert main(["pretrain", "--dataset", "umls", "--out", "runs/pre", "--quiet", *TINY]) == 0
    assert main(["train", "--dataset", "umls", "--out", "runs/uni", "--pretrained", "runs/pre", "--quiet",
                 "--tag", "experiment=main", "--tag", "variant=uniform", *TINY]) == 0
    assert main(["evaluate", "--run", "runs/uni", "--quiet", "--ranks"]) == 0
    metrics = json.loads((in_tmp / "runs/uni/metrics_test.json").read_text())
    for key in ("dataset", "model", "sampler", "seed", "split", "mrr", "hits@1", "hits@3", "hits@10",
                "num_ranked", "tie_policy", "provenance"):
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
