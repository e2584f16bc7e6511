"""Reading triple files into an id-mapped knowledge graph, with clear errors for bad input."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dans_kgc.datasets.checksums import file_checksums
from dans_kgc.datasets.registry import DatasetSpec, get_dataset

SPLITS = ("train", "valid", "test")


class TripleFileError(ValueError):
    """A triple file is malformed; the message names the file and line."""


def read_triples(
    path: str | Path,
    entities: tuple[Path, Collection[str]] | None = None,
    relations: tuple[Path, Collection[str]] | None = None,
) -> list[tuple[str, str, str]]:
    """Read ``head<TAB>relation<TAB>tail`` lines. Blank lines are skipped; CRLF is accepted.

    ``entities`` / ``relations`` (a names file and its names): every name must be listed there,
    checked here so that the error names the triple file's line, not just the name.
    """
    path = Path(path)
    raw = path.read_bytes()
    triples = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TripleFileError(
                f"{path}:{lineno}: not valid UTF-8 (byte {err.start}: {line[err.start : err.start + 1]!r})"
            ) from err
        parts = text.split("\t")
        if len(parts) != 3:
            raise TripleFileError(
                f"{path}:{lineno}: expected 3 tab-separated columns (head, relation, tail), "
                f"found {len(parts)}: {text[:80]!r}"
            )
        if any(not p.strip() for p in parts):
            raise TripleFileError(f"{path}:{lineno}: empty field in {text[:80]!r}")
        for names, values, what in ((entities, (parts[0], parts[2]), "entity"), (relations, (parts[1],), "relation")):
            if names is not None:
                for v in values:
                    if v not in names[1]:
                        raise TripleFileError(f"{path}:{lineno}: {what} {v!r} is not listed in {names[0]}")
        triples.append((parts[0], parts[1], parts[2]))
    return triples


def read_names(path: str | Path) -> list[str]:
    """One name per line, or ``id<TAB>name`` (the .dict format)."""
    names = []
    for lineno, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TripleFileError(f"{path}:{lineno}: not valid UTF-8 (byte {err.start})") from None
        if not line.strip():
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) > 2:
            raise TripleFileError(f"{path}:{lineno}: expected a name or 'id<TAB>name', found {len(parts)} columns")
        names.append(parts[-1])
    return names


@dataclass
class KnowledgeGraph:
    """A dataset as integer ids. ``train`` is the training graph (facts + train for RED-GNN splits)."""

    name: str
    variant: str
    entities: list[str]
    relations: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise KeyError(f"unknown split '{name}'; expected one of {SPLITS}")
        return getattr(self, name)

    def all_true(self, splits: tuple[str, ...] = SPLITS) -> np.ndarray:
        return np.concatenate([self.split(s) for s in splits], axis=0)

    @classmethod
    def from_labeled(
        cls,
        name: str,
        variant: str,
        splits: dict[str, list[tuple[str, str, str]]],
        entities: list[str] | None = None,
        relations: list[str] | None = None,
        unseen_policy: str = "keep",
    ) -> KnowledgeGraph:
        """Map labelled triples to ids. ``splits`` holds train (and optionally facts), valid, test."""
        train_lab = splits.get("facts", []) + splits["train"]
        ordered = [train_lab, splits["valid"], splits["test"]]
        if entities is None:
            entities = sorted({x for part in ordered for h, _, t in part for x in (h, t)})
        if relations is None:
            relations = sorted({r for part in ordered for _, r, _ in part})
        e2id = {e: i for i, e in enumerate(entities)}
        r2id = {r: i for i, r in enumerate(relations)}
        report: dict[str, Any] = {"duplicates": {}, "unseen": {}, "dropped": {}, "unseen_policy": unseen_policy}

        def to_ids(part: list[tuple[str, str, str]], split: str) -> np.ndarray:
            try:
                arr = np.array([(e2id[h], r2id[r], e2id[t]) for h, r, t in part], dtype=np.int64).reshape(-1, 3)
            except KeyError as err:
                raise TripleFileError(f"{name}/{split}: name {err} is not in the entity/relation list") from err
            if len(arr) == 0:
                report["duplicates"][split] = 0
                return arr
            # Drop repeated triples but keep the file order of first occurrences.
            _, first = np.unique(arr, axis=0, return_index=True)
            report["duplicates"][split] = int(len(arr) - len(first))
            return arr[np.sort(first)]

        train = to_ids(train_lab, "train")
        seen_e = np.zeros(len(entities), dtype=bool)
        seen_e[train[:, 0]] = True
        seen_e[train[:, 2]] = True
        seen_r = np.zeros(len(relations), dtype=bool)
        seen_r[train[:, 1]] = True
        out = {}
        for split, part in (("valid", splits["valid"]), ("test", splits["test"])):
            arr = to_ids(part, split)
            unseen = ~(seen_e[arr[:, 0]] & seen_e[arr[:, 2]] & seen_r[arr[:, 1]])
            report["unseen"][split] = int(unseen.sum())
            if unseen_policy == "drop":
                arr = arr[~unseen]
                report["dropped"][split] = int(unseen.sum())
            else:
                report["dropped"][split] = 0
            out[split] = arr
        report["unseen_entities"] = int((~seen_e).sum())
        return cls(name, variant, list(entities), list(relations), train, out["valid"], out["test"], report)


def load_dataset(
    root: str | Path,
    name: str,
    variant: str | None = None,
    unseen_policy: str = "keep",
    spec: DatasetSpec | None = None,
) -> KnowledgeGraph:
    """Load a fetched dataset (see ``fetch_dataset``) from ``root/<name>/<variant>``.

    ``spec`` defaults to the registry's entry (your own dataset: ``custom.resolve_dataset``). The
    report records the SHA-256 of every file read (run.json and metrics carry it as provenance).
    """
    spec = spec or get_dataset(name)
    variant = variant or spec.default_variant
    folder = Path(root) / spec.name / variant
    files = spec.files(variant)
    missing = [f"{folder / f.filename}" for f in files.values() if not (folder / f.filename).exists()]
    if missing:
        raise FileNotFoundError(
            f"dataset '{name}' ({variant}) is not fetched or incomplete; missing: {', '.join(missing)}. "
            f"Run: dans-kgc data fetch {name}"
        )
    entities = read_names(folder / "entities.txt") if "entities" in files else None
    relations = read_names(folder / "relations.txt") if "relations" in files else None
    checks = {
        "entities": (folder / "entities.txt", set(entities)) if entities is not None else None,
        "relations": (folder / "relations.txt", set(relations)) if relations is not None else None,
    }
    splits: dict[str, list[tuple[str, str, str]]] = {}
    for k in ("facts", "train", "valid", "test"):
        if k not in files:
            continue
        path = folder / files[k].filename
        splits[k] = read_triples(path, **checks)
        if k != "facts" and not splits[k]:
            raise TripleFileError(
                f"{path}: no triples; the {k} split needs at least one head<TAB>relation<TAB>tail line"
            )
    kg = KnowledgeGraph.from_labeled(spec.name, variant, splits, entities, relations, unseen_policy)
    kg.report["sha256"] = file_checksums(folder, spec, variant)
    return kg
