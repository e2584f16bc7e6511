"""Classic samplers: uniform (Bordes et al. 2013), Bernoulli (Wang et al. 2014), self-adversarial (Sun et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.sampling.base import NegativeSampler, relation_head_probability


class UniformSampler(NegativeSampler):
    """Corrupt head or tail (probability 1/2) with a uniformly drawn entity."""

    name = "uniform"


class BernoulliSampler(NegativeSampler):
    """Corrupt the head with probability tph / (tph + hpt) of the triple's relation."""

    name = "bernoulli"

    def __init__(self, kg: KnowledgeGraph, cfg: Mapping[str, Any], num_negatives: int, generator: torch.Generator):
        super().__init__(kg, cfg, num_negatives, generator)
        # Derived from the data, not learned state; kept on the CPU beside the sampler's generator.
        self.p_head = relation_head_probability(kg.train, kg.num_relations)

    def head_probability(self, relations: torch.Tensor) -> torch.Tensor:
        return self.p_head[relations.cpu()]


class SelfAdversarialSampler(NegativeSampler):
    """Uniform negatives weighted by softmax(alpha * score) without gradient (RotatE's NSSA weighting)."""

    name = "self_adversarial"

    def __init__(self, kg: KnowledgeGraph, cfg: Mapping[str, Any], num_negatives: int, generator: torch.Generator):
        super().__init__(kg, cfg, num_negatives, generator)
        self.temperature = float(cfg["train"]["adversarial_temperature"])

    def negative_weights(self, neg_scores: torch.Tensor) -> torch.Tensor | None:
        return torch.softmax(self.temperature * neg_scores.detach(), dim=-1)
