"""Keeping a preset's results: the small files of the DAG's output copied into one committed reference folder.

``dans-kgc results keep --preset P`` reads the DAG's layout

    results/P/D/EXPERIMENT/VARIANT/seedS/   run.json, trace.csv, metrics_test.json, metrics_valid.json, config.yaml
    results/P/D/pretrain/KEY/               the same files of a Stage-0 run
    results/P/D/dam/KEY/dam_report.json     results/P/D/diffusion/KEY/diffusion_report.json
    results/P/D/tune/VARIANT/               study.json, best.yaml
    results/P/D/diagnostics/...             *.json, *.md
    results/P/tables/*                      figures/P/*
    results/benchmarks/RULE/P/...tsv        Snakemake's wall seconds and peak RSS of each job

and writes ``reference/P/runs/D/...`` (the same relative paths), ``reference/P/tables/``, ``reference/P/figures/``,
``reference/P/benchmarks/RULE/...`` and ``reference/P/MANIFEST.json``: every kept file with its SHA-256, size,
source and the keeping that wrote it (date, git commit, package versions). Model weights (``*.pt``) and files over
a size limit are never copied.

It never deletes and never overwrites what it did not make: a file is replaced only when the manifest lists it as
kept from the same source file and it is unchanged since; any other file in the target is left alone and reported.
A kept file whose source is gone is reported as stale, not deleted. So keeping from several machines into one
folder adds their runs. Every copy goes to a temporary file first and is renamed into place, so an interrupted
keeping leaves no half-written file.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1
DEFAULT_MAX_BYTES = 1_000_000
RUN_FILES = ("run.json", "trace.csv", "metrics_test.json", "metrics_valid.json", "config.yaml")
# stage folders below results/P/D/: the files kept of each KEY folder (pretrain folders are run folders)
STAGE_FILES = {
    "pretrain": RUN_FILES,
    "dam": ("dam_report.json",),
    "diffusion": ("diffusion_report.json",),
    "tune": ("study.json", "best.yaml"),
}
DIAGNOSTIC_SUFFIXES = (".json", ".md")  # the PNG renders the JSON's numbers
NEVER_SUFFIXES = (".pt", ".part")  # weights and checkpoints; unfinished copies

# what a planned file becomes; the last three leave the target file as it is
WRITE_ACTIONS = ("new", "replace")
ACTIONS = ("new", "replace", "adopt", "unchanged", "foreign", "edited", "skipped")


@dataclass(frozen=True)
class Candidate:
    """One source file and where it is kept."""

    path: Path  # the file on disk
    root: str  # "results" or "figures"
    source: str  # path relative to that root, posix
    target: str  # path relative to the reference folder, posix
    size: int

    @property
    def key(self) -> str:
        return match_key(self.target)


@dataclass
class KeepOutcome:
    """What a keeping did (or, dry, would do), file by file."""

    folder: Path
    dry_run: bool
    max_bytes: int
    planned: dict[str, list[Candidate]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    stale: list[str] = field(default_factory=list)  # targets kept before whose source is gone
    unlisted: list[str] = field(default_factory=list)  # files in the folder no keeping made, no source collides
    manifest_written: bool = False

    def as_dict(self) -> dict[str, Any]:
        def rows(cands: list[Candidate]) -> list[dict[str, Any]]:
            return [{"target": c.target, "source": f"{c.root}:{c.source}", "size": c.size} for c in cands]

        return {
            "folder": str(self.folder),
            "dry_run": self.dry_run,
            "max_bytes": self.max_bytes,
            **{a: rows(c) for a, c in self.planned.items()},
            "stale": self.stale,
            "unlisted": self.unlisted,
            "manifest_written": self.manifest_written,
        }

    def summary(self) -> str:
        p = self.planned
        would = "would " if self.dry_run else ""
        head = (
            f"{self.folder}: {would}write {len(p['new'])} new, {would}replace {len(p['replace'])}, "
            f"{would}adopt {len(p['adopt'])} identical, {len(p['unchanged'])} unchanged"
        )
        lines = [head]
        if self.dry_run:  # what it would copy, file by file
            lines += [f"  {a}: {c.target}  <- {c.root}:{c.source}" for a in (*WRITE_ACTIONS, "adopt") for c in p[a]]
        sections = (
            (
                "foreign",
                "left alone, not in the manifest and different from the source (remove it to keep the source's)",
            ),
            ("edited", "left alone, changed since it was kept"),
            ("skipped", f"skipped, over {self.max_bytes} bytes"),
        )
        for action, what in sections:
            if p[action]:
                lines.append(f"  {what}: {len(p[action])}")
                lines += [f"    {c.target}  <- {c.root}:{c.source} ({c.size} bytes)" for c in p[action]]
        if self.stale:
            lines.append(f"  stale, kept before and absent from the source now (not deleted): {len(self.stale)}")
            lines += [f"    {t}" for t in self.stale]
        if self.unlisted:
            lines.append(f"  other files not made by keeping (left alone): {len(self.unlisted)}")
        return "\n".join(lines)


def parse_size(text: str) -> int:
    """Bytes from '1MB', '500kB', '2MiB', '1048576' (kB/MB/GB: powers of 1000; KiB/MiB/GiB: of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKMG]i?B|B)?\s*", text)
    if not m:
        raise ValueError(f"size {text!r}: expected a number of bytes, optionally with B, kB, MB, GB, KiB, MiB, GiB")
    unit = (m.group(2) or "B").replace("K", "k")
    factor = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    return int(float(m.group(1)) * factor)


