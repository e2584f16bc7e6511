"""NSCaching (Zhang et al., ICDE 2019): negatives drawn from small per-query caches of hard entities.

Every training query keeps a cache of N1 candidates: a tail cache per (h, r) and a head cache
per (r, t). A step draws its negatives uniformly from the caches of its positives; after the
optimiser step the caches of the batch's queries are refreshed: cache + N2 fresh random
entities are scored by the current model and N1 of them are kept by importance sampling
without replacement, p ~ softmax(score / temperature) (the reference code's ``update='IS'``,
``sample='unif'``). Departure: a candidate that occurs twice in one refresh is kept at most once
while enough distinct candidates exist, so the cache does not fill with copies of one entity.

The caches are buffers: checkpoints and ``state_dict`` restore them, and all randomness comes
from ``self.generator``, so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.models.base import KGEModel
from dans_kgc.sampling.base import FILTER_ROUNDS, NegativeSampler
from dans_kgc.utils import find_sorted

SIDES = ("tail", "head")


class NSCachingSampler(NegativeSampler):
    """Cache-based hard negatives; see the module docstring."""

    name = "nscaching"
    # buffers f"{side}_keys" / f"{side}_cache" (register_buffer), declared for the type checker
    head_keys: torch.Tensor
    tail_keys: torch.Tensor
    head_cache: torch.Tensor
    tail_cache: torch.Tensor

    def __init__(self, kg: KnowledgeGraph, cfg: Mapping[str, Any], num_negatives: int, generator: torch.Generator):
        super().__init__(kg, cfg, num_negatives, generator)
        ncfg = cfg["samplers"]["nscaching"]
        self.cache_size = int(ncfg["cache_size"])
        self.num_candidates = int(ncfg["candidates"])
        self.temperature = float(ncfg["temperature"])
        if self.cache_size < 1 or self.num_candidates < 0 or self.temperature <= 0:
            raise ValueError("samplers.nscaching: cache_size must be >= 1, candidates >= 0, temperature > 0")
        train = torch.from_numpy(kg.train)
        for side in SIDES:
            keys = torch.unique(self.query_keys(train, side))  # sorted
            cache = torch.randint(self.num_entities, (len(keys), self.cache_size), generator=generator)
            if self.true_keys is not None:  # train.filter_negatives: no cache starts with a training triple
                for _ in range(FILTER_ROUNDS):
                    bad = self.known_answers(side, keys, cache)
                    if not bool(bad.any()):
                        break
                    cache[bad] = torch.randint(self.num_entities, (int(bad.sum()),), generator=generator)
            self.register_buffer(f"{side}_keys", keys)
            self.register_buffer(f"{side}_cache", cache)

    def query_keys(self, triples: torch.Tensor, side: str) -> torch.Tensor:
        """Key of the query a side's cache answers: h * R + r for tails, t * R + r for heads."""
        anchor = triples[..., 0] if side == "tail" else triples[..., 2]
        return anchor * self.num_relations + triples[..., 1]

    def known_answers(self, side: str, keys: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Mask [U, K] of candidates that answer their query (key [U]) in the training graph (filter_negatives)."""
        anchor = (keys // self.num_relations).unsqueeze(1).expand_as(cand)
        rel = (keys % self.num_relations).unsqueeze(1).expand_as(cand)
        triples = torch.stack([anchor, rel, cand] if side == "tail" else [cand, rel, anchor], dim=-1)
        return self.known_true(triples)

    def cache_rows(self, triples: torch.Tensor, side: str) -> torch.Tensor:
        """Row of each triple's query in a side's cache; the query must come from the train split."""
        keys_all = getattr(self, f"{side}_keys")
        keys = self.query_keys(triples.to(keys_all.device), side)
        rows, found = find_sorted(keys_all, keys)
        if not bool(found.all()):
            raise ValueError(
                f"nscaching: a {side} query of the batch is not in the training split; caches exist "
                "only for training queries"
            )
        return rows

    def cache(self, side: str) -> torch.Tensor:
        return getattr(self, f"{side}_cache")

    def corrupt(self, pos: torch.Tensor) -> torch.Tensor:
        """Each negative replaces the head (probability 1/2) or the tail with a uniform draw from the query's cache."""
        b, n = pos.shape[0], self.num_negatives
        neg = pos.unsqueeze(1).repeat(1, n, 1)
        head = torch.rand((b, n), generator=self.generator) < self.head_probability(pos[:, 1]).unsqueeze(1)
        slot = torch.randint(self.cache_size, (b, n), generator=self.generator)
        dev = self.tail_cache.device
        drawn = {s: self.cache(s)[self.cache_rows(pos, s).unsqueeze(1), slot.to(dev)].to(pos.device) for s in SIDES}
        neg[..., 0] = torch.where(head, drawn["head"], neg[..., 0])
        neg[..., 2] = torch.where(head, neg[..., 2], drawn["tail"])
        return neg

    @torch.no_grad()
    def after_step(self, pos: torch.Tensor, model: KGEModel) -> None:
        """Refresh the caches of the batch's queries: keep N1 of cache + N2 random entities by score."""
        for side in SIDES:
            rows = torch.unique(self.cache_rows(pos, side))
            cache = self.cache(side)
            dev = cache.device
            fresh = torch.randint(self.num_entities, (len(rows), self.num_candidates), generator=self.generator)
            cand = torch.cat([cache[rows], fresh.to(dev)], dim=1)  # [U, N1 + N2]
            keys = getattr(self, f"{side}_keys")[rows]
            anchor, rel = keys // self.num_relations, keys % self.num_relations
            anchor_col, rel_col = anchor.unsqueeze(1).expand_as(cand), rel.unsqueeze(1).expand_as(cand)
            triples = torch.stack(
                [anchor_col, rel_col, cand] if side == "tail" else [cand, rel_col, anchor_col], dim=-1
            )
            model_dev = model.entity.weight.device
            scores = model.score_hrt(triples.to(model_dev)).to(dev).float()
            # Gumbel-top-k = sampling N1 without replacement with p ~ softmax(score / T); the noise comes
            # from the sampler's CPU generator, so the choice does not depend on the device.
            u = torch.rand(cand.shape, generator=self.generator).clamp_(1e-12, 1.0 - 1e-7).to(dev)
            perturbed = scores / self.temperature - torch.log(-torch.log(u))
            perturbed = perturbed.masked_fill(_repeats(cand), -torch.inf)
            if self.true_keys is not None:  # a training triple never enters a cache (train.filter_negatives)
                perturbed = perturbed.masked_fill(self.known_answers(side, keys, cand), -torch.inf)
            keep = perturbed.topk(self.cache_size, dim=1).indices
            cache[rows] = cand.gather(1, keep)


def _repeats(cand: torch.Tensor) -> torch.Tensor:
    """Mask of entries that repeat an earlier entry of the same row (the first copy stays unmasked)."""
    sorted_c, order = cand.sort(dim=1, stable=True)
    dup = torch.zeros_like(cand, dtype=torch.bool)
    dup[:, 1:] = sorted_c[:, 1:] == sorted_c[:, :-1]
    return torch.zeros_like(dup).scatter_(1, order, dup)
