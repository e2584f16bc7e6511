"""`dans-kgc results keep` on hand-made run folders (no training): what is kept, the manifest's checksums against
an independent hash, idempotence, never deleting or overwriting what it did not make, stale runs, merging two
machines' results, the size limit and an interrupted copy."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from pathlib import Path

import pytest

from dans_kgc import results_store
from dans_kgc.cli import main
from dans_kgc.reports.runs import load_runs
from dans_kgc.results_store import keep, parse_size

RUN_DIR = "umls/main/dans@transe/seed0"
WARM_START = "umls/diffusion/dans-mu1.0/diffusion_report.json"
# every file a keeping must copy from the tree below, source (below results/ or figures/) -> target (below
# reference/toy/), written out by hand
EXPECTED = {
    f"results:toy/{RUN_DIR}/run.json": f"runs/{RUN_DIR}/run.json",
    f"results:toy/{RUN_DIR}/trace.csv": f"runs/{RUN_DIR}/trace.csv",
    f"results:toy/{RUN_DIR}/metrics_test.json": f"runs/{RUN_DIR}/metrics_test.json",
    f"results:toy/{RUN_DIR}/metrics_valid.json": f"runs/{RUN_DIR}/metrics_valid.json",
    f"results:toy/{RUN_DIR}/config.yaml": f"runs/{RUN_DIR}/config.yaml",
    "results:toy/umls/main/uniform@transe/seed1/run.json": "runs/umls/main/uniform@transe/seed1/run.json",
    "results:toy/umls/pretrain/transe-ab12/run.json": "runs/umls/pretrain/transe-ab12/run.json",
    "results:toy/umls/pretrain/transe-ab12/trace.csv": "runs/umls/pretrain/transe-ab12/trace.csv",
    "results:toy/umls/dam/transe-ab12/dam_report.json": "runs/umls/dam/transe-ab12/dam_report.json",
    f"results:toy/{WARM_START}": f"runs/{WARM_START}",
    "results:toy/umls/tune/dans@transe/study.json": "runs/umls/tune/dans@transe/study.json",
    "results:toy/umls/tune/dans@transe/best.yaml": "runs/umls/tune/dans@transe/best.yaml",
    "results:toy/umls/diagnostics/main/dans@transe/seed0.json": "runs/umls/diagnostics/main/dans@transe/seed0.json",
    "results:toy/umls/diagnostics/main/dans@transe/seed0.md": "runs/umls/diagnostics/main/dans@transe/seed0.md",
    "results:toy/tables/main.csv": "tables/main.csv",
    "results:toy/tables/main.provenance.json": "tables/main.provenance.json",
    "figures:toy/curves.png": "figures/curves.png",
    f"results:benchmarks/train/toy/{RUN_DIR}.tsv": f"benchmarks/train/{RUN_DIR}.tsv",
    "results:benchmarks/dam/toy/umls/transe-ab12.tsv": "benchmarks/dam/umls/transe-ab12.tsv",
    "results:benchmarks/dataset_stats/toy.tsv": "benchmarks/dataset_stats.tsv",
}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def make_tree(root: Path, preset: str = "toy") -> Path:
    """A preset's DAG output by hand: one finished run and every kind of file a keeping must leave behind."""
    res = root / "results" / preset
    run = res / RUN_DIR
    write(
        run / "run.json",
        json.dumps(
            {
                "dataset": "umls",
                "seed": 0,
                "stage": "train",
                "tags": {"experiment": "main", "variant": "dans"},
                "stages": {"dam": f"results/{preset}/umls/dam/transe-ab12"},
            }
        ),
    )
    write(run / "trace.csv", "epoch,valid_mrr\n1,0.5\n")
    write(run / "metrics_test.json", json.dumps({"dataset": "umls", "seed": 0, "mrr": 0.61}))
    write(run / "metrics_valid.json", json.dumps({"dataset": "umls", "seed": 0, "mrr": 0.6}))
    write(run / "config.yaml", "seed: 0\n")
    write(run / "model_best.pt", b"\x00weights")
    write(run / "checkpoint.pt", b"\x00weights")
    write(run / "ranks_test.npz", b"ranks")
    write(res / "umls/main/uniform@transe/seed1/run.json", "{}")  # a failed run: run.json only
    write(res / "umls/main/uniform@transe/seed2/trace.csv", "epoch\n1\n")  # in progress: no run.json yet
    write(res / "umls/pretrain/transe-ab12/run.json", json.dumps({"stage": "pretrain"}))
    write(res / "umls/pretrain/transe-ab12/trace.csv", "epoch\n")
    write(res / "umls/pretrain/transe-ab12/model_best.pt", b"w")
    write(res / "umls/dam/transe-ab12/dam_report.json", json.dumps({"holdout_spearman": 0.75}))
    write(res / "umls/dam/transe-ab12/entities.csv", "entity,zeta\n")
    write(res / "umls/diffusion/dans-mu1.0/diffusion_report.json", "{}")
    write(res / "umls/diffusion/dans-mu1.0/diffusion.pt", b"w")
    write(res / "umls/tune/dans@transe/study.json", "{}")
    write(res / "umls/tune/dans@transe/best.yaml", "train:\n  lr: 0.01\n")
    write(res / "umls/tune/dans@transe/study.db", b"sqlite")
    write(res / "umls/tune/dans@transe/trials/0000/run.json", "{}")
    write(res / "umls/tune/dans@transe/trials/0000/trace.csv", "epoch\n")
    write(res / "umls/diagnostics/main/dans@transe/seed0.json", "{}")
    write(res / "umls/diagnostics/main/dans@transe/seed0.md", "# diagnosis\n")
    write(res / "umls/diagnostics/main/dans@transe/seed0.png", b"png")
    write(res / "umls/data/fetch.txt", "mirror\n")
    write(res / "tables/main.csv", "dataset,mrr\numls,0.61\n")
    write(res / "tables/main.provenance.json", "{}")
    write(root / "figures" / preset / "curves.png", b"\x89PNG small")
    bench = root / "results" / "benchmarks"
    write(bench / f"train/{preset}/{RUN_DIR}.tsv", "s\th:m:s\tmax_rss\n12.5\t0:00:12\t812.3\n")
    write(bench / f"dam/{preset}/umls/transe-ab12.tsv", "s\th:m:s\tmax_rss\n3.0\t0:00:03\t400.0\n")
    write(bench / f"dataset_stats/{preset}.tsv", "s\th:m:s\tmax_rss\n1.0\t0:00:01\t90.0\n")
    write(bench / f"train/other/{RUN_DIR}.tsv", "s\n1\n")  # another preset's job
    write(bench / "dataset_stats/other.tsv", "s\n1\n")
    write(bench / f"train/{preset}/notes.txt", "not a record\n")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def keep_toy(root: Path, **kw) -> results_store.KeepOutcome:
    return keep("toy", results_root=root / "results", figures_root=root / "figures", into=root / "reference", **kw)