def match_key(target: str) -> str:
    """What --only patterns match: the target below runs/ (DATASET/EXPERIMENT/...), or tables/..., figures/...,
    benchmarks/RULE/..."""
    return target.removeprefix("runs/")


def matches(key: str, patterns: Sequence[str]) -> bool:
    """True when no patterns are given or one matches the key's leading path components (shell wildcards)."""
    if not patterns:
        return True
    parts = key.split("/")
    for pattern in patterns:
        want = [w for w in pattern.strip("/").split("/") if w]
        prefix = parts[: len(want)]  # a pattern names the first folders of a path
        if len(want) <= len(parts) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(prefix, want, strict=True)):
            return True
    return False


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _HashingWriter:
    """A file wrapper that hashes and counts what goes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, block: bytes) -> int:
        self.hash.update(block)
        self.size += len(block)
        return self.out.write(block)


@contextmanager
def _replacing(dest: Path, mode: str) -> Iterator[IO[Any]]:
    """A temporary file in dest's folder, renamed onto dest when the block ends, removed when anything (an error, an
    interrupt) ends it early: dest never holds a half-written file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as out:
            yield out
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(src: Path, dest: Path) -> tuple[str, int]:
    """Copy src to dest through a temporary file renamed into place; returns the SHA-256 and size of the bytes
    written."""
    with _replacing(dest, "wb") as out, src.open("rb") as inp:
        writer = _HashingWriter(out)
        shutil.copyfileobj(inp, writer)
    return writer.hash.hexdigest(), writer.size


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as JSON with one line per kept file (a re-keeping's diff shows the files it replaced)."""
    files = manifest["files"]
    lines = [f"  {json.dumps(t)}: {json.dumps(files[t], sort_keys=True)}" for t in sorted(files)]
    rest = {k: v for k, v in manifest.items() if k != "files"}
    head = json.dumps(rest, indent=1, sort_keys=True)[:-2]  # without the closing brace
    return head + ',\n "files": {' + ("\n" + ",\n".join(lines) + "\n " if lines else "") + "}\n}\n"


def write_text_atomic(path: Path, text: str) -> None:
    with _replacing(path, "w") as out:
        out.write(text)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "keepings": [], "files": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); restore it from git before keeping again") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("files"), dict)
        or not isinstance(data.get("keepings"), list)
    ):
        raise ValueError(f"{path}: expected an object with 'files' (object) and 'keepings' (list)")
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r}, this dans-kgc reads format {MANIFEST_FORMAT}")
    return data


def _dataset_file_kept(parts: tuple[str, ...], folder: Path) -> bool:
    """Whether a file below results/P/D/ (parts: its path below D) is one a keeping copies."""
    name = parts[-1]
    if parts[0] == "diagnostics":
        return name.endswith(DIAGNOSTIC_SUFFIXES)
    if parts[0] in STAGE_FILES:
        return (
            len(parts) == 3
            and name in STAGE_FILES[parts[0]]
            and (name not in RUN_FILES or (folder / "run.json").is_file())
        )
    # EXPERIMENT/VARIANT/seedS/FILE of a finished or failed run (run.json written), never a run in progress
    return (
        len(parts) == 4
        and re.fullmatch(r"seed\d+", parts[2]) is not None
        and name in RUN_FILES
        and (folder / "run.json").is_file()
    )


def _files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(NEVER_SUFFIXES))


def candidates(preset: str, results_root: Path, figures_root: Path) -> list[Candidate]:
    """Every file a keeping of this preset copies, with its target path below the reference folder."""
    preset_root = results_root / preset
    if not preset_root.is_dir():
        raise FileNotFoundError(
            f"{preset_root}: no such folder (the DAG's results of preset {preset}; --from names the results root)"
        )
    out: list[Candidate] = []

    def add(path: Path, root: str, base: Path, target: str) -> None:
        out.append(Candidate(path, root, path.relative_to(base).as_posix(), target, path.stat().st_size))

    for sub in sorted(p for p in preset_root.iterdir() if p.is_dir()):
        if sub.name == "tables":
            for f in _files(sub):
                add(f, "results", results_root, f"tables/{f.relative_to(sub).as_posix()}")
            continue
        for f in _files(sub):
            parts = f.relative_to(sub).parts
            if parts[0] != "data" and _dataset_file_kept(parts, f.parent):
                add(f, "results", results_root, f"runs/{sub.name}/{'/'.join(parts)}")
    # Snakemake's record of each job (results/benchmarks/RULE/P/...tsv: wall seconds, peak RSS), so what a preset
    # cost stays readable once the run folders are gone
    benchmarks = results_root / "benchmarks"
    if benchmarks.is_dir():
        for rule in sorted(p for p in benchmarks.iterdir() if p.is_dir()):
            if (rule / f"{preset}.tsv").is_file():  # a job of the whole preset (dataset_stats, report_diagnostics)
                add(rule / f"{preset}.tsv", "results", results_root, f"benchmarks/{rule.name}.tsv")
            for f in _files(rule / preset):
                if f.suffix == ".tsv":
                    add(f, "results", results_root, f"benchmarks/{rule.name}/{f.relative_to(rule / preset).as_posix()}")
    figures = figures_root / preset
    if figures.is_dir():
        for f in _files(figures):
            add(f, "figures", figures_root, f"figures/{f.relative_to(figures).as_posix()}")
    return out


