"""Registry, checksummed fetch, and loading with clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from dans_kgc.datasets import DATASETS, KnowledgeGraph, TripleFileError, fetch_dataset, load_dataset, read_triples
from dans_kgc.datasets.checksums import git_blob_of, sha256_of
from dans_kgc.datasets.fetch import ChecksumError, MissingFileError, fetch_file
from dans_kgc.datasets.registry import FileSpec

PAPER = {"family", "umls", "wn18rr", "fb15k-237", "nell-995", "yago3-10"}


def test_registry_lists_the_eight_datasets_with_checksums():
    synthetic = {name for name, spec in DATASETS.items() if spec.synthetic is not None}
    assert synthetic == {"yago3-10-twin", "yago3-10-mini"}
    assert set(DATASETS) - synthetic == PAPER | {"kinship", "nations"}
    for name, spec in DATASETS.items():
        if name in synthetic:  # generated on fetch: no files, URLs or checksums before that
            assert not spec.paper and spec.variants == {"kge": {}}
            continue
        assert spec.paper == (name in PAPER)
        if name in PAPER:
            assert spec.default_variant == "redgnn"
        for variant in spec.variants.values():
            for f in variant.values():
                assert f.url.startswith("https://")
                assert f.sha256 is None or len(f.sha256) == 64
                assert len(f.git_blob) >= 12


def test_mirror_files_match_registry(mirror):
    checked = 0
    for spec in DATASETS.values():
        for variant in spec.variants.values():
            for f in variant.values():
                path = mirror / f.mirror_path
                if f.sha256 is None:
                    assert not path.exists(), f"{path} exists but the registry has no SHA-256 for it"
                    continue
                data = path.read_bytes()
                assert hashlib.sha256(data).hexdigest() == f.sha256
                assert git_blob_of(data).startswith(f.git_blob)
                checked += 1
    assert checked >= 50


def test_git_blob_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_of(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_fetch_from_mirror_and_load(tmp_path, mirror):
    out = fetch_dataset("umls", tmp_path, mirror=mirror)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["entities.txt", "relations.txt", "facts.txt", "train.txt", "valid.txt", "test.txt"]
    )
    kg = load_dataset(tmp_path, "umls")
    assert (kg.num_entities, kg.num_relations) == (135, 46)
    assert len(kg.train) == 4006 + 1321  # facts + train form the training graph
    assert (len(kg.valid), len(kg.test)) == (569, 633)
    assert not list(tmp_path.rglob("*.part"))


def test_fetch_uses_env_mirror(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("DANS_KGC_DATA_MIRROR", str(mirror))
    assert (fetch_dataset("nations", tmp_path) / "train.txt").exists()


def test_checksum_mismatch_leaves_no_file(tmp_path, mirror):
    bad_mirror = tmp_path / "mirror"
    src = mirror / "kge/nations/train.txt"
    (bad_mirror / "kge/nations").mkdir(parents=True)
    (bad_mirror / "kge/nations/train.txt").write_bytes(src.read_bytes() + b"x\ty\tz\n")
    spec = DATASETS["nations"].files("kge")["train"]
    dest = tmp_path / "out" / "train.txt"
    with pytest.raises(ChecksumError, match="SHA-256"):
        fetch_file(spec, dest, bad_mirror)
    assert not dest.exists()
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert leftovers == []


def test_download_path_extracts_archive_member_and_verifies(tmp_path, mirror):
    import io
    import tarfile

    data = (mirror / "kge/umls/valid.txt").read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("valid.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    spec = DATASETS["umls"].files("kge")["valid"]
    seen = []

    def fake_download(url: str) -> bytes:
        seen.append(url)
        return buf.getvalue()

    fetch_file(spec, tmp_path / "valid.txt", None, fake_download)
    assert seen == [spec.url] and spec.url.endswith("umls.tar.gz")
    assert (tmp_path / "valid.txt").read_bytes() == data


def test_cached_corrupt_file_is_detected_and_fetched_again(tmp_path, mirror):
    fetch_dataset("nations", tmp_path, mirror=mirror)
    f = tmp_path / "nations" / "kge" / "train.txt"
    f.write_text("truncated\n")
    spec = DATASETS["nations"].files("kge")["train"]
    # the damaged copy is detected (not taken as cached) and replaced by a verified one from the mirror
    assert fetch_file(spec, f, mirror) == str(mirror / spec.mirror_path)
    assert sha256_of(f.read_bytes()) == spec.sha256
    f.write_bytes(f.read_bytes()[:100])
    fetch_dataset("nations", tmp_path, mirror=mirror)
    assert sha256_of(f.read_bytes()) == spec.sha256
    # and by download when there is no mirror
    f.write_text("truncated\n")
    src = (mirror / spec.mirror_path).read_bytes()
    spec_raw = FileSpec(spec.key, spec.mirror_path, "https://example.invalid/train.txt", spec.sha256, spec.git_blob)
    assert fetch_file(spec_raw, f, None, lambda url: src) == "https://example.invalid/train.txt"
    assert f.read_bytes() == src


def test_cached_corrupt_file_without_source_is_one_cli_line(tmp_path, mirror, monkeypatch, caplog):
    from dans_kgc.cli import main

    fetch_dataset("nations", tmp_path / "data", mirror=mirror)
    f = tmp_path / "data" / "nations" / "kge" / "train.txt"
    f.write_text("truncated\n")
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DANS_KGC_DATA_MIRROR", str(empty))
    assert main(["data", "fetch", "nations"]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    msg = errors[0].getMessage()
    assert "\n" not in msg and str(Path("data/nations/kge/train.txt")) in msg
    assert "cached copy fails its checksum and could not be fetched again" in msg
    assert f.read_text() == "truncated\n"  # never replaced by something unverified


def test_interrupted_fetch_leaves_nothing_that_passes_as_complete(tmp_path, mirror, monkeypatch):
    """A kill after half the bytes are written: the final path must not hold a file a later run would trust."""
    spec = DATASETS["nations"].files("kge")["train"]
    dest = tmp_path / "out" / "train.txt"
    real_write = Path.write_bytes

    def half_then_killed(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])
        raise KeyboardInterrupt  # what SIGINT raises mid-write; not an Exception, so no handler swallows it

    monkeypatch.setattr(Path, "write_bytes", half_then_killed)
    with pytest.raises(KeyboardInterrupt):
        fetch_file(spec, dest, mirror)
    monkeypatch.undo()
    assert not dest.exists() or sha256_of(dest.read_bytes()) == spec.sha256
    assert not dest.exists()
    # the next fetch completes it
    fetch_file(spec, dest, mirror)
    assert sha256_of(dest.read_bytes()) == spec.sha256


def test_missing_mirror_file_says_where_to_get_it(tmp_path, mirror):
    with pytest.raises(MissingFileError) as err:
        fetch_dataset("yago3-10", tmp_path, mirror=mirror)
    msg = str(err.value)
    assert "facts.txt" in msg and "https://raw.githubusercontent.com/LARS-research/RED-GNN" in msg


def test_offline_download_error_mentions_mirror(tmp_path):
    def offline(url: str) -> bytes:
        raise OSError("network unreachable")

    spec = FileSpec("train", "x/train.txt", "https://example.invalid/train.txt", None, "0" * 40)
    with pytest.raises(MissingFileError, match="DANS_KGC_DATA_MIRROR"):
        fetch_file(spec, tmp_path / "train.txt", None, offline)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a\tr\tb\na\tr\n", ":2: expected 3 tab-separated columns"),
        (b"a\tr\tb\na\t\tc\n", ":2: empty field"),
        (b"a\tr\tb\n\xff\xfe\tr\tc\n", ":2: not valid UTF-8"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, message):
    f = tmp_path / "train.txt"
    f.write_bytes(content)
    with pytest.raises(TripleFileError) as err:
        read_triples(f)
    assert str(f) + message in str(err.value)


def test_crlf_and_blank_lines_are_accepted(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes(b"a\tr\tb\r\n\r\nb\tr\tc\r\n")
    assert read_triples(f) == [("a", "r", "b"), ("b", "r", "c")]


def test_duplicates_counted_and_unseen_policy():
    splits = {
        "train": [("a", "r", "b"), ("a", "r", "b"), ("b", "r", "c")],
        "valid": [("a", "r", "c"), ("a", "r", "z")],  # z never occurs in train
        "test": [("q", "s", "a")],  # q and relation s unseen
    }
    kept = KnowledgeGraph.from_labeled("x", "kge", splits)
    assert kept.report["duplicates"]["train"] == 1
    assert len(kept.train) == 2
    assert kept.report["unseen"] == {"valid": 1, "test": 1}
    assert len(kept.valid) == 2 and len(kept.test) == 1  # default: keep and rank them
    dropped = KnowledgeGraph.from_labeled("x", "kge", splits, unseen_policy="drop")
    assert len(dropped.valid) == 1 and len(dropped.test) == 0
    assert dropped.report["dropped"] == {"valid": 1, "test": 1}
    # ids are shared: dropping does not renumber entities
    assert dropped.entities == kept.entities


def test_family_unseen_counts_match_provenance(tmp_path, mirror):
    fetch_dataset("family", tmp_path, mirror=mirror)
    kg = load_dataset(tmp_path, "family")
    # shared/datasets/README.md: valid 12, test 18 triples with an entity absent from facts+train
    assert kg.report["unseen"] == {"valid": 12, "test": 18}
    assert np.all(kg.test < [kg.num_entities, kg.num_relations, kg.num_entities])