def targets(outcome: results_store.KeepOutcome, action: str) -> set[str]:
    return {c.target for c in outcome.planned[action]}


def test_keeps_exactly_the_small_run_files_stage_records_tables_and_figures(tmp_path):
    root = make_tree(tmp_path)
    keep_toy(root)
    folder = root / "reference/toy"
    kept = snapshot(folder)
    assert set(kept) == set(EXPECTED.values()) | {"MANIFEST.json"}
    for source, target in EXPECTED.items():
        where, rel = source.split(":")
        assert kept[target] == (root / where / rel).read_bytes(), target


def test_manifest_checksums_sizes_and_sources_match_the_files(tmp_path):
    root = make_tree(tmp_path)
    keep_toy(root)
    folder = root / "reference/toy"
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == set(EXPECTED.values())
    for target, entry in manifest["files"].items():
        data = (folder / target).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), target
        assert entry["size"] == len(data), target
        assert f"{entry['root']}:{entry['source']}" == {v: k for k, v in EXPECTED.items()}[target]
    (keeping,) = manifest["keepings"]
    assert keeping["preset"] == "toy" and keeping["number"] == 1
    assert datetime.fromisoformat(keeping["date"].replace("Z", "+00:00")).tzinfo is not None
    assert keeping["packages"]["python"] and "git_commit" in keeping


def test_keeping_again_changes_no_byte(tmp_path):
    root = make_tree(tmp_path)
    keep_toy(root)
    before = snapshot(root / "reference/toy")
    again = keep_toy(root)
    assert snapshot(root / "reference/toy") == before
    assert not again.manifest_written and targets(again, "unchanged") == set(EXPECTED.values())


def test_changed_source_replaces_only_its_own_kept_file(tmp_path):
    root = make_tree(tmp_path)
    keep_toy(root)
    write(root / "results/toy" / RUN_DIR / "metrics_test.json", json.dumps({"mrr": 0.7}))
    outcome = keep_toy(root)
    assert targets(outcome, "replace") == {f"runs/{RUN_DIR}/metrics_test.json"}
    kept = root / "reference/toy/runs" / RUN_DIR / "metrics_test.json"
    assert json.loads(kept.read_text()) == {"mrr": 0.7}
    manifest = json.loads((root / "reference/toy/MANIFEST.json").read_text())
    assert (
        manifest["files"][f"runs/{RUN_DIR}/metrics_test.json"]["sha256"]
        == hashlib.sha256(kept.read_bytes()).hexdigest()
    )
    assert [k["number"] for k in manifest["keepings"]] == [1, 2]


