"""NSCaching sampler: cache layout and state round-trip, concentration on high scores, valid negatives, training."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.sampling import SAMPLERS, build_sampler
from dans_kgc.sampling.nscaching import NSCachingSampler
from dans_kgc.training import Trainer, build_run
from tests.conftest import rng_triples, tiny_config

torch.set_num_threads(1)


def _sampler(kg: KnowledgeGraph, seed: int = 0, **sets) -> NSCachingSampler:
    cfg = tiny_config(**{"train.sampler": "nscaching", "train.num_negatives": 5, **sets})
    return build_sampler("nscaching", kg, cfg, torch.Generator().manual_seed(seed))


def _random_kg(n_ent: int = 200, n_rel: int = 3, n: int = 400) -> KnowledgeGraph:
    names = [f"e{i}" for i in range(n_ent)]
    rels = [f"r{i}" for i in range(n_rel)]
    lab = [(names[h], rels[r], names[t]) for h, r, t in rng_triples(n_ent, n_rel, n)]
    return KnowledgeGraph.from_labeled("rand", "kge", {"train": lab, "valid": lab[:5], "test": lab[5:10]}, names, rels)


class FavourModel(nn.Module):
    """Scores a triple 10 per favoured entity in it: the favoured entities are the hard negatives."""

    def __init__(self, num_entities: int, favoured: np.ndarray):
        super().__init__()
        self.entity = nn.Embedding(num_entities, 1)
        bonus = torch.zeros(num_entities)
        bonus[torch.as_tensor(favoured)] = 10.0
        self.register_buffer("bonus", bonus)

    def score_hrt(self, triples: torch.Tensor) -> torch.Tensor:
        return self.bonus[triples[..., 0]] + self.bonus[triples[..., 2]]


def test_registered_with_cache_per_training_query(toy_kg):
    assert SAMPLERS["nscaching"] is NSCachingSampler
    s = _sampler(toy_kg, **{"samplers.nscaching.cache_size": 4})
    n_hr = len({(h, r) for h, r, _ in toy_kg.train.tolist()})
    n_rt = len({(r, t) for _, r, t in toy_kg.train.tolist()})
    assert tuple(s.tail_cache.shape) == (n_hr, 4)
    assert tuple(s.head_cache.shape) == (n_rt, 4)
    assert int(s.tail_cache.min()) >= 0 and int(s.tail_cache.max()) < toy_kg.num_entities


def test_state_dict_round_trip_restores_caches(toy_kg):
    a = _sampler(toy_kg, seed=1)
    model = FavourModel(toy_kg.num_entities, np.array([0, 1]))
    a.after_step(torch.from_numpy(toy_kg.train), model)
    b = _sampler(toy_kg, seed=2)
    assert not torch.equal(a.tail_cache, b.tail_cache)
    b.load_state_dict(a.state_dict())
    for side in ("tail", "head"):
        assert torch.equal(getattr(a, f"{side}_cache"), getattr(b, f"{side}_cache"))
        assert torch.equal(getattr(a, f"{side}_keys"), getattr(b, f"{side}_keys"))


def test_refresh_concentrates_caches_on_high_scores():
    kg = _random_kg()
    favoured = np.arange(10)
    s = _sampler(kg, **{"samplers.nscaching.cache_size": 8, "samplers.nscaching.candidates": 30})
    model = FavourModel(kg.num_entities, favoured)
    pos = torch.from_numpy(kg.train)
    in_fav = lambda side: float(torch.isin(getattr(s, f"{side}_cache"), torch.from_numpy(favoured)).float().mean())  # noqa: E731
    assert in_fav("tail") < 0.2 and in_fav("head") < 0.2  # random start: about 10 / 200
    for _ in range(25):
        s.after_step(pos, model)
    assert in_fav("tail") > 0.9 and in_fav("head") > 0.9
    # importance sampling without replacement keeps distinct entities while there are enough of them
    assert all(len(set(row)) == 8 for row in s.tail_cache.tolist())


def test_negatives_keep_relation_and_one_side_from_cache(toy_kg):
    s = _sampler(toy_kg, **{"samplers.nscaching.cache_size": 3})
    pos = torch.from_numpy(toy_kg.train)
    neg = s.corrupt(pos)
    assert neg.shape == (len(pos), 5, 3)
    assert torch.equal(neg[..., 1], pos[:, 1:2].expand(-1, 5))
    head_kept = neg[..., 0] == pos[:, 0:1]
    tail_kept = neg[..., 2] == pos[:, 2:3]
    assert bool((head_kept | tail_kept).all())
    tail_rows, head_rows = s.cache_rows(pos, "tail"), s.cache_rows(pos, "head")
    for i in range(len(pos)):
        for j in range(5):
            if not bool(tail_kept[i, j]):
                assert int(neg[i, j, 2]) in s.tail_cache[tail_rows[i]].tolist()
            if not bool(head_kept[i, j]):
                assert int(neg[i, j, 0]) in s.head_cache[head_rows[i]].tolist()


def test_trains_and_resumes_exactly(toy_kg, tmp_path):
    cfg = tiny_config(
        **{
            "train.sampler": "nscaching",
            "train.batch_size": 4,
            "samplers.nscaching.cache_size": 3,
            "samplers.nscaching.candidates": 2,
        }
    )

    def fit(out, epochs, resume=False):
        c = {**cfg, "train": {**cfg["train"], "epochs": epochs}}
        model, sampler = build_run(c, toy_kg)
        trainer = Trainer(c, toy_kg, model, sampler, out, torch.device("cpu"), "kge", show_progress=False)
        return trainer, trainer.fit(resume=resume)

    full, summary = fit(tmp_path / "full", 2)
    assert summary["epochs_run"] == 2 and np.isfinite(full.history[-1]["loss"])
    fit(tmp_path / "split", 1)
    resumed, _ = fit(tmp_path / "split", 2, resume=True)
    for key, value in full.sampler.state_dict().items():
        assert torch.equal(value, resumed.sampler.state_dict()[key]), key
    assert torch.equal(full.model.entity.weight, resumed.model.entity.weight)
