"""Your own dataset: a folder named in the config (``datasets``), used wherever a registered name is.

``datasets: {mykg: {path: /data/mykg, protocol: kge}}`` (the same key as in the workflow's config.yaml) names a
folder holding ``train.txt``, ``valid.txt``, ``test.txt`` and optionally ``facts.txt``, ``entities.txt``,
``relations.txt``.
Fetching it copies those files into ``<data.root>/mykg/<protocol>/`` after taking their SHA-256,
and writes ``<data.root>/mykg/dataset.yaml`` (the manifest): later commands given ``--dataset mykg``
without the config entry (the DAG's jobs after the fetch) find the copy there and verify every file
against the manifest, so a file changed after the fetch is never read silently.

A synthetic registry entry (``synthetic.py``) is fetched the same way, its files generated in place first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dans_kgc.datasets.checksums import MANIFEST, git_blob_of, sha256_of
from dans_kgc.datasets.fetch import fetch_dataset
from dans_kgc.datasets.loading import load_dataset
from dans_kgc.datasets.registry import DATASETS, DatasetSpec, FileSpec, get_dataset
from dans_kgc.datasets.synthetic import GENERATION_RECORD, SPLIT_NAME, SyntheticShape, generate
from dans_kgc.utils import atomic_path, write_json

log = logging.getLogger(__name__)

FILES = ("entities", "relations", "facts", "train", "valid", "test")  # the loader's file keys
REQUIRED = ("train", "valid", "test")
PROTOCOLS = ("kge", "redgnn")
ENTRY_KEYS = {"path": "the dataset folder", "protocol": f"split protocol, one of {', '.join(PROTOCOLS)} (default kge)"}


def check_entry(name: str, entry: Any, where: str) -> None:
    """Stop with one line naming ``where`` (the config key) unless ``entry`` is {path, protocol?}."""
    if name.lower() in DATASETS:
        raise ValueError(f"{where}: '{name}' is a registered dataset; give your own dataset another name")
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping {{path: FOLDER, protocol: kge|redgnn}}, got {entry!r}")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected "
            + "; ".join(f"{k} ({v})" for k, v in ENTRY_KEYS.items())
        )
    if not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ValueError(f"{where}.path: expected the dataset folder (a string), got {entry.get('path')!r}")
    if entry.get("protocol", "kge") not in PROTOCOLS:
        raise ValueError(f"{where}.protocol: expected one of {', '.join(PROTOCOLS)}, got {entry.get('protocol')!r}")


def custom_dataset(name: str, entry: Mapping[str, Any], where: str) -> DatasetSpec:
    """The folder of ``entry`` as a dataset; each file's checksums are taken now, so a fetch copies exactly them."""
    check_entry(name, entry, where)
    folder = Path(entry["path"]).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{where}.path: {folder} is not a folder (expected train.txt, valid.txt, test.txt "
            "and optionally facts.txt, entities.txt, relations.txt)"
        )
    missing = [f"{k}.txt" for k in REQUIRED if not (folder / f"{k}.txt").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no {', '.join(missing)} (a dataset folder holds train.txt, valid.txt, "
            f"test.txt and optionally facts.txt, entities.txt, relations.txt; {where})"
        )
    files = {}
    for key in FILES:
        path = folder / f"{key}.txt"
        if path.is_file():
            data = path.read_bytes()
            files[key] = FileSpec(
                key=key,
                mirror_path=str(path),
                url=path.resolve().as_uri(),
                sha256=sha256_of(data),
                git_blob=git_blob_of(data),
                source=str(path.resolve()),
            )
    variant = entry.get("protocol", "kge")
    return DatasetSpec(name=name, paper=False, default_variant=variant, variants={variant: files}, custom=True)


def fetched_dataset(name: str, root: Path) -> DatasetSpec | None:
    """Your own dataset as fetched into ``root`` (its manifest), or None when there is none."""
    path = root / name / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = yaml.safe_load(path.read_text())
        variant, sums = manifest["protocol"], dict(manifest["sha256"])
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a dataset manifest ({err}); delete it and fetch the dataset again") from None
    folder = root / name / variant
    # the fetched copy is its own source: a file changed after the fetch fails its recorded SHA-256
    files = {
        Path(fn).stem: FileSpec(
            key=Path(fn).stem,
            mirror_path=str(folder / fn),
            url=(folder / fn).resolve().as_uri(),
            sha256=sha,
            git_blob="",
            source=str(folder / fn),
        )
        for fn, sha in sums.items()
    }
    return DatasetSpec(name=name, paper=False, default_variant=variant, variants={variant: files}, custom=True)


def _write_lines(path: Path, lines: list[str]) -> str:
    data = ("\n".join(lines) + "\n").encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return sha256_of(data)


def materialize_synthetic(name: str, shape: SyntheticShape, root: str | Path) -> dict[str, str]:
    """Generate ``name``'s files into ``<root>/<name>/kge/`` unless an intact copy of this shape is there.

    Returns the SHA-256 of each file (keyed by file key: entities, relations, train, valid, test). The
    generation record (shape + checksums) is written last, so an interrupted generation is redone.
    """
    folder = Path(root) / name / SPLIT_NAME
    record_path = folder / GENERATION_RECORD
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            sums = dict(record["sha256"])
            if record["shape"] == shape.as_record() and all(
                (folder / f"{k}.txt").is_file() and sha256_of((folder / f"{k}.txt").read_bytes()) == v
                for k, v in sums.items()
            ):
                return sums
        except (ValueError, KeyError, TypeError):
            pass  # unreadable record: generate again
    entities, relations, splits = generate(shape)
    sums = {
        "entities": _write_lines(folder / "entities.txt", entities),
        "relations": _write_lines(folder / "relations.txt", relations),
    }
    for split, triples in splits.items():
        sums[split] = _write_lines(
            folder / f"{split}.txt", [f"{entities[h]}\t{relations[r]}\t{entities[t]}" for h, r, t in triples.tolist()]
        )
    write_json(record_path, {"name": name, "shape": shape.as_record(), "sha256": sums})
    return sums


def synthetic_dataset(spec: DatasetSpec, root: Path) -> DatasetSpec:
    """A synthetic registry entry with its files generated under ``root`` (once; verified by checksum after)."""
    assert spec.synthetic is not None
    sums = materialize_synthetic(spec.name, spec.synthetic, root)
    folder = (root / spec.name / SPLIT_NAME).resolve()
    files = {
        key: FileSpec(
            key=key,
            mirror_path=str(folder / f"{key}.txt"),
            url=(folder / f"{key}.txt").as_uri(),
            sha256=sha,
            git_blob="",
            source=str(folder / f"{key}.txt"),
        )
        for key, sha in sums.items()
    }
    return DatasetSpec(
        name=spec.name,
        paper=False,
        default_variant=SPLIT_NAME,
        variants={SPLIT_NAME: files},
        custom=True,
        synthetic=spec.synthetic,
    )


def resolve_dataset(name: str, cfg: Mapping[str, Any]) -> DatasetSpec:
    """A dataset by name: the config's ``datasets`` first, then the registry, then a custom dataset fetched into
    ``data.root``."""
    custom, data_cfg = cfg.get("datasets") or {}, cfg["data"]
    if name in custom:
        folder = (
            Path(str((custom[name] or {}).get("path", ""))).expanduser() if isinstance(custom[name], Mapping) else None
        )
        fetched = fetched_dataset(name, Path(data_cfg["root"]))
        if folder is not None and not folder.is_dir() and fetched is not None:
            # a run's recorded entry whose source folder moved since: its verified copy is what the run used
            log.warning("datasets.%s.path: %s is gone; using the copy fetched into %s", name, folder, data_cfg["root"])
            return fetched
        return custom_dataset(name, custom[name], f"datasets.{name}")
    if name.lower() in DATASETS:
        spec = get_dataset(name)
        return synthetic_dataset(spec, Path(data_cfg["root"])) if spec.synthetic is not None else spec
    fetched = fetched_dataset(name, Path(data_cfg["root"]))
    if fetched is not None:
        return fetched
    raise KeyError(
        f"unknown dataset '{name}'; registered: {', '.join(DATASETS)}"
        + (f"; your own (datasets): {', '.join(custom)}" if custom else "")
        + f". Your own dataset: config key datasets.{name}: {{path: FOLDER, protocol: kge}}"
    )


def open_dataset(name: str, cfg: Mapping[str, Any]) -> Any:
    """The split of ``name`` the configured protocol uses, fetched (and verified) on demand -> KnowledgeGraph."""
    spec = resolve_dataset(name, cfg)
    variant = spec.variant_for(cfg["protocol"])
    fetch_dataset(name, cfg["data"]["root"], variant, cfg["data"]["mirror"], spec=spec)
    return load_dataset(cfg["data"]["root"], name, variant, cfg["data"]["unseen_policy"], spec=spec)
