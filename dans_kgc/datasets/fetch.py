"""Fetch dataset files from a local mirror or their canonical URL, verifying every checksum.

Every file is written to a temporary name and renamed only after its checksum matched,
so an interrupted fetch never leaves a file that a later run would take as complete.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from dans_kgc.datasets.checksums import git_blob_of, sha256_of, write_manifest
from dans_kgc.datasets.registry import DatasetSpec, FileSpec, get_dataset
from dans_kgc.utils import atomic_path

MIRROR_ENV = "DANS_KGC_DATA_MIRROR"

log = logging.getLogger(__name__)


class ChecksumError(ValueError):
    """A file's bytes do not match the registry's checksums (bad input: the CLI prints one line)."""


class MissingFileError(FileNotFoundError):
    pass


def verify(spec: FileSpec, data: bytes, origin: str) -> None:
    if spec.sha256 is not None:
        got = sha256_of(data)
        if got != spec.sha256:
            raise ChecksumError(
                f"{origin}: SHA-256 {got} does not match the expected {spec.sha256} ({spec.mirror_path})"
            )
    got_blob = git_blob_of(data)
    if not got_blob.startswith(spec.git_blob):
        raise ChecksumError(
            f"{origin}: git blob {got_blob} does not match the expected {spec.git_blob} ({spec.mirror_path})"
        )


def resolve_mirror(mirror: str | Path | None) -> Path | None:
    mirror = mirror or os.environ.get(MIRROR_ENV)
    return Path(mirror) if mirror else None


def _download(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - registry URLs are https
        return resp.read()


def _extract(archive: bytes, member: str, url: str) -> bytes:
    if url.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            return zf.read(member)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tf:
        f = tf.extractfile(member) or tf.extractfile("./" + member)
        if f is None:
            raise MissingFileError(f"{url}: archive has no member '{member}'")
        return f.read()


def fetch_file(spec: FileSpec, dest: Path, mirror: Path | None, downloader: Callable[[str], bytes] = _download) -> str:
    """Make ``dest`` a verified copy of ``spec``; returns where it came from.

    A cached file that fails its checksum (edited, or damaged on disk after the fetch) is fetched
    again from the mirror or URL; if that is impossible the error names the damaged file too.
    """
    if dest.exists():
        try:
            verify(spec, dest.read_bytes(), str(dest))
            return "cached"
        except ChecksumError as err:
            log.warning("%s; fetching it again", err)
            try:
                return _fetch_fresh(spec, dest, mirror, downloader)
            except (MissingFileError, ChecksumError) as again:
                raise type(again)(
                    f"{dest}: cached copy fails its checksum and could not be fetched again: {again}; "
                    "restore the source, or delete the file and fetch once it is reachable"
                ) from None
    return _fetch_fresh(spec, dest, mirror, downloader)


def _fetch_fresh(spec: FileSpec, dest: Path, mirror: Path | None, downloader: Callable[[str], bytes]) -> str:
    """Copy or download ``spec``, verify it, and only then move it to ``dest``."""
    if spec.source is not None:  # your own dataset: its folder is the one source
        src = Path(spec.source)
        if not src.is_file():
            raise MissingFileError(f"{src}: no such file (the dataset's source folder changed since it was fetched?)")
        data = src.read_bytes()
        verify(spec, data, str(src))
        if src.resolve() != dest.resolve():
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
        return str(src)
    if mirror is not None:
        src = mirror / spec.mirror_path
        if not src.exists():
            raise MissingFileError(
                f"{src}: not in the mirror folder. Download it from {spec.url}"
                + (f" (archive member {spec.archive_member})" if spec.archive_member else "")
                + f" and place it there; expected git blob {spec.git_blob}"
                + (f", SHA-256 {spec.sha256}" if spec.sha256 else "")
            )
        data = src.read_bytes()
        origin = str(src)
    else:
        try:
            raw = downloader(spec.url)
        except OSError as err:
            raise MissingFileError(
                f"could not download {spec.url}: {err}. Offline? Point the config key data.mirror or "
                f"the environment variable {MIRROR_ENV} at a folder laid out as the registry's mirror_path entries "
                "(redgnn/<name>/..., kge/<NAME>/...)"
            ) from err
        data = _extract(raw, spec.archive_member, spec.url) if spec.archive_member else raw
        origin = spec.url
    verify(spec, data, origin)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return origin


def dataset_dir(root: str | Path, name: str, variant: str) -> Path:
    return Path(root) / name / variant


def fetch_dataset(
    name: str,
    root: str | Path = "data",
    variant: str | None = None,
    mirror: str | Path | None = None,
    downloader: Callable[[str], bytes] = _download,
    spec: DatasetSpec | None = None,
) -> Path:
    """Fetch every file of one dataset split; returns the folder holding them.

    ``spec`` (default: the registry's entry for ``name``) may be your own dataset (``custom.py``);
    its folder's files are copied and a manifest of their SHA-256 is written beside them.
    """
    spec = spec or get_dataset(name)
    variant = variant or spec.default_variant
    out = dataset_dir(root, spec.name, variant)
    mirror_path = resolve_mirror(mirror)
    missing = []
    for fspec in spec.files(variant).values():
        try:
            fetch_file(fspec, out / fspec.filename, mirror_path, downloader)
        except MissingFileError as err:
            missing.append(str(err))
    if missing:
        raise MissingFileError(f"dataset '{name}' ({variant}) is incomplete: " + "; ".join(missing))
    if spec.custom:
        write_manifest(Path(root), spec, variant)
    return out
