"""Display names and orders shared by every table and figure (one place, so a sampler keeps
its name, position and colour across the whole report)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

Name = TypeVar("Name", bound="str | None")  # a name or None (unknown): the result keeps what was given

DATASET_ORDER = ["family", "umls", "wn18rr", "fb15k-237", "nell-995", "yago3-10", "kinship", "nations"]
DATASET_LABEL = {
    "family": "Family",
    "umls": "UMLS",
    "wn18rr": "WN18RR",
    "fb15k-237": "FB15k-237",
    "nell-995": "NELL-995",
    "yago3-10": "YAGO3-10",
    "kinship": "Kinship",
    "nations": "Nations",
}

# main-table variants (normally the sampler name) then ablation variants
VARIANT_ORDER = [
    "uniform",
    "uniform_term",
    "bernoulli",
    "self_adversarial",
    "nscaching",
    "dhns",
    "dans",
    "dans_fast",
    "dans_snap",
    "dans_placed",
    "full",
    "wo_dam",
    "wo_ccd",
    "wo_dtm",
    "easy_to_hard",
    "reversed",
    "lambda2",
    "lambda32",
    "no_curriculum",
    "random_features",
    "short_transe",
    "full_transe",
    "backbone_features",
]
VARIANT_LABEL = {
    "uniform": "Uniform",
    "uniform_term": "+ uniform negatives in the extra term (control)",
    "bernoulli": "Bernoulli",
    "self_adversarial": "Self-adversarial",
    "nscaching": "NSCaching",
    "dhns": "DHNS-style diffusion",
    "dans": "DANS-KGC",
    "dans_fast": "DANS-KGC (fast chain)",
    "dans_snap": "DANS-KGC (snapped negatives)",
    "dans_placed": "DANS-KGC (measured band placement)",
    "full": "DANS-KGC (full)",
    "wo_dam": "w/o DAM",
    "wo_ccd": "w/o CCD",
    "wo_dtm": "w/o DTM",
    "reversed": "reversed curriculum",
    # curriculum robustness (open question): the DTM schedule's shape
    "easy_to_hard": "easy → hard (λ = 8, default)",
    "lambda2": "easy → hard, gradual (λ = 2)",
    "lambda32": "easy → hard, abrupt (λ = 32)",
    "no_curriculum": "none (uniform weights, m_k = 1)",
    # DAM's inputs (open question Q2): where the semantic features and K-means types come from
    "random_features": "untrained TransE",
    "short_transe": "TransE, short pretraining",
    "full_transe": "TransE, full pretraining (base reading)",
    "backbone_features": "the backbone's pretraining",
}

ABLATION_VARIANTS = ["full", "wo_dam", "wo_ccd", "wo_dtm"]

# backbones: KGE models the harness trains, then the published-only reference models
BACKBONE_ORDER = [
    "transe",
    "distmult",
    "complex",
    "rotate",
    "quate",
    "conve",
    "drum",
    "rnnlogic",
    "compgcn",
    "nbfnet",
    "redgnn",
    "adaprop",
]
BACKBONE_LABEL = {
    "transe": "TransE",
    "distmult": "DistMult",
    "complex": "ComplEx",
    "rotate": "RotatE",
    "quate": "QuatE",
    "conve": "ConvE",
    "drum": "DRUM",
    "rnnlogic": "RNNLogic",
    "compgcn": "CompGCN",
    "nbfnet": "NBFNet",
    "redgnn": "RED-GNN",
    "adaprop": "AdaProp",
}
MODE_SHORT = {"negative_sampling": "NS", "one_to_n": "1-N"}
MODE_LABEL = {"negative_sampling": "negative sampling", "one_to_n": "1-N scoring"}

# calibration recipes (tags.variant of experiment `calibration`)
RECIPE_LABEL = {
    "transe": "TransE",
    "distmult": "DistMult",
    "rotate_nssa": "RotatE + NSSA",
    "complex_n3_1n": "ComplEx-N3 (1-N)",
    "quate_n3": "QuatE-N3",
    "quate_n3_1n": "QuatE-N3 (1-N)",
    "conve_1n": "ConvE (1-N)",
    "distmult_n3_1n": "DistMult-N3 (1-N)",
    "redgnn": "RED-GNN (1-N)",
}

METRIC_LABEL = {
    "mrr": "MRR",
    "hits@1": "Hits@1",
    "hits@3": "Hits@3",
    "hits@10": "Hits@10",
    "dam_spearman": "ζ held-out ρ",
}
TABLE_METRICS = ["mrr", "hits@1", "hits@10"]

PARAM_LABEL = {
    "diffusion.mu": "μ (difficulty influence on noise)",
    "dans.eta": "η (weight of $L_{dans}$)",
    "diffusion.steps": "T (diffusion steps)",
    "K_b": "$K_b$ (hardness bands)",
    "dtm.lambda": "λ (curriculum steepness)",
    "dtm.sigma": "σ (band-weight width)",
    "train.lr": "learning rate",
    "train.margin": "margin γ",
    "train.num_negatives": "negatives per positive",
    "model.dim": "embedding dimension d",
}


def dataset_label(name: str | None) -> str:
    return DATASET_LABEL.get(name or "", name or "?")


def variant_label(name: str | None) -> str:
    return VARIANT_LABEL.get(name or "", (name or "?").replace("_", " "))


def backbone_label(name: str | None, mode: str | None = None, label: str | None = None) -> str:
    """``RotatE (NS)``, ``ConvE (1-N)``; the bare name when the mode is unknown; ``unknown`` for no name."""
    base = label or BACKBONE_LABEL.get(name or "", name or "unknown")
    short = MODE_SHORT.get(mode or "", mode)
    return f"{base} ({short})" if short else base


def mode_label(mode: str | None) -> str:
    return MODE_LABEL.get(mode or "", mode or "?")


def recipe_label(name: str | None) -> str:
    return RECIPE_LABEL.get(name or "", variant_label(name))


def param_label(key: str) -> str:
    return PARAM_LABEL.get(key, key)


def _ordered(items: Iterable[Name], order: list[str]) -> list[Name]:
    unique = list(dict.fromkeys(items))
    rank: dict[str | None, int] = {n: i for i, n in enumerate(order)}
    return sorted(unique, key=lambda x: (x is None, rank.get(x or "", len(order)), x or ""))


def order_datasets(names: Iterable[Name]) -> list[Name]:
    return _ordered(names, DATASET_ORDER)


def order_variants(names: Iterable[Name]) -> list[Name]:
    return _ordered(names, VARIANT_ORDER)


def backbone_rank(key: tuple | None) -> tuple:
    """Sort key of a (name, mode[, recipe]) backbone: BACKBONE_ORDER, negative sampling before 1-N,
    then the recipe; None / unknown last."""
    name, mode, recipe = (tuple(key) + (None, None, None))[:3] if key else (None, None, None)
    rank = {n: i for i, n in enumerate(BACKBONE_ORDER)}
    modes = list(MODE_SHORT)
    return (
        key is None,
        name is None,
        rank.get(name or "", len(rank)),
        name or "",
        modes.index(mode) if mode in modes else len(modes),
        mode or "",
        recipe or "",
    )


def order_backbones(keys: Iterable[tuple]) -> list[tuple]:
    """Backbone keys in table order (see :func:`backbone_rank`)."""
    return sorted(dict.fromkeys(keys), key=backbone_rank)
