"""Shared fixtures: a tiny hand-made KG and the offline dataset mirror."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from dans_kgc.datasets.loading import KnowledgeGraph

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DANS_KGC_DATA_MIRROR", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "redgnn" / "umls" / "train.txt").exists():
        pytest.fail(f"dataset mirror not found at {MIRROR}; set DANS_KGC_DATA_MIRROR")
    return MIRROR


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch, mirror) -> Path:
    """A temporary working directory with the offline mirror as the data source (CLI tests)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DANS_KGC_DATA_MIRROR", str(mirror))
    return tmp_path


@pytest.fixture()
def toy_kg() -> KnowledgeGraph:
    """6 entities, 2 relations; small enough to compute ranks by hand."""
    train = [("a", "r", "b"), ("b", "r", "c"), ("c", "r", "d"), ("a", "s", "c"), ("d", "s", "e"), ("e", "r", "f")]
    valid = [("a", "r", "c")]
    test = [("b", "r", "d"), ("a", "s", "e")]
    return KnowledgeGraph.from_labeled("toy", "kge", {"train": train, "valid": valid, "test": test})


@pytest.fixture(scope="session")
def umls_root(tmp_path_factory, mirror) -> Path:
    from dans_kgc.datasets import fetch_dataset

    root = tmp_path_factory.mktemp("data")
    fetch_dataset("umls", root, mirror=mirror)
    return root


@pytest.fixture(scope="module")
def umls(umls_root) -> KnowledgeGraph:
    from dans_kgc.datasets import load_dataset

    return load_dataset(umls_root, "umls")


def random_dam(kg: KnowledgeGraph) -> dict:
    """Seeded stand-in for a DAM output: zeta in (0, 1) and one of 5 K-means types per entity."""
    rng = np.random.default_rng(0)
    return {"zeta": rng.random(kg.num_entities), "clusters": rng.integers(0, 5, kg.num_entities)}


def tiny_config(**overrides) -> dict:
    from dans_kgc.config import load_config

    sets = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(
        [],
        [
            "train.epochs=2",
            "train.eval_every=1",
            "train.checkpoint_every=1",
            "model.dim=16",
            "pretrain.epochs=2",
            "pretrain.dim=16",
            "threads=1",
            *sets,
        ],
    )


def rng_triples(n_ent: int, n_rel: int, n: int, seed: int = 0) -> np.ndarray:
    r = np.random.default_rng(seed)
    return np.stack([r.integers(n_ent, size=n), r.integers(n_rel, size=n), r.integers(n_ent, size=n)], 1)


def linear_alpha_bars(
    zeta: float, steps: int, beta_low: float = 1e-4, beta_global: float = 0.02, mu: float = 1.0
) -> list[float]:
    """METHOD.md's difficulty-adaptive linear schedule by hand: alpha-bar_s for s = 0..T (alpha-bar_0 = 1)."""
    beta_max = min(max(beta_global * (1.0 + mu * (zeta - 0.5)), beta_low), 0.999)
    out = [1.0]
    for s in range(1, steps + 1):
        frac = (s - 1) / (steps - 1) if steps > 1 else 0.0
        out.append(out[-1] * (1.0 - (beta_low + frac * (beta_max - beta_low))))
    return out


def dtm_weights_by_hand(tau: float, zetas, dtm: dict) -> list[list[float]]:
    """METHOD.md's DTM band weights by hand, one row per zeta: softmax_k(-(h_k - c)^2 / sigma^2) with
    h_k = (k-1)/(K-1) and c = sigmoid(lambda (tau - 0.5 - alpha (zeta - 0.5))); K = len(dtm margin_scales)."""
    k_bands = len(dtm["margin_scales"])
    rows = []
    for zeta in zetas:
        c = 1.0 / (1.0 + math.exp(-float(dtm["lambda"]) * (tau - 0.5 - float(dtm["alpha"]) * (float(zeta) - 0.5))))
        logits = [-((k / (k_bands - 1) - c) ** 2) / float(dtm["sigma"]) ** 2 for k in range(k_bands)]
        rows.append([math.exp(x) / sum(math.exp(y) for y in logits) for x in logits])
    return rows


def spy_chain(sampler) -> dict:
    """Record what the reverse chain of ``sampler`` is asked for and the states it returns (the negatives)."""
    seen: dict = {}
    sample = sampler.ans.sample

    def spy(target, query, generator, keep, sampling_steps=0, head_side=None, *rest, **kw):
        out = sample(target, query, generator, keep, sampling_steps, head_side, *rest, **kw)
        seen.update(target=target.clone(), query=query.clone(), head_side=head_side.clone(), neg=out.clone())
        return out

    sampler.ans.sample = spy
    return seen
