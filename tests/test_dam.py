"""DAM: structural features by hand, zeta recovering a degree-driven difficulty, and `dam fit` on UMLS."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from dans_kgc.cli import main
from dans_kgc.dam import (
    ENTITIES_CSV,
    REPORT_JSON,
    fit_dam,
    fit_dam_from_run,
    load_clusters,
    load_zeta,
    pagerank,
    save_dam,
    structural_features,
)
from dans_kgc.datasets.loading import KnowledgeGraph
from tests.conftest import tiny_config

torch.set_num_threads(1)


@pytest.fixture()
def hand_kg() -> KnowledgeGraph:
    """Triangle a-b-c (relations r, r, s), a pendant d, and e seen only in the test split."""
    train = [("a", "r", "b"), ("b", "r", "c"), ("c", "s", "a"), ("a", "s", "d")]
    return KnowledgeGraph.from_labeled("hand", "kge", {"train": train, "valid": [], "test": [("e", "r", "a")]})


def test_structural_features_by_hand(hand_kg):
    f = structural_features(hand_kg).set_index(pd.Index(hand_kg.entities))
    assert np.allclose(f["log_in_degree"], np.log1p([1, 1, 1, 1, 0]))
    assert np.allclose(f["log_out_degree"], np.log1p([2, 1, 1, 0, 0]))
    assert f["num_relations"].tolist() == [2, 1, 2, 1, 0]
    h_a = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))  # a: edges r, s, s
    assert np.allclose(f["relation_entropy"], [h_a, 0.0, math.log(2), 0.0, 0.0])
    assert np.allclose(f["clustering"], [1 / 3, 1.0, 1.0, 0.0, 0.0])  # b and c close one triangle
    assert np.allclose(f["mean_neighbour_degree"], [5 / 3, 2.5, 2.5, 3.0, 0.0])
    assert f["pagerank"].sum() == pytest.approx(1.0)
    assert (f["pagerank"] > 0).all()


def test_pagerank_matches_networkx(hand_kg):
    nx = pytest.importorskip("networkx")
    g = nx.DiGraph()
    g.add_nodes_from(range(hand_kg.num_entities))
    for h, _, t in hand_kg.train.tolist():
        g.add_edge(h, t, weight=g.get_edge_data(h, t, {"weight": 0})["weight"] + 1)
    ref = nx.pagerank(g, alpha=0.85, tol=1e-12)
    ours = pagerank(hand_kg.train, hand_kg.num_entities)
    assert np.allclose(ours, [ref[i] for i in range(hand_kg.num_entities)], atol=1e-8)


def _degree_kg(n: int = 400, seed: int = 0) -> tuple[KnowledgeGraph, np.ndarray]:
    """Entity i heads 1 + i // 10 triples to random tails; difficulty = exp(-degree / 15), hubs are easy."""
    rng = np.random.default_rng(seed)
    heads = np.repeat(np.arange(n), 1 + np.arange(n) // 10)
    triples = np.unique(
        np.stack([heads, rng.integers(3, size=len(heads)), rng.integers(n, size=len(heads))], 1), axis=0
    )
    kg = KnowledgeGraph(
        "degree", "kge", [f"e{i}" for i in range(n)], ["r0", "r1", "r2"], triples, triples[:0], triples[:0]
    )
    degree = np.bincount(triples[:, 0], minlength=n) + np.bincount(triples[:, 2], minlength=n)
    return kg, np.exp(-degree / 15.0)


def test_zeta_recovers_degree_order():
    kg, difficulty = _degree_kg()
    target = difficulty.copy()
    target[::10] = np.nan  # entities without an observed difficulty still get a zeta
    emb = np.random.default_rng(1).normal(size=(kg.num_entities, 8))
    cfg = tiny_config(**{"dam.num_clusters": 5, "dam.epochs": 400})
    result = fit_dam(kg, emb, cfg, target=target)
    report = result.report
    assert report["n_holdout"] == 36 and report["n_train"] == 324 and report["n_without_target"] == 40
    assert report["holdout_spearman"] > 0.8
    zeta = result.zeta
    assert np.all((zeta > 0) & (zeta < 1))
    untargeted = np.isnan(target)
    assert spearmanr(zeta[untargeted], difficulty[untargeted]).statistic > 0.8
    # deterministic for a seed
    again = fit_dam(kg, emb, cfg, target=target)
    assert np.array_equal(again.zeta, zeta) and np.array_equal(again.clusters, result.clusters)


def test_save_and_load_round_trip(tmp_path):
    kg, difficulty = _degree_kg(n=60)
    emb = np.random.default_rng(2).normal(size=(kg.num_entities, 4))
    result = fit_dam(kg, emb, tiny_config(**{"dam.num_clusters": 3, "dam.epochs": 20}), target=difficulty)
    save_dam(result, tmp_path)
    assert np.allclose(load_zeta(tmp_path, kg.num_entities), result.zeta)
    clusters = load_clusters(tmp_path)
    assert clusters.dtype == np.int64 and np.array_equal(clusters, result.clusters) and set(clusters) <= {0, 1, 2}
    with pytest.raises(ValueError, match="61"):
        load_zeta(tmp_path, 61)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_zeta(tmp_path / "nowhere")


def test_missing_pretrained_names_the_path(hand_kg, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "model_best.pt")):
        fit_dam_from_run(hand_kg, tmp_path, tiny_config())


def test_dam_fit_cli_on_umls(umls_root, mirror, tmp_path):
    common = [
        "--set",
        f"data.root={umls_root}",
        "--set",
        f"data.mirror={mirror}",
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
    ]
    pre, out = tmp_path / "pretrain", tmp_path / "dam"
    assert (
        main(
            [
                "pretrain",
                "--dataset",
                "umls",
                "--out",
                str(pre),
                "--quiet",
                "--set",
                "pretrain.epochs=2",
                "--set",
                "pretrain.dim=16",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "dam",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(pre),
                "--out",
                str(out),
                "--set",
                "dam.epochs=30",
                "--set",
                "dam.max_target_triples=1000",
                "--set",
                "pretrain.dim=16",
                *common,
            ]
        )
        == 0
    )
    table = pd.read_csv(out / ENTITIES_CSV)
    assert list(table.columns[:2]) == ["entity_id", "entity"]
    assert {"log_in_degree", "pagerank", "knn_cosine", "cluster", "observed_difficulty", "zeta"} <= set(table.columns)
    zeta = load_zeta(out, 135)
    assert np.all((zeta > 0) & (zeta < 1))
    assert set(load_clusters(out)) <= set(range(20))
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["target_triples_ranked"] == 1000 and report["num_clusters"] == 20
    assert report["n_train"] + report["n_holdout"] + report["n_without_target"] == 135
    assert -1.0 <= report["holdout_spearman"] <= 1.0
    assert report["provenance"]["pretrained"].endswith("model_best.pt")
    assert (
        main(["dam", "fit", "--dataset", "umls", "--pretrained", str(tmp_path / "none"), "--out", str(out), *common])
        == 2
    )
