"""Filtered ranking: hand-computed ranks with ties, tie policies, chunking, the filter index, and PyKEEN agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.evaluation import FilterIndex, evaluate, filter_splits, rank_triples, ranks_from_scores, summarize
from dans_kgc.models import build_model


class TableModel(nn.Module):
    """Returns fixed score rows: tails[(h, r)] and heads[(r, t)] (6 entities)."""

    def __init__(self, tails: dict, heads: dict):
        super().__init__()
        self.tails, self.heads = tails, heads

    def score_all_tails(self, h_idx, r_idx):
        return torch.tensor(
            [self.tails[(int(h), int(r))] for h, r in zip(h_idx, r_idx, strict=True)], dtype=torch.float32
        )

    def score_all_heads(self, r_idx, t_idx):
        return torch.tensor(
            [self.heads[(int(r), int(t))] for r, t in zip(r_idx, t_idx, strict=True)], dtype=torch.float32
        )


# Toy KG (conftest.toy_kg): entities a..f = 0..5, relations r = 0, s = 1.
# train: (a r b) (b r c) (c r d) (a s c) (d s e) (e r f); valid: (a r c); test: (b r d) (a s e)
A, B, C, D, E, F = range(6)
R, S = 0, 1
SCORES_TAIL = {
    # (b, r, ?) target d = 0.7; other true tail c (train) is filtered.
    # competitors a 0.9 (>), b 0.5, e 0.7 (tie), f 0.1 -> optimistic 2, pessimistic 3
    # unfiltered: c 0.7 is one more tie -> optimistic 2, pessimistic 4
    (B, R): [0.9, 0.5, 0.7, 0.7, 0.7, 0.1],
    # (a, s, ?) target e = 0.5; other true tail c (1.0) is filtered.
    # competitors a 0, b 0, d 0.3, f 0.5 (tie) -> optimistic 1, pessimistic 2
    # unfiltered: c 1.0 is higher -> optimistic 2, pessimistic 3
    (A, S): [0.0, 0.0, 1.0, 0.3, 0.5, 0.5],
}
SCORES_HEAD = {
    # (?, r, d) target b = 0.6; other true head c (0.8) is filtered.
    # competitors a 0.2, d 0.6 (tie), e 0.9 (>), f 0.6 (tie) -> optimistic 2, pessimistic 4
    # unfiltered: c 0.8 is higher -> optimistic 3, pessimistic 5
    (R, D): [0.2, 0.6, 0.8, 0.6, 0.9, 0.6],
    # (?, s, e) target a = 0.4; other true head d (0.9) is filtered.
    # competitors b, c, e, f all 0.4 (ties) -> optimistic 1, pessimistic 5
    # unfiltered: d 0.9 is higher -> optimistic 2, pessimistic 6
    (S, E): [0.4, 0.4, 0.4, 0.9, 0.4, 0.4],
}


def test_toy_ids_are_as_assumed(toy_kg):
    assert toy_kg.entities == list("abcdef") and toy_kg.relations == ["r", "s"]
    assert toy_kg.test.tolist() == [[B, R, D], [A, S, E]]


def test_hand_computed_filtered_ranks_with_ties(toy_kg):
    model = TableModel(SCORES_TAIL, SCORES_HEAD)
    fi = FilterIndex(toy_kg.all_true(filter_splits("kge", "test")), 6, 2)
    res = rank_triples(model, toy_kg.test, fi, batch_size=2)
    assert res.optimistic["tail"].tolist() == [2, 1]
    assert res.pessimistic["tail"].tolist() == [3, 2]
    assert res.optimistic["head"].tolist() == [2, 1]
    assert res.pessimistic["head"].tolist() == [4, 5]
    assert res.realistic("tail").tolist() == [2.5, 1.5]
    assert res.realistic("head").tolist() == [3.0, 3.0]
    m = summarize(res)
    # realistic ranks 2.5, 1.5, 3, 3
    assert m["mrr"] == pytest.approx((1 / 2.5 + 1 / 1.5 + 1 / 3 + 1 / 3) / 4)  # 0.433333
    assert m["mrr"] == pytest.approx(0.4333333333)
    assert m["hits@1"] == 0.0 and m["hits@3"] == 1.0 and m["hits@10"] == 1.0
    assert m["mean_rank"] == pytest.approx(2.5)
    assert m["per_side"]["tail"]["mrr"] == pytest.approx((0.4 + 2 / 3) / 2)
    assert m["per_side"]["head"]["mrr"] == pytest.approx(1 / 3)
    assert m["optimistic"]["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 2 + 1) / 4)  # 0.75
    assert m["optimistic"]["hits@1"] == 0.5
    assert m["pessimistic"]["mrr"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 4 + 1 / 5) / 4)  # 0.3208333
    assert m["num_ranked"] == 4


def test_hand_computed_unfiltered_ranks(toy_kg):
    res = rank_triples(TableModel(SCORES_TAIL, SCORES_HEAD), toy_kg.test, None, batch_size=1)
    assert res.optimistic["tail"].tolist() == [2, 2] and res.pessimistic["tail"].tolist() == [4, 3]
    assert res.optimistic["head"].tolist() == [3, 2] and res.pessimistic["head"].tolist() == [5, 6]


def test_evaluate_uses_the_protocol_filter(toy_kg):
    """evaluate() builds the filter from filter_splits: kge validation excludes test triples, test uses all."""
    assert filter_splits("kge", "valid") == ("train", "valid")
    assert filter_splits("kge", "test") == ("train", "valid", "test")
    assert filter_splits("redgnn", "valid") == ("train", "valid", "test")
    kg = KnowledgeGraph(
        "t", "kge", list("abcdef"), ["r", "s"], toy_kg.train, valid=np.array([[B, R, D]]), test=np.array([[B, R, E]])
    )
    tails = {(B, R): [0.0, 0.0, 0.0, 0.5, 0.9, 0.0]}  # target d = 0.5; e (a test answer) scores higher
    heads = {(R, D): [0.0, 1.0, 0.0, 0.0, 0.0, 0.0], (R, E): [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]}
    model = TableModel({**tails}, heads)
    m_kge, res = evaluate(model, kg, "valid", "kge", batch_size=4)
    assert res.optimistic["tail"].tolist() == [2]  # e not filtered under kge validation
    assert m_kge["filtered_with"] == ["train", "valid"]
    _, res = evaluate(model, kg, "valid", "redgnn", batch_size=4)
    assert res.optimistic["tail"].tolist() == [1]  # redgnn filters test triples too


def test_constant_scores_get_the_middle_rank_never_rank_one():
    rng = np.random.default_rng(0)
    ne, nr = 40, 3
    true = np.unique(
        np.stack([rng.integers(ne, size=300), rng.integers(nr, size=300), rng.integers(ne, size=300)], 1), axis=0
    )
    test = true[rng.choice(len(true), 50, replace=False)]
    model = build_model({"name": "distmult", "dim": 4}, ne, nr)
    with torch.no_grad():
        model.entity.weight.zero_()  # every score is 0
    fi = FilterIndex(true, ne, nr)
    res = rank_triples(model, test, fi, batch_size=16)
    known = {tuple(x) for x in true.tolist()}
    exp_r, exp_p = [], []
    for side in ("tail", "head"):
        for h, r, t in test.tolist():
            if side == "tail":
                c = sum((h, r, e) not in known for e in range(ne))  # unfiltered competitors
            else:
                c = sum((e, r, t) not in known for e in range(ne))
            exp_r.append(1 + c / 2)  # = (n + 1) / 2 for n = c + 1 candidates
            exp_p.append(1 + c)
    m = summarize(res)
    assert m["mrr"] == pytest.approx(np.mean(1 / np.array(exp_r)))
    assert m["pessimistic"]["mrr"] == pytest.approx(np.mean(1 / np.array(exp_p)))
    assert m["optimistic"]["mrr"] == 1.0  # optimistic ties would call this model perfect
    # A random ranking of n candidates has E[1/rank] = H_n / n ~ 0.1 here; the middle rank is of that order.
    n = np.array(exp_p)
    random_mrr = np.mean([np.sum(1 / np.arange(1, k + 1)) / k for k in n])
    assert m["mrr"] < 0.1 and m["mrr"] < random_mrr < 3 * m["mrr"]
    assert m["hits@1"] == 0.0


def test_nan_target_score_is_ranked_last():
    scores = torch.tensor([[0.1, float("nan"), 0.3, 0.2], [0.5, 0.4, 0.3, 0.2]])
    opt, pes = ranks_from_scores(scores, torch.tensor([1, 0]), None)
    assert opt.tolist() == [4, 1] and pes.tolist() == [4, 1]


@pytest.mark.parametrize("key", ["transe", "rotate", "complex"])
def test_chunking_does_not_change_ranks(key):
    rng = np.random.default_rng(1)
    ne, nr = 23, 4
    true = np.stack([rng.integers(ne, size=120), rng.integers(nr, size=120), rng.integers(ne, size=120)], 1)
    test = true[:45]
    torch.manual_seed(0)
    model = build_model({"name": key, "dim": 8}, ne, nr)
    if key == "transe":  # dyadic weights: exact scores and many ties
        with torch.no_grad():
            model.entity.weight.copy_(torch.randint(-2, 3, model.entity.weight.shape) / 4)
            model.relation.weight.copy_(torch.randint(-2, 3, model.relation.weight.shape) / 4)
    fi = FilterIndex(true, ne, nr)
    runs = [rank_triples(model, test, fi, batch_size=bs) for bs in (1, 7, len(test), 1000)]
    for r in runs[1:]:
        for side in ("tail", "head"):
            np.testing.assert_array_equal(r.optimistic[side], runs[0].optimistic[side])
            np.testing.assert_array_equal(r.pessimistic[side], runs[0].pessimistic[side])
    if key == "transe":
        assert (runs[0].pessimistic["tail"] > runs[0].optimistic["tail"]).any()  # ties really occurred


@st.composite
def small_kgs(draw):
    ne = draw(st.integers(1, 8))
    nr = draw(st.integers(1, 3))
    trip = st.tuples(st.integers(0, ne - 1), st.integers(0, nr - 1), st.integers(0, ne - 1))
    true = draw(st.lists(trip, max_size=30))
    queries = draw(st.lists(trip, min_size=0, max_size=12))
    return ne, nr, true, queries


@settings(max_examples=200, deadline=None)
@given(small_kgs())
def test_filter_index_masks_equal_brute_force_sets(kg):
    ne, nr, true, queries = kg
    fi = FilterIndex(np.array(true, dtype=np.int64).reshape(-1, 3), ne, nr)
    q = np.array(queries, dtype=np.int64).reshape(-1, 3)
    known = set(true)
    for side in ("tail", "head"):
        mask = fi.mask(q, side)
        assert mask.shape == (len(q), ne) and mask.dtype == torch.bool
        for i, (h, r, t) in enumerate(queries):
            if side == "tail":
                expected = {e for e in range(ne) if (h, r, e) in known}
            else:
                expected = {e for e in range(ne) if (e, r, t) in known}
            assert set(torch.nonzero(mask[i]).view(-1).tolist()) == expected


# --- agreement with PyKEEN (must run: pykeen is a test dependency) --------------------------------------
def _pykeen_metrics(model_ours, kg, batch_size):
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.models import TransE as PKTransE
    from pykeen.triples import CoreTriplesFactory

    tf = CoreTriplesFactory(
        mapped_triples=torch.as_tensor(kg.train), num_entities=kg.num_entities, num_relations=kg.num_relations
    )
    pk = PKTransE(triples_factory=tf, embedding_dim=model_ours.dim, scoring_fct_norm=1, random_seed=0)
    ent = model_ours.entity.weight.detach().clone()
    with torch.no_grad():
        pk.entity_representations[0]._embeddings.weight.copy_(ent)
        pk.relation_representations[0]._embeddings.weight.copy_(model_ours.relation.weight.detach())
    # same scores (so pykeen does not renormalise entities at scoring time) ...
    sample = torch.as_tensor(kg.test[:50])
    with torch.no_grad():
        torch.testing.assert_close(pk.score_hrt(sample).view(-1), model_ours.score_hrt(sample), rtol=1e-6, atol=1e-5)
    # ... and the same filter: the test triples themselves plus train and valid
    evaluator = RankBasedEvaluator(filtered=True, clear_on_finalize=False)
    res = evaluator.evaluate(
        pk,
        torch.as_tensor(kg.test),
        batch_size=batch_size,
        use_tqdm=False,
        additional_filter_triples=[torch.as_tensor(kg.train), torch.as_tensor(kg.valid)],
    )
    torch.testing.assert_close(pk.entity_representations[0]._embeddings.weight.detach(), ent, rtol=0, atol=0)
    # per-triple ranks, in test order (batches are processed in order)
    ranks = {
        (side, kind): np.concatenate(evaluator.ranks[side, kind]).astype(np.float64)
        for side in ("head", "tail")
        for kind in ("optimistic", "pessimistic", "realistic")
    }
    return res, ranks


@pytest.mark.parametrize("weights", ["dyadic", "gaussian"])
def test_filtered_realistic_ranks_equal_pykeen(umls_root, weights):
    from dans_kgc.datasets import load_dataset

    kg = load_dataset(umls_root, "umls")
    torch.manual_seed(0)
    model = build_model({"name": "transe", "dim": 16, "p_norm": 1}, kg.num_entities, kg.num_relations)
    with torch.no_grad():  # deliberately NOT unit-norm entities
        if weights == "dyadic":  # exact float32 scores: identical ties in both systems
            model.entity.weight.copy_(torch.randint(-3, 4, model.entity.weight.shape) / 4)
            model.relation.weight.copy_(torch.randint(-3, 4, model.relation.weight.shape) / 4)
        else:
            model.entity.weight.normal_(0, 3)
            model.relation.weight.normal_(0, 1)
    ours, res = evaluate(model, kg, "test", "redgnn", batch_size=100)
    assert ours["filtered_with"] == ["train", "valid", "test"]
    pk, pk_ranks = _pykeen_metrics(model, kg, batch_size=100)
    # the ranks themselves, triple by triple
    mismatches = 0
    for side in ("head", "tail"):
        for kind, ours_ranks in (
            ("optimistic", res.optimistic[side]),
            ("pessimistic", res.pessimistic[side]),
            ("realistic", res.realistic(side)),
        ):
            assert pk_ranks[side, kind].shape == ours_ranks.shape
            mismatches += int((pk_ranks[side, kind] != ours_ranks).sum())
    if weights == "dyadic":
        assert mismatches == 0
    else:  # float32 scores from different kernels (cdist vs broadcast norm): a near-tie may flip, rarely
        assert mismatches <= 3
    g = lambda side, kind, metric: float(pk.get_metric(f"{side}.{kind}.{metric}"))  # noqa: E731
    tol = 1e-6 if weights == "dyadic" else 1e-4  # pykeen aggregates in float32
    assert ours["mrr"] == pytest.approx(g("both", "realistic", "inverse_harmonic_mean_rank"), abs=tol)
    assert ours["mean_rank"] == pytest.approx(g("both", "realistic", "arithmetic_mean_rank"), abs=1e-3)
    for k in (1, 3, 10):
        assert ours[f"hits@{k}"] == pytest.approx(g("both", "realistic", f"hits_at_{k}"), abs=tol)
    for kind in ("optimistic", "pessimistic"):
        assert ours[kind]["mrr"] == pytest.approx(g("both", kind, "inverse_harmonic_mean_rank"), abs=tol)
    for side in ("head", "tail"):
        assert ours["per_side"][side]["mrr"] == pytest.approx(
            g(side, "realistic", "inverse_harmonic_mean_rank"), abs=tol
        )
    if weights == "dyadic":
        assert (res.pessimistic["tail"] > res.optimistic["tail"]).any()  # the comparison covered ties
        # the filter matters here: without it the numbers differ
        unfiltered = summarize(rank_triples(model, kg.test, None, 100))
        assert unfiltered["mrr"] < ours["mrr"] - 1e-3
