"""Every committed run config replays: each config.yaml and best.yaml under reference/ is accepted by
`dans-kgc train --config` today, and what it recorded is what the loaded config holds (a renamed key under its
new name)."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from dans_kgc import cli
from dans_kgc.config import ConfigError
from dans_kgc.stages import flatten

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "reference"
RECORDED = sorted([*RESULTS.glob("**/config.yaml"), *RESULTS.glob("**/best.yaml")])

# Renames in the package's history, written out here on their own (git log -S snap -- dans_kgc/defaults.yaml):
# diffusion.snap true / false became diffusion.negatives snapped / continuous; data.custom became datasets.
RENAMED = {"diffusion.snap": ("diffusion.negatives", {True: "snapped", False: "continuous"})}
RENAMED_PREFIXES = {"data.custom.": "datasets."}


def _expected(recorded: dict) -> dict:
    """The recorded leaves under today's names."""
    out = {}
    for key, value in flatten(recorded).items():
        if key in RENAMED:
            key, value = RENAMED[key][0], RENAMED[key][1][value]
        for old, new in RENAMED_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def _dataset(path: Path, recorded: dict) -> str:
    """A run config names its dataset; a study's best.yaml lies in runs/DATASET/tune/..."""
    return str(recorded.get("dataset") or path.relative_to(RESULTS).parts[2])


def test_every_committed_run_config_is_accepted_by_train_and_reads_as_recorded(caplog):
    assert len(RECORDED) > 300, f"only {len(RECORDED)} recorded configs under {RESULTS}"  # the glob found them
    parser = cli.build_parser()
    failures, migrated = [], 0
    for path in RECORDED:
        recorded = yaml.safe_load(path.read_text())
        dataset = _dataset(path, recorded)
        args = parser.parse_args(["train", "--dataset", dataset, "--out", "unused", "--config", str(path)])
        caplog.clear()
        try:
            loaded = flatten(cli._config(args))  # what `dans-kgc train --config` builds, before any training
        except ConfigError as err:
            failures.append(str(err))
            continue
        migrated += any(r.levelno == logging.WARNING for r in caplog.records)
        wrong = {
            k: (v, loaded.get(k, "<missing>"))
            for k, v in _expected(recorded).items()
            if k != "dataset" and loaded.get(k, "<missing>") != v
        }
        if wrong:
            failures.append(f"{path}: recorded -> loaded {wrong}")
    assert not failures, f"{len(failures)} of {len(RECORDED)}:\n" + "\n".join(failures[:10])
    assert migrated > 0  # some recorded configs use a renamed key: the migration is exercised here


def test_diagnose_reads_a_recorded_config_with_old_keys_under_the_new_names():
    """`dans-kgc diagnose` merges a run's recorded config key by key (pipeline._merge_recorded): an old key is read
    under its new name there too, not dropped as unknown (which would leave the default in its place)."""
    from dans_kgc.config import load_defaults
    from dans_kgc.pipeline import _merge_recorded

    entry = {"path": "/data/mykg", "protocol": "kge"}
    recorded = {"diffusion": {"snap": True}, "data": {"custom": {"mykg": entry}}}
    cfg = _merge_recorded(load_defaults(), recorded, "old/config.yaml")
    assert cfg["diffusion"]["negatives"] == "snapped" and "snap" not in cfg["diffusion"]  # the default is continuous
    assert cfg["datasets"] == {"mykg": entry} and "custom" not in cfg["data"]


def test_a_run_config_with_renamed_keys_is_read_under_todays_names(tmp_path, caplog):
    """evaluate / diagnose / resume read a run's own config.yaml: an older run's renamed keys must migrate
    there too (data.custom -> datasets, diffusion.snap -> diffusion.negatives), with the warning."""
    from dans_kgc.pipeline import read_run_config

    (tmp_path / "config.yaml").write_text(
        "dataset: mykg\nseed: 3\ndata: {root: data, custom: {mykg: {path: /x, protocol: kge}}}\n"
        "diffusion: {snap: true}\n"
    )
    cfg, dataset = read_run_config(tmp_path)
    assert dataset == "mykg" and cfg["seed"] == 3
    assert cfg["datasets"] == {"mykg": {"path": "/x", "protocol": "kge"}} and "custom" not in cfg["data"]
    assert cfg["diffusion"] == {"negatives": "snapped"}
    assert "data.custom" in caplog.text and "diffusion.snap" in caplog.text