def test_files_it_did_not_make_are_left_alone_and_reported(tmp_path):
    root = make_tree(tmp_path)
    folder = root / "reference/toy"
    write(folder / "tables/main.csv", "hand-made table\n")  # collides with a source, not made by keeping
    write(folder / "README.md", "notes\n")
    write(folder / f"runs/{RUN_DIR}/trace.csv", "epoch,valid_mrr\n1,0.5\n")  # identical to its source
    outcome = keep_toy(root)
    assert (folder / "tables/main.csv").read_text() == "hand-made table\n"
    assert (folder / "README.md").read_text() == "notes\n"
    assert targets(outcome, "foreign") == {"tables/main.csv"} and outcome.unlisted == ["README.md"]
    assert targets(outcome, "adopt") == {f"runs/{RUN_DIR}/trace.csv"}
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert "tables/main.csv" not in manifest["files"] and "README.md" not in manifest["files"]
    assert f"runs/{RUN_DIR}/trace.csv" in manifest["files"]
    # a kept file edited by hand afterwards is not overwritten either
    write(folder / "tables/main.provenance.json", '{"edited": true}')
    write(root / "results/toy/tables/main.provenance.json", '{"rebuilt": true}')
    outcome = keep_toy(root)
    assert (folder / "tables/main.provenance.json").read_text() == '{"edited": true}'
    assert targets(outcome, "edited") == {"tables/main.provenance.json"}
    assert "left alone, changed since it was kept" in outcome.summary()


def test_a_run_gone_from_the_source_stays_and_is_reported_stale(tmp_path):
    root = make_tree(tmp_path)
    keep_toy(root)
    gone = root / "results/toy/umls/main/uniform@transe/seed1/run.json"
    gone.unlink()
    outcome = keep_toy(root)
    assert (root / "reference/toy/runs/umls/main/uniform@transe/seed1/run.json").read_text() == "{}"
    assert outcome.stale == ["runs/umls/main/uniform@transe/seed1/run.json"]


def test_keeping_from_two_machines_adds_their_runs(tmp_path):
    a = make_tree(tmp_path / "a")
    b = tmp_path / "b"
    write(b / "results/toy/family/main/dans@transe/seed0/run.json", '{"machine": "b"}')
    into = tmp_path / "reference"
    keep("toy", results_root=a / "results", figures_root=a / "figures", into=into)
    outcome = keep("toy", results_root=b / "results", figures_root=b / "figures", into=into)
    kept = snapshot(into / "toy")
    assert set(kept) == set(EXPECTED.values()) | {"runs/family/main/dans@transe/seed0/run.json", "MANIFEST.json"}
    assert kept["runs/family/main/dans@transe/seed0/run.json"] == b'{"machine": "b"}'
    assert len(outcome.stale) == len(EXPECTED)  # machine a's files are not on b: reported, not deleted
    manifest = json.loads(kept["MANIFEST.json"])
    assert [k["results"] for k in manifest["keepings"]] == [(a / "results").as_posix(), (b / "results").as_posix()]
    assert manifest["files"]["runs/family/main/dans@transe/seed0/run.json"]["keeping"] == 2


def test_size_limit(tmp_path):
    root = make_tree(tmp_path)
    write(root / "results/toy" / RUN_DIR / "trace.csv", b"x" * 1001)
    write(root / "results/toy/tables/main.csv", b"y" * 1000)
    outcome = keep_toy(root, max_bytes=1000)
    assert not (root / "reference/toy/runs" / RUN_DIR / "trace.csv").exists()
    assert (root / "reference/toy/tables/main.csv").stat().st_size == 1000
    assert targets(outcome, "skipped") == {f"runs/{RUN_DIR}/trace.csv"}
    manifest = json.loads((root / "reference/toy/MANIFEST.json").read_text())
    assert manifest["keepings"][0]["skipped"] == [{"source": f"results:toy/{RUN_DIR}/trace.csv", "size": 1001}]
    assert (parse_size("1MB"), parse_size("2 kB"), parse_size("1MiB"), parse_size("17")) == (
        1_000_000,
        2000,
        1_048_576,
        17,
    )


