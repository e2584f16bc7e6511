"""Scale: exact triangle counts in memory linear in the edges, synthetic graphs of a given shape, and the whole
chain (every stage, every sampler) on a graph of YAGO3-10's shape at 1/25 of its size."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dans_kgc.cli import main
from dans_kgc.dam import simple_undirected_adjacency, structural_features, triangle_counts
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.datasets.registry import get_dataset
from dans_kgc.datasets.synthetic import SyntheticShape, generate


def brute_force_triangles(n: int, edges: set[tuple[int, int]]) -> np.ndarray:
    """Every node triple checked: the definition, independent of any matrix algebra."""
    adj = {(u, v) for u, v in edges} | {(v, u) for u, v in edges}
    out = np.zeros(n)
    for a, b, c in itertools.combinations(range(n), 3):
        if (a, b) in adj and (b, c) in adj and (a, c) in adj:
            out[[a, b, c]] += 1
    return out


@pytest.mark.parametrize("seed", range(12))
def test_triangle_counts_equal_the_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 25))
    m = int(rng.integers(0, 120))
    triples = np.stack([rng.integers(0, n, m), rng.integers(0, 3, m), rng.integers(0, n, m)], 1).reshape(-1, 3)
    a = simple_undirected_adjacency(triples, n)
    edges = {(min(h, t), max(h, t)) for h, _, t in triples.tolist() if h != t}
    # tiny blocks too: the blockwise loop must neither skip nor repeat a candidate at a block edge
    for max_pairs in (1, 3, 1 << 24):
        assert np.array_equal(triangle_counts(a, max_pairs=max_pairs), brute_force_triangles(n, edges))


def hub_with_ring(hub_degree: int) -> tuple[np.ndarray, int]:
    """Node 0 linked to nodes 1..H, and a path 1-2-...-H among them: triangles {0, i, i+1} only."""
    spokes = [(0, 0, i) for i in range(1, hub_degree + 1)]
    ring = [(i, 1, i + 1) for i in range(1, hub_degree)]
    return np.array(spokes + ring, dtype=np.int64), hub_degree + 1


def test_triangle_counts_through_a_hub_in_memory_linear_in_the_edges():
    """The 2-hop pairs through a hub of degree H number H^2 (36M for H = 6000, about 400 MB as a sparse
    product); counting must stay near the size of the edge list."""
    hub = 6000
    triples, n = hub_with_ring(hub)
    a = simple_undirected_adjacency(triples, n)
    tracemalloc.start()
    try:
        got = triangle_counts(a)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = np.full(n, 2.0)  # closed form: an inner path node closes two triangles with the hub
    expected[0] = hub - 1  # the hub: one per path edge
    expected[[1, hub]] = 1.0  # the path's ends: one each
    assert np.array_equal(got, expected)
    assert peak < 32 * 2**20, f"peak traced memory {peak / 2**20:.0f} MiB for {a.nnz // 2} edges"


def test_clustering_feature_uses_the_exact_counts():
    triples, n = hub_with_ring(50)
    kg = KnowledgeGraph("hub", "kge", [f"e{i}" for i in range(n)], ["spoke", "ring"], triples, triples[:0], triples[:0])
    clustering = structural_features(kg)["clustering"].to_numpy()
    assert clustering[0] == pytest.approx(49 / (50 * 49 / 2))  # 49 triangles among C(50, 2) neighbour pairs
    assert clustering[2] == pytest.approx(2 / 3)  # degree 3 (hub, 1, 3), two triangles
    assert clustering[1] == pytest.approx(1.0)  # degree 2 (hub, 2), one triangle


SMALL = {
    "entities": 600,
    "relations": 9,
    "train": 6000,
    "valid": 150,
    "test": 150,
    "hubs": {"hasGender": {"triples": 400, "tails": 2}},
    "seed": 3,
}


def test_synthetic_graph_has_its_shape():
    shape = SyntheticShape.from_mapping(SMALL, "test")
    entities, relations, splits = generate(shape)
    assert len(entities) == 600 and len(relations) == 9 and relations[0] == "hasGender"
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [6000, 150, 150]
    keys = {s: set(map(tuple, splits[s].tolist())) for s in splits}
    assert sum(len(k) for k in keys.values()) == 6300  # no repeated triple anywhere
    train = splits["train"]
    assert set(train[:, 0]) | set(train[:, 2]) == set(range(600))  # every entity trained on
    assert set(train[:, 1]) == set(range(9))  # every relation too
    held = np.concatenate([splits["valid"], splits["test"]])
    assert np.isin(held[:, [0, 2]], np.unique(train[:, [0, 2]])).all()
    everything = np.concatenate(list(splits.values()))
    gender = everything[everything[:, 1] == 0]
    assert len(gender) == 400 and len(np.unique(gender[:, 0])) == 400 and len(np.unique(gender[:, 2])) == 2
    assert (everything[:, 0] != everything[:, 2]).all()  # no self-loops
    degree = np.bincount(everything[:, [0, 2]].ravel(), minlength=600)
    assert degree.max() > 20 * np.median(degree)  # heavy-tailed


def test_synthetic_graph_is_seeded():
    shape = SyntheticShape.from_mapping(SMALL, "test")
    again = generate(shape)[2]
    other = generate(SyntheticShape.from_mapping({**SMALL, "seed": 4}, "test"))[2]
    first = generate(shape)[2]
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first["train"], other["train"])


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"entities": 0}, "test.entities"),
        ({"surprise": 1}, "surprise"),
        ({"hubs": {"g": {"triples": 10}}}, "test.hubs.g"),
        ({"train": 10}, "test.train"),
    ],
)
def test_synthetic_shape_errors_name_the_key(bad, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        SyntheticShape.from_mapping({**SMALL, **bad}, "test")


def test_synthetic_dataset_by_name_is_generated_once_and_verified(in_tmp, capsys):
    assert main(["data", "fetch", "yago3-10-mini"]) == 0
    train = in_tmp / "data" / "yago3-10-mini" / "kge" / "train.txt"
    original = train.read_bytes()
    assert main(["data", "stats", "yago3-10-mini", "--out", "stats"]) == 0
    row = (in_tmp / "stats.csv").read_text().splitlines()[1].split(",")
    shape = get_dataset("yago3-10-mini").synthetic
    assert [int(x) for x in row[2:7]] == [shape.entities, shape.relations, shape.train, shape.valid, shape.test]
    train.write_bytes(original[:-100])  # damaged after generation: generated again, never read as is
    assert main(["data", "fetch", "yago3-10-mini"]) == 0
    assert train.read_bytes() == original


TINY = [
    "--set",
    "model.dim=16",
    "--set",
    "pretrain.dim=16",
    "--set",
    "pretrain.epochs=1",
    "--set",
    "train.epochs=1",
    "--set",
    "train.eval_every=1",
    "--set",
    "train.checkpoint_every=1",
    "--set",
    "dam.epochs=5",
    "--set",
    "dam.hidden=[8]",
    "--set",
    "dam.kmeans_n_init=1",
    "--set",
    "dam.max_target_triples=500",
    "--set",
    "diffusion.steps=8",
    "--set",
    "diffusion.hidden=[16]",
    "--set",
    "diffusion.time_dim=8",
    "--set",
    "diffusion.type_dim=4",
    "--set",
    "diffusion.warmstart_epochs=1",
    "--set",
    "samplers.dhns.T=8",
    "--set",
    "samplers.dhns.steps=[0,1,2,4]",
    "--set",
    "samplers.dhns.weights=[0.0,0.5,1.0,0.5]",
    "--set",
    "samplers.dhns.margin_scales=[0.1,0.3,0.5,0.7]",
    "--set",
    "samplers.nscaching.cache_size=8",
    "--set",
    "samplers.nscaching.candidates=8",
    "--set",
    "train.batch_size=2048",
    "--set",
    "pretrain.batch_size=2048",
    "--set",
    "diagnostics.triples=64",
    "--set",
    "threads=1",
]


@pytest.mark.slow
def test_every_stage_and_sampler_runs_on_a_yago_shaped_graph(in_tmp):
    """The DAG's chain on yago3-10-mini (YAGO3-10's shape at 1/25: a 2.4k-edge hasGender hub), one epoch each."""
    ds = ["--dataset", "yago3-10-mini"]
    assert main(["pretrain", *ds, "--out", "pre", *TINY]) == 0
    assert main(["dam", "fit", *ds, "--pretrained", "pre", "--out", "dam", *TINY]) == 0
    assert main(["diffusion", "fit", *ds, "--pretrained", "pre", "--dam", "dam", "--out", "diff", *TINY]) == 0
    assert main(["diffusion", "fit", "--kind", "dhns", *ds, "--pretrained", "pre", "--out", "dhns", *TINY]) == 0
    stages = {"dans": ["--dam", "dam", "--diffusion", "diff"], "dhns": ["--diffusion", "dhns"]}
    for sampler in ("uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans"):
        out = f"runs/main/{sampler}/seed0"
        assert (
            main(
                [
                    "train",
                    *ds,
                    "--out",
                    out,
                    "--pretrained",
                    "pre",
                    *stages.get(sampler, []),
                    "--set",
                    f"train.sampler={sampler}",
                    "--tag",
                    "experiment=main",
                    "--tag",
                    f"variant={sampler}",
                    *TINY,
                ]
            )
            == 0
        )
        assert main(["evaluate", "--run", out]) == 0
        metrics = json.loads(Path(out, "metrics_test.json").read_text())
        assert metrics["num_ranked"] == 2 * 500 and 0 < metrics["mrr"] <= 1
    assert main(["diagnose", "--run", "runs/main/dans/seed0", "--out", "diag", "--triples", "64"]) == 0
    assert main(["report", "main", "--runs", "runs", "--out", "tables/main"]) == 0
    table = Path("tables/main.csv").read_text()
    assert all(s in table for s in ("uniform", "nscaching", "dans"))
