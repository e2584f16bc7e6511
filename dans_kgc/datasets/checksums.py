"""Checksums of dataset files and the manifest of a fetched custom dataset.

Shared by the fetch (verifies and records), the loader (records what it read) and custom datasets
(their manifest), so that none of them has to import another for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from dans_kgc.datasets.registry import DatasetSpec
from dans_kgc.utils import write_text

MANIFEST = "dataset.yaml"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_of(data: bytes) -> str:
    """The id git gives ``data`` as a blob (the registry's checksum for files taken from a repository)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def file_checksums(folder: Path, spec: DatasetSpec, variant: str) -> dict[str, str]:
    """SHA-256 of each fetched file of a split (fetch records and result provenance)."""
    return {f.filename: sha256_of((folder / f.filename).read_bytes()) for f in spec.files(variant).values()}


def write_manifest(root: Path, spec: DatasetSpec, variant: str) -> Path:
    """``<root>/<name>/dataset.yaml``: where the copy came from and the SHA-256 of each file."""
    files = spec.files(variant)
    source = str(Path(next(iter(files.values())).source or "").parent)
    manifest = {
        "name": spec.name,
        "protocol": variant,
        "source": source,
        "sha256": {f.filename: f.sha256 for f in files.values()},
    }
    path = root / spec.name / MANIFEST
    write_text(path, yaml.safe_dump(manifest, sort_keys=False))
    return path