@pytest.mark.parametrize("kept_before", [False, True])
def test_an_interrupted_copy_leaves_no_half_file(tmp_path, monkeypatch, kept_before):
    root = make_tree(tmp_path)
    source = root / "results/toy" / RUN_DIR / "trace.csv"
    dest = root / "reference/toy/runs" / RUN_DIR / "trace.csv"
    if kept_before:
        keep_toy(root)
    old = dest.read_bytes() if kept_before else None
    manifest_before = snapshot(root / "reference").get("toy/MANIFEST.json")
    write(source, b"epoch,valid_mrr\n" + b"1,0.5\n" * 5000)

    def copy_half_then_stop(inp, out, *args):
        out.write(inp.read(1000))
        raise KeyboardInterrupt

    monkeypatch.setattr(results_store.shutil, "copyfileobj", copy_half_then_stop)
    with pytest.raises(KeyboardInterrupt):
        keep_toy(root, only=[f"{RUN_DIR}/trace.csv"])
    assert (dest.read_bytes() if dest.exists() else None) == old
    assert not list((root / "reference").rglob("*.part"))
    assert snapshot(root / "reference").get("toy/MANIFEST.json") == manifest_before


def test_only_and_dry_run(tmp_path):
    root = make_tree(tmp_path)
    dry = keep_toy(root, only=["umls/diagnostics", "tables"], dry_run=True)
    assert not (root / "reference").exists()
    assert targets(dry, "new") == {t for t in EXPECTED.values() if t.startswith(("runs/umls/diagnostics/", "tables/"))}
    assert "  new: tables/main.csv  <- results:toy/tables/main.csv" in dry.summary().splitlines()
    keep_toy(root, only=["*/main/*@transe/seed0"])
    assert set(snapshot(root / "reference/toy")) == {
        t for t in EXPECTED.values() if t.startswith(f"runs/{RUN_DIR}/")
    } | {"MANIFEST.json"}


def test_kept_run_reads_its_kept_dam_report(tmp_path):
    """The reports find a run's DAM report where a keeping puts it (runs/D/dam/KEY), not only at the recorded
    results/P/D/dam/KEY."""
    root = make_tree(tmp_path)
    keep_toy(root)
    (record,) = load_runs([root / "reference/toy/runs" / RUN_DIR])
    assert record.dam_value("holdout_spearman") == 0.75


def test_cli_keeps_and_reports_bad_input_in_one_line(tmp_path, monkeypatch, caplog):
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["results", "keep", "--preset", "toy", "--report", "kept.json"]) == 0
    assert (tmp_path / "reference/toy/MANIFEST.json").exists()
    assert len(json.loads((tmp_path / "kept.json").read_text())["new"]) == len(EXPECTED)
    with caplog.at_level(logging.ERROR):
        assert main(["results", "keep", "--preset", "nope"]) == 2
        assert main(["results", "keep", "--preset", "toy", "--max-size", "big"]) == 2
        write(tmp_path / "reference/toy/MANIFEST.json", "{not json")
        assert main(["results", "keep", "--preset", "toy"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "results/nope: no such folder" in errors[0]
    assert "size 'big'" in errors[1]
    assert "MANIFEST.json: not valid JSON" in errors[2]


@pytest.mark.slow
def test_keep_results_rule_keeps_the_tiny_preset(tmp_path_factory, tmp_path):
    """`snakemake keep_results` after the tiny preset: every finished run's small files and every table and figure
    are in reference/tiny/ byte for byte, no weights, and the rule leaves its record, log and benchmark."""
    import shutil

    from workflow_helpers import run_snakemake, tiny_reference

    tiny, _ = tiny_reference(tmp_path_factory.getbasetemp())
    wf = tmp_path / "wf"
    shutil.copytree(tiny, wf, symlinks=True)
    run_snakemake(wf, "keep_results", "--cores", "1", "--config", "preset=tiny")
    res, ref = wf / "results/tiny", wf / "reference/tiny"
    expected = {}
    for info in res.glob("*/*/*/seed*/run.json"):
        for name in ("run.json", "trace.csv", "metrics_test.json", "config.yaml"):
            if (info.parent / name).exists():
                expected[f"runs/{info.parent.relative_to(res).as_posix()}/{name}"] = info.parent / name
    expected.update({f"tables/{p.name}": p for p in (res / "tables").iterdir()})
    expected.update({f"figures/{p.name}": p for p in (wf / "figures/tiny").iterdir()})
    assert len(expected) > 20
    for target, source in expected.items():
        assert (ref / target).read_bytes() == source.read_bytes(), target
    assert not list(ref.rglob("*.pt"))
    manifest = json.loads((ref / "MANIFEST.json").read_text())
    assert set(expected) <= set(manifest["files"])
    for target, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((ref / target).read_bytes()).hexdigest(), target
    record = json.loads((res / "kept.json").read_text())
    assert len(record["new"]) == len(manifest["files"]) and not record["foreign"]
    assert (wf / "logs/keep_results/tiny.log").exists()
    assert (wf / "results/benchmarks/keep_results/tiny.tsv").exists()
