"""Your own dataset (config key `datasets`, as in the workflow's config): used wherever a registered name is,
checksummed, bad files stopped with one `file:line: what was expected` line through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from dans_kgc.cli import main

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


def make_kg(folder: Path, entities: bool = True) -> Path:
    """12 entities, 2 relations, a ring per relation: every valid/test name also occurs in train."""
    folder.mkdir(parents=True, exist_ok=True)
    ents = [f"e{i}" for i in range(12)]
    triples = [(ents[i], r, ents[(i + k) % 12]) for k, r in ((1, "next"), (3, "jump")) for i in range(12)]
    write = lambda name, rows: (folder / name).write_text("".join("\t".join(t) + "\n" for t in rows))  # noqa: E731
    write("train.txt", triples[:18])
    write("valid.txt", triples[18:21])
    write("test.txt", triples[21:])
    if entities:
        (folder / "entities.txt").write_text("\n".join(ents) + "\n")
    return folder


@pytest.fixture()
def own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = make_kg(tmp_path / "src" / "mykg")
    cfg = tmp_path / "mykg.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": {"mykg": {"path": str(folder), "protocol": "kge"}}}))
    return tmp_path, folder, cfg


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_own_dataset_fetch_stats_train_evaluate(own, capsys):
    tmp, folder, cfg = own
    assert main(["data", "fetch", "mykg", "--config", str(cfg)]) == 0
    record = capsys.readouterr().out.splitlines()
    # the fetch record: the folder, then the SHA-256 of every file
    assert record[0] == str(Path("data/mykg/kge"))
    assert sorted(record[1:]) == sorted(
        f"{_sha(folder / n)}  {n}" for n in ("entities.txt", "train.txt", "valid.txt", "test.txt")
    )
    assert main(["data", "stats", "mykg", "--out", "t1", "--config", str(cfg)]) == 0
    assert "| mykg | kge | 12 | 2 | 18 | 3 | 3 |" in (tmp / "t1.md").read_text()
    # after the fetch the name works without the config entry (the DAG's later jobs)
    assert main(["train", "--dataset", "mykg", "--out", "runs/a", *TINY]) == 0
    assert main(["evaluate", "--run", "runs/a", "--quiet"]) == 0
    metrics = json.loads((tmp / "runs/a/metrics_test.json").read_text())
    assert metrics["dataset"] == "mykg" and metrics["num_ranked"] == 2 * 3
    want = {n: _sha(folder / n) for n in ("entities.txt", "train.txt", "valid.txt", "test.txt")}
    assert metrics["provenance"]["dataset_sha256"] == want
    assert json.loads((tmp / "runs/a/run.json").read_text())["provenance"]["dataset_sha256"] == want


def test_changed_source_is_copied_again_and_changed_copy_is_refused(own, caplog):
    tmp, folder, cfg = own
    assert main(["data", "fetch", "mykg", "--config", str(cfg)]) == 0
    with (folder / "train.txt").open("a") as f:
        f.write("e0\tnext\te5\n")
    assert main(["data", "fetch", "mykg", "--config", str(cfg)]) == 0  # new checksum: copied again
    copy = tmp / "data/mykg/kge/train.txt"
    assert copy.read_bytes() == (folder / "train.txt").read_bytes()
    assert yaml.safe_load((tmp / "data/mykg/dataset.yaml").read_text())["sha256"]["train.txt"] == _sha(copy)
    # the fetched copy edited behind the manifest's back: one line, no silent use
    copy.write_text(copy.read_text() + "e1\tnext\te7\n")
    caplog.clear()
    assert main(["data", "stats", "mykg", "--out", "t1"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(Path("data/mykg/kge/train.txt")) in errors[0] and "SHA-256" in errors[0]


@pytest.mark.parametrize(
    "file, content, expected",
    [
        ("train.txt", b"e0\tnext\te1\ne1\tnext\n", "train.txt:2: expected 3 tab-separated columns"),
        ("valid.txt", b"e0\tnext\te1\ne1\t\te2\n", "valid.txt:2: empty field"),
        ("test.txt", b"e0\tnext\te1\n\xff\xfe\tnext\te2\n", "test.txt:2: not valid UTF-8"),
        (
            "test.txt",
            b"e0\tnext\te1\ne0\tnext\tunknown_entity\n",
            "test.txt:2: entity 'unknown_entity' is not listed in",
        ),
        ("valid.txt", b"\n", "valid.txt: no triples; the valid split needs at least one"),
        ("entities.txt", b"e0\n\xff\n", "entities.txt:2: not valid UTF-8"),
    ],
)
def test_bad_files_are_one_cli_line(own, caplog, capsys, file, content, expected):
    tmp, folder, cfg = own
    (folder / file).write_bytes(content)
    code = main(["train", "--dataset", "mykg", "--out", "runs/bad", "--config", str(cfg), *TINY])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert expected in errors[0]
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp / "runs/bad/config.yaml").exists()


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"path": "nowhere"}, "datasets.mykg.path: nowhere is not a folder"),
        ({"path": "src/mykg", "protocl": "kge"}, "unknown key(s) protocl"),
        ({"path": "src/mykg", "protocol": "ogb"}, "datasets.mykg.protocol: expected one of kge, redgnn"),
        ({"path": "src/empty"}, "no train.txt, valid.txt, test.txt"),
    ],
)
def test_bad_entries_name_the_key(own, caplog, entry, expected):
    tmp, _, _ = own
    (tmp / "src/empty").mkdir()
    cfg = tmp / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": {"mykg": entry}}))
    assert main(["data", "fetch", "mykg", "--config", str(cfg)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and expected in errors[0], errors


def test_registered_name_cannot_be_taken(own, caplog):
    tmp, folder, _ = own
    assert main(["data", "fetch", "umls", "--set", f"datasets={{umls: {{path: {folder}}}}}"]) == 2
    assert "'umls' is a registered dataset" in caplog.text


def test_diagnose_keeps_the_recorded_dataset_entry(own, caplog):
    tmp, folder, cfg = own
    assert main(["train", "--dataset", "mykg", "--config", str(cfg), "--out", "runs/c", *TINY]) == 0
    caplog.clear()
    assert main(["diagnose", "--run", "runs/c", "--out", "diag/c", "--triples", "10"]) == 0
    assert "unknown to this version" not in caplog.text
    assert json.loads((tmp / "diag/c.json").read_text())["subject"]["dataset"] == "mykg"


def test_moved_source_folder_falls_back_to_the_fetched_copy(own, caplog):
    tmp, folder, cfg = own
    assert main(["train", "--dataset", "mykg", "--config", str(cfg), "--out", "runs/m", *TINY]) == 0
    folder.rename(tmp / "moved")
    assert main(["evaluate", "--run", "runs/m", "--quiet"]) == 0  # the run's recorded entry names the old folder
    assert "is gone; using the copy fetched into" in caplog.text
    # without a fetched copy the missing folder is one line naming the key
    (tmp / "data/mykg/dataset.yaml").unlink()
    caplog.clear()
    assert main(["evaluate", "--run", "runs/m", "--quiet"]) == 2
    assert "datasets.mykg.path:" in caplog.text and "is not a folder" in caplog.text


REPO = Path(__file__).resolve().parents[1]


def test_one_datasets_file_is_read_by_the_cli_and_the_workflow(tmp_path, caplog):
    """The same YAML file names your dataset for `dans-kgc --config` and for `snakemake --configfile`: the CLI's
    loader takes it without a warning, and config.yaml with it merged in (as --configfile does) passes the
    workflow's schema."""
    import jsonschema

    from dans_kgc.config import load_config

    entry = {"path": str(make_kg(tmp_path / "mykg")), "protocol": "kge"}
    own_file = tmp_path / "mykg.yaml"
    own_file.write_text(yaml.safe_dump({"datasets": {"mykg": entry}}))
    assert load_config([own_file])["datasets"] == {"mykg": entry}
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    workflow_cfg = {**yaml.safe_load((REPO / "config.yaml").read_text()), **yaml.safe_load(own_file.read_text())}
    jsonschema.Draft202012Validator(schema).validate(workflow_cfg)
    assert workflow_cfg["datasets"] == {"mykg": entry}


def test_the_former_key_data_custom_is_read_as_datasets_with_a_warning(tmp_path, caplog):
    from dans_kgc.config import load_config

    entry = {"path": str(make_kg(tmp_path / "mykg")), "protocol": "redgnn"}
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"data": {"custom": {"mykg": entry}, "max_eval_triples": 7}}))
    cfg = load_config([old])
    assert cfg["datasets"] == {"mykg": entry} and cfg["data"]["max_eval_triples"] == 7 and "custom" not in cfg["data"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert all(s in warnings[0] for s in (str(old), "'data.custom'", "'datasets'")), warnings
