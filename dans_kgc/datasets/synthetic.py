"""Synthetic knowledge graphs of a given shape, seeded: a stand-in where a real training file is unavailable.

A registry entry with a ``synthetic:`` block (``registry.yaml``; e.g. ``yago3-10-twin``, the shape of YAGO3-10:
123,182 entities, 37 relations, 1,079,040 / 5,000 / 5,000 triples and a ``hasGender`` hub of about 59k edges
into two entities) is a dataset name like any other. Fetching it generates its files into
``<data.root>/<name>/kge/`` (train / valid / test, the kge protocol) and records their SHA-256 in the dataset
manifest, so every later stage reads and verifies them exactly as it does a downloaded dataset.

The generator:

- entity popularity is Zipf-like, ``p(e) ~ (rank(e) + 1) ** -degree_exponent`` over a seeded random order, so
  degrees are heavy-tailed in both directions;
- each hub relation links ``triples`` distinct heads (drawn by popularity, without replacement) to one of
  ``tails`` hub entities (the most popular ones), the pattern that makes a relation like ``hasGender`` a hub;
- the other relations share the remaining triples by a Zipf law of exponent ``relation_exponent``, heads and
  tails drawn by popularity; repeated triples and self-loops are redrawn;
- every entity and every relation occurs in at least one training triple (a covering triple per entity is
  made first and kept in train), and valid / test are drawn from the other triples, so no evaluation triple
  holds an entity or relation unseen in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SPLIT_NAME = "kge"  # the classic train / valid / test layout, evaluated with the kge protocol
GENERATION_RECORD = "generation.json"


@dataclass(frozen=True)
class HubRelation:
    """A relation whose ``triples`` edges all end in one of ``tails`` hub entities."""

    name: str
    triples: int
    tails: int


@dataclass(frozen=True)
class SyntheticShape:
    """The shape a synthetic graph is generated to (registry ``synthetic:`` block)."""

    entities: int
    relations: int
    train: int
    valid: int
    test: int
    degree_exponent: float = 1.0
    relation_exponent: float = 1.0
    hubs: tuple[HubRelation, ...] = field(default_factory=tuple)
    seed: int = 0

    KEYS = ("entities", "relations", "train", "valid", "test", "degree_exponent", "relation_exponent", "hubs", "seed")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> SyntheticShape:
        """Parse and check a ``synthetic:`` block; errors name ``where`` and the key."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping of {', '.join(cls.KEYS)}, got {raw!r}")
        unknown = sorted(set(raw) - set(cls.KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(cls.KEYS)}")
        for key in ("entities", "relations", "train", "valid", "test"):
            if not isinstance(raw.get(key), int) or isinstance(raw.get(key), bool) or raw[key] < 1:
                raise ValueError(f"{where}.{key}: expected a positive integer, got {raw.get(key)!r}")
        hubs_raw = raw.get("hubs") or {}
        if not isinstance(hubs_raw, Mapping):
            raise ValueError(f"{where}.hubs: expected NAME: {{triples: INT, tails: INT}}, got {hubs_raw!r}")
        hubs = []
        for name, h in hubs_raw.items():
            if (
                not isinstance(h, Mapping)
                or set(h) != {"triples", "tails"}
                or not all(isinstance(h[k], int) and h[k] >= 1 for k in ("triples", "tails"))
            ):
                raise ValueError(f"{where}.hubs.{name}: expected {{triples: INT >= 1, tails: INT >= 1}}, got {h!r}")
            hubs.append(HubRelation(str(name), int(h["triples"]), int(h["tails"])))
        shape = cls(
            entities=raw["entities"],
            relations=raw["relations"],
            train=raw["train"],
            valid=raw["valid"],
            test=raw["test"],
            degree_exponent=float(raw.get("degree_exponent", 1.0)),
            relation_exponent=float(raw.get("relation_exponent", 1.0)),
            hubs=tuple(hubs),
            seed=int(raw.get("seed", 0)),
        )
        shape.check(where)
        return shape

    @property
    def total(self) -> int:
        return self.train + self.valid + self.test

    def check(self, where: str) -> None:
        if len(self.hubs) >= self.relations:
            raise ValueError(
                f"{where}.hubs: {len(self.hubs)} hub relations leave none of the {self.relations} "
                "relations for the other triples"
            )
        for hub in self.hubs:
            if hub.triples > self.entities - hub.tails:
                raise ValueError(
                    f"{where}.hubs.{hub.name}.triples: {hub.triples} distinct heads needed, only "
                    f"{self.entities - hub.tails} entities are not hub tails"
                )
        if self.train < self.entities:
            raise ValueError(
                f"{where}.train: {self.train} training triples cannot cover {self.entities} entities "
                "(every entity needs one)"
            )
        if self.total > 0.5 * self.entities**2 * self.relations:
            raise ValueError(
                f"{where}: {self.total} triples is too dense for {self.entities} entities and "
                f"{self.relations} relations"
            )

    def as_record(self) -> dict[str, Any]:
        out = asdict(self)
        out["hubs"] = {h.name: {"triples": h.triples, "tails": h.tails} for h in self.hubs}
        return out


def _weighted_sample_without_replacement(
    rng: np.random.Generator, weights: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """k distinct indices drawn with probability proportional to ``weights`` (Gumbel top-k: O(n) memory)."""
    keys = np.log(weights) + rng.gumbel(size=len(weights))
    if exclude is not None:
        keys[exclude] = -np.inf
    return np.argpartition(-keys, k - 1)[:k]


def generate(shape: SyntheticShape) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """The entity names, relation names and id triples (train / valid / test) of ``shape``; deterministic."""
    rng = np.random.default_rng(shape.seed)
    n, nr = shape.entities, shape.relations
    order = rng.permutation(n)
    popularity = np.empty(n)
    popularity[order] = (np.arange(n) + 1.0) ** -shape.degree_exponent
    p_entity = popularity / popularity.sum()
    by_popularity = order  # order[0] is the most popular entity

    relation_names = [h.name for h in shape.hubs]
    relation_names += [f"r{i:03d}" for i in range(nr - len(shape.hubs))]
    entity_names = [f"e{i:07d}" for i in range(n)]
    n_hubs = len(shape.hubs)

    # 1. one covering triple per entity (kept in train): the entity as head or tail of a non-hub relation
    ent = rng.permutation(n)
    other = rng.choice(n, size=n, p=p_entity)
    rel = n_hubs + np.arange(n) % (nr - n_hubs)  # every non-hub relation used
    as_head = rng.random(n) < 0.5
    cover = np.stack([np.where(as_head, ent, other), rel, np.where(as_head, other, ent)], axis=1)
    clash = cover[:, 0] == cover[:, 2]
    cover[clash, 2] = (cover[clash, 2] + 1) % n

    # 2. hub relations: distinct heads, tails among the most popular entities
    hub_parts = []
    for i, hub in enumerate(shape.hubs):
        tails = by_popularity[: hub.tails]
        heads = _weighted_sample_without_replacement(rng, popularity, hub.triples, exclude=tails)
        hub_tail = tails[rng.choice(hub.tails, size=hub.triples, p=p_entity[tails] / p_entity[tails].sum())]
        hub_parts.append(np.stack([heads, np.full(hub.triples, i), hub_tail], axis=1))
    fixed = np.concatenate([cover, *hub_parts], axis=0)
    keys = np.unique((fixed[:, 0] * nr + fixed[:, 1]) * n + fixed[:, 2])
    cover_keys = np.unique((cover[:, 0] * nr + cover[:, 1]) * n + cover[:, 2])

    # 3. the rest: Zipf relations, popularity-weighted heads and tails, redrawn until distinct
    p_rel = (np.arange(nr - n_hubs) + 1.0) ** -shape.relation_exponent
    p_rel = p_rel / p_rel.sum()
    while len(keys) < shape.total:
        need = shape.total - len(keys)
        m = int(need * 1.2) + 16
        h = rng.choice(n, size=m, p=p_entity)
        t = rng.choice(n, size=m, p=p_entity)
        r = n_hubs + rng.choice(nr - n_hubs, size=m, p=p_rel)
        ok = h != t
        new = np.unique((h[ok] * nr + r[ok]) * n + t[ok])
        new = new[~np.isin(new, keys, assume_unique=True)]
        if len(new) > need:
            new = rng.choice(new, size=need, replace=False)
        keys = np.union1d(keys, new)

    # 4. split: valid / test from the non-covering triples
    rest = keys[~np.isin(keys, cover_keys, assume_unique=True)]
    rest = rng.permutation(rest)
    held = rest[: shape.valid + shape.test]
    train_keys = np.concatenate([cover_keys, rest[shape.valid + shape.test :]])

    def to_triples(k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=np.int64)
        return np.stack([k // (nr * n), (k // n) % nr, k % n], axis=1)

    splits = {
        "train": to_triples(rng.permutation(train_keys)),
        "valid": to_triples(held[: shape.valid]),
        "test": to_triples(held[shape.valid :]),
    }
    return entity_names, relation_names, splits
