"""RotatE's negative-sampling recipe: train.filter_negatives (random negatives that are training triples are
redrawn) and train.subsampling (frequency weights of the positives)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.losses import SubsamplingWeights, softplus
from dans_kgc.sampling import build_sampler
from dans_kgc.training import Trainer, build_run

CPU = torch.device("cpu")


@pytest.fixture()
def dense_kg() -> KnowledgeGraph:
    # a -> b, c, d, e under "likes": 4 of the 6 entities are true tails of (a, likes, ?), so a uniform tail
    # negative of (a, likes, b) is a training triple 2/3 of the time. x, y, z -> a under "knows".
    train = [("a", "likes", t) for t in "bcde"] + [(h, "knows", "a") for h in "xyz"]
    return KnowledgeGraph.from_labeled(
        "dense", "kge", {"train": train, "valid": [], "test": []}, entities=list("abcdefxyz")
    )


def _sampler(kg: KnowledgeGraph, name: str = "uniform", filtered: bool = True, n: int = 3000):
    # NSCaching: 3 cache slots, fewer than any query's non-answers here (a full cache of answers is unavoidable
    # when a query has fewer non-answers than slots)
    cfg = tiny_config(
        **{"train.num_negatives": n, "train.filter_negatives": filtered, "samplers.nscaching.cache_size": 3}
    )
    return build_sampler(name, kg, cfg, torch.Generator().manual_seed(0))


def _in_train(kg: KnowledgeGraph, neg: torch.Tensor) -> torch.Tensor:
    known = {tuple(t) for t in kg.train.tolist()}
    return torch.tensor([[tuple(x) in known for x in row] for row in neg.tolist()])


@pytest.mark.parametrize("name", ["uniform", "bernoulli", "self_adversarial"])
def test_no_filtered_negative_is_a_training_triple(dense_kg, name):
    pos = torch.as_tensor(dense_kg.train[[0, 4]])  # (a, likes, b), (x, knows, a)
    unfiltered = _sampler(dense_kg, name, filtered=False).corrupt(pos)
    assert _in_train(dense_kg, unfiltered).float().mean() > 0.1  # so the check below can fail here
    neg = _sampler(dense_kg, name).corrupt(pos)
    assert not _in_train(dense_kg, neg).any()
    # each negative still differs from its positive on one side only, with the relation kept
    assert (neg[..., 1] == pos[:, None, 1]).all()
    assert ((neg[..., 0] == pos[:, None, 0]) | (neg[..., 2] == pos[:, None, 2])).all()


def test_filtered_tails_are_uniform_over_the_non_answers(dense_kg):
    pos = torch.as_tensor(dense_kg.train[[0]])  # (a, likes, b): true tails b, c, d, e
    neg = _sampler(dense_kg, n=20000).corrupt(pos)[0]
    tails = neg[neg[:, 0] == 0, 2]  # head kept = tail corrupted (a head redrawn as a itself is in here too: 1/9)
    share = torch.bincount(tails, minlength=dense_kg.num_entities).float() / len(tails)
    ids = {e: i for i, e in enumerate(dense_kg.entities)}
    for answer in "bcde":
        assert share[ids[answer]] == 0
    # the 5 non-answers a, f, x, y, z share the tail draws evenly; b's own slot is not among them
    for other in "afxyz":
        assert share[ids[other]].item() == pytest.approx(1 / 5, abs=0.02)


def test_filtering_keeps_every_draw_that_was_not_a_training_triple(dense_kg):
    # the filter only redraws offending entries: the same generator gives the unfiltered draw everywhere else
    pos = torch.as_tensor(dense_kg.train)
    on, off = _sampler(dense_kg).corrupt(pos), _sampler(dense_kg, filtered=False).corrupt(pos)
    clean = ~_in_train(dense_kg, off)
    assert torch.equal(on[clean], off[clean])
    assert not torch.equal(on, off)


def test_nscaching_keeps_training_triples_out_of_its_caches(dense_kg):
    from dans_kgc.models import build_model

    pos = torch.as_tensor(dense_kg.train)
    torch.manual_seed(0)
    model = build_model(tiny_config(**{"model.dim": 8})["model"], dense_kg.num_entities, dense_kg.num_relations)

    known = {tuple(t) for t in dense_kg.train.tolist()}
    r_count = dense_kg.num_relations

    def cached_true(sampler) -> float:
        hits = []
        for side in ("tail", "head"):
            for key, row in zip(getattr(sampler, f"{side}_keys").tolist(), sampler.cache(side).tolist(), strict=True):
                anchor, rel = divmod(key, r_count)
                hits += [((anchor, rel, e) if side == "tail" else (e, rel, anchor)) in known for e in row]
        return sum(hits) / len(hits)

    for filtered, check in ((False, lambda shares: max(shares) > 0.1), (True, lambda shares: max(shares) == 0.0)):
        sampler = _sampler(dense_kg, "nscaching", filtered=filtered, n=8)
        shares = [cached_true(sampler)]
        for _ in range(3):  # refreshes choose by score among old cache + fresh random candidates
            sampler.after_step(pos, model)
            shares.append(cached_true(sampler))
        assert check(shares), (filtered, shares)
    assert not _in_train(dense_kg, sampler.corrupt(pos)).any()


def test_filter_is_refused_where_it_would_do_nothing(dense_kg, tmp_path):
    cfg = tiny_config(
        **{
            "model.dim": 8,
            "device": "cpu",
            "model.name": "distmult",
            "train.mode": "one_to_n",
            "train.filter_negatives": True,
        }
    )
    model, sampler = build_run(cfg, dense_kg, None)
    with pytest.raises(ValueError, match="one_to_n draws no random negatives"):
        Trainer(cfg, dense_kg, model, sampler, tmp_path, CPU, "kge", show_progress=False)


def test_subsampling_weights_reach_the_random_loss(dense_kg, tmp_path):
    # the Trainer's L_rand with subsampling = the weighted mean of the per-positive losses over the same negatives
    cfg = tiny_config(**{"model.dim": 8, "device": "cpu", "train.loss": "softplus", "train.subsampling": True})
    model, sampler = build_run(cfg, dense_kg, None)
    trainer = Trainer(cfg, dense_kg, model, sampler, tmp_path, CPU, "kge", show_progress=False)
    pos = torch.as_tensor(dense_kg.train)
    state = sampler.generator.get_state()
    got = trainer._random_loss(pos)[0]
    sampler.generator.set_state(state)
    pos_scores, neg_scores = model.score_positive_and_corrupted(pos, sampler.corrupt(pos))
    rows = torch.stack([softplus(pos_scores[i : i + 1], neg_scores[i : i + 1]) for i in range(len(pos))])
    w = SubsamplingWeights(pos, dense_kg.num_relations)(pos)
    assert w.unique().numel() > 1  # unequal query counts here, so the weighting can show
    torch.testing.assert_close(got, (w * rows).sum() / w.sum())
    assert not torch.allclose(got, rows.mean(), rtol=1e-5, atol=0)  # distinguishable from the plain mean
    cfg = tiny_config(
        **{
            "model.dim": 8,
            "device": "cpu",
            "model.name": "distmult",
            "train.mode": "one_to_n",
            "train.subsampling": True,
        }
    )
    model, sampler = build_run(cfg, dense_kg, None)
    with pytest.raises(ValueError, match="train.subsampling=false"):
        Trainer(cfg, dense_kg, model, sampler, tmp_path, CPU, "kge", show_progress=False)
