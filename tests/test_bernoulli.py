"""Bernoulli negative sampling (Wang et al. 2014): p(corrupt head | r) = tph / (tph + hpt)."""

from __future__ import annotations

import pytest
import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.sampling.base import relation_head_probability


@pytest.fixture()
def one_to_n_kg() -> KnowledgeGraph:
    # r "has_child": 1-to-N (a -> b, c, d; e -> f): tph = 4 / 2 = 2, hpt = 4 / 4 = 1 -> p_head = 2/3
    # s "born_in": N-to-1 (b, c, d -> x): tph = 1, hpt = 3 -> p_head = 1/4
    # t "spouse": 1-to-1 (a -> e): p_head = 1/2
    train = [
        ("a", "has_child", "b"),
        ("a", "has_child", "c"),
        ("a", "has_child", "d"),
        ("e", "has_child", "f"),
        ("b", "born_in", "x"),
        ("c", "born_in", "x"),
        ("d", "born_in", "x"),
        ("a", "spouse", "e"),
    ]
    return KnowledgeGraph.from_labeled(
        "hand", "kge", {"train": train, "valid": [], "test": []}, relations=["has_child", "born_in", "spouse", "unused"]
    )


def test_head_probability_by_hand(one_to_n_kg):
    p = relation_head_probability(one_to_n_kg.train, one_to_n_kg.num_relations)
    # a 1-to-N relation: corrupting the tail would often hit another true child, so the head is corrupted more
    torch.testing.assert_close(p, torch.tensor([2 / 3, 1 / 4, 1 / 2, 1 / 2]))


def test_bernoulli_sampler_corrupts_heads_at_that_rate(one_to_n_kg):
    from dans_kgc.config import load_config
    from dans_kgc.sampling import build_sampler

    cfg = load_config([], ["train.num_negatives=2000"])
    sampler = build_sampler("bernoulli", one_to_n_kg, cfg, torch.Generator().manual_seed(0))
    pos = torch.as_tensor(one_to_n_kg.train[[0, 4]])  # one has_child, one born_in triple
    neg = sampler.corrupt(pos)
    # a negative kept its tail -> the head was corrupted (or redrawn as itself, 1/7 of the time, either side)
    kept_tail = (neg[..., 2] == pos[:, None, 2]).float().mean(1)
    kept_head = (neg[..., 0] == pos[:, None, 0]).float().mean(1)
    n = one_to_n_kg.num_entities
    for i, p_head in enumerate((2 / 3, 1 / 4)):
        assert kept_tail[i].item() == pytest.approx(p_head + (1 - p_head) / n, abs=0.03)
        assert kept_head[i].item() == pytest.approx((1 - p_head) + p_head / n, abs=0.03)