def _plan(
    cands: Sequence[Candidate], folder: Path, manifest: dict[str, Any], max_bytes: int, outcome: KeepOutcome
) -> None:
    files = manifest["files"]
    for c in cands:
        dest = folder / c.target
        entry = files.get(c.target)
        if c.size > max_bytes:
            action = "skipped"
        elif not dest.exists():
            action = "new"
        elif entry is None:  # not made by a keeping: identical bytes are recorded, anything else left alone
            action = "adopt" if sha256_of(dest) == sha256_of(c.path) else "foreign"
        elif (entry.get("root"), entry.get("source")) != (c.root, c.source):
            action = "foreign"  # kept from another source file: not this keeping's to replace
        else:
            on_disk = sha256_of(dest)
            if on_disk != entry.get("sha256"):
                action = "edited"
            else:
                action = "unchanged" if on_disk == sha256_of(c.path) else "replace"
        outcome.planned[action].append(c)


def _keeping_record(
    number: int,
    preset: str,
    results_root: Path,
    figures_root: Path,
    only: Sequence[str],
    skipped: Sequence[Candidate],
    max_bytes: int,
) -> dict[str, Any]:
    from dans_kgc.provenance import git_commit, package_versions

    return {
        "number": number,
        "preset": preset,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "results": results_root.as_posix(),
        "figures": figures_root.as_posix(),
        "only": list(only),
        "max_bytes": max_bytes,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "skipped": [{"source": f"{c.root}:{c.source}", "size": c.size} for c in skipped],
    }


def keep(
    preset: str,
    *,
    results_root: str | Path = "results",
    figures_root: str | Path = "figures",
    into: str | Path = "reference",
    name: str | None = None,
    only: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    dry_run: bool = False,
) -> KeepOutcome:
    """Keep the small files of preset's results in INTO/NAME (NAME defaults to the preset); see the module doc."""
    name = name or preset
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ValueError(f"reference folder name {name!r}: expected letters, digits, '_', '-', '.' (one folder)")
    if max_bytes <= 0:
        raise ValueError(f"size limit {max_bytes}: expected a positive number of bytes")
    results_root, figures_root = Path(results_root), Path(figures_root)
    folder = Path(into) / name
    manifest = read_manifest(folder)
    cands = [c for c in candidates(preset, results_root, figures_root) if matches(c.key, only)]
    outcome = KeepOutcome(folder=folder, dry_run=dry_run, max_bytes=max_bytes)
    _plan(cands, folder, manifest, max_bytes, outcome)

    present = {c.target for c in cands}
    outcome.stale = sorted(t for t in manifest["files"] if t not in present and matches(match_key(t), only))
    listed = set(manifest["files"]) | present
    if folder.is_dir():
        outcome.unlisted = sorted(
            rel
            for p in folder.rglob("*")
            if p.is_file() and (rel := p.relative_to(folder).as_posix()) != MANIFEST and rel not in listed
        )
    changes = [c for a in (*WRITE_ACTIONS, "adopt") for c in outcome.planned[a]]
    if dry_run or not changes:
        return outcome

    number = max((k.get("number", 0) for k in manifest["keepings"]), default=0) + 1
    files = manifest["files"]
    adopted = {c.target for c in outcome.planned["adopt"]}
    for c in changes:
        if c.target in adopted:
            digest, size = sha256_of(folder / c.target), c.size
        else:
            digest, size = copy_atomic(c.path, folder / c.target)
        files[c.target] = {"sha256": digest, "size": size, "root": c.root, "source": c.source, "keeping": number}
    used = {e.get("keeping") for e in files.values()}
    record = _keeping_record(number, preset, results_root, figures_root, only, outcome.planned["skipped"], max_bytes)
    manifest["keepings"] = [k for k in manifest["keepings"] if k.get("number") in used] + [record]
    write_text_atomic(folder / MANIFEST, manifest_text(manifest))
    outcome.manifest_written = True
    return outcome


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MANIFEST",
    "RUN_FILES",
    "Candidate",
    "KeepOutcome",
    "candidates",
    "copy_atomic",
    "keep",
    "matches",
    "parse_size",
    "read_manifest",
]
