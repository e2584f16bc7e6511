"""The dataset registry (``registry.yaml``): where each file comes from and its checksums."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from dans_kgc.datasets.synthetic import SPLIT_NAME, SyntheticShape


@dataclass(frozen=True)
class FileSpec:
    key: str  # entities | relations | facts | train | valid | test
    mirror_path: str  # path relative to a mirror folder (redgnn/<name>/..., kge/<NAME>/...)
    url: str  # canonical public URL (raw file, or an archive holding it)
    sha256: str | None  # None when the file could not be mirrored; git_blob then verifies it
    git_blob: str  # upstream git object id (full 40 hex, or a prefix)
    archive_member: str | None = None
    source: str | None = None  # a local file to copy (your own dataset) instead of the mirror or URL

    @property
    def filename(self) -> str:
        return f"{self.key}.txt"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    paper: bool
    default_variant: str
    variants: dict[str, dict[str, FileSpec]]
    custom: bool = False  # a user's folder (config datasets), not a registry entry
    synthetic: SyntheticShape | None = None  # generated to this shape on fetch (synthetic.py)
    size: tuple[int, int] | None = None  # (training-graph triples, entities) of the default split: cost estimates

    def files(self, variant: str | None = None) -> dict[str, FileSpec]:
        variant = variant or self.default_variant
        if variant not in self.variants:
            raise KeyError(f"dataset '{self.name}' has no '{variant}' split; available: {sorted(self.variants)}")
        return self.variants[variant]

    def variant_for(self, protocol: str | None) -> str:
        """The split a protocol uses: its own if the dataset has it, else the dataset default."""
        return protocol if protocol in self.variants else self.default_variant


def _load() -> dict[str, DatasetSpec]:
    raw = yaml.safe_load(resources.files("dans_kgc.datasets").joinpath("registry.yaml").read_text())
    out = {}
    for name, d in raw.items():
        if "synthetic" in d:  # files are generated, their checksums known only then
            shape = SyntheticShape.from_mapping(d["synthetic"], f"registry.yaml: {name}.synthetic")
            out[name] = DatasetSpec(
                name=name, paper=False, default_variant=SPLIT_NAME, variants={SPLIT_NAME: {}}, synthetic=shape
            )
            continue
        variants = {v: {k: FileSpec(key=k, **spec) for k, spec in files.items()} for v, files in d["variants"].items()}
        size = (int(d["size"]["triples"]), int(d["size"]["entities"])) if "size" in d else None
        out[name] = DatasetSpec(
            name=name, paper=d["paper"], default_variant=d["default_variant"], variants=variants, size=size
        )
    return out


DATASETS: dict[str, DatasetSpec] = _load()


def get_dataset(name: str) -> DatasetSpec:
    key = name.lower()
    if key not in DATASETS:
        raise KeyError(f"unknown dataset '{name}'; registered: {', '.join(DATASETS)}")
    return DATASETS[key]
