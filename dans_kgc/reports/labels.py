"""Display names and orders shared by every table and figure (one place, so a sampler keeps
its name, position and colour across the whole report)."""
from __future__ import annotations

from typing import Iterable, Optional

DATASET_ORDER = ["family", "umls", "wn18rr", "fb15k-237", "nell-995", "yago3-10", "kinship", "nations"]
DATASET_LABEL = {
    "family": "Family", "umls": "UMLS", "wn18rr": "WN18RR", "fb15k-237": "FB15k-237", "nell-995": "NELL-995",
    "yago3-10": "YAGO3-10", "kinship": "Kinship", "nations": "Nations",
}

# main-table variants (normally the sampler name) then ablation variants
VARIANT_ORDER = ["uniform", "bernoulli", "self_adversarial", "nscaching", "dhns", "dans", "dans_fast",
                 "dans_snap", "full", "wo_dam", "wo_ccd", "wo_dtm", "reversed"]
VARIANT_LABEL = {
    "uniform": "Uniform", "bernoulli": "Bernoulli", "self_adversarial": "Self-adversarial",
    "nscaching": "NSCaching", "dhns": "DHNS-style diffusion", "dans": "DANS-KGC",
    "dans_fast": "DANS-KGC (fast chain)", "dans_snap": "DANS-KGC (snapped negatives)",
    "full": "DANS-KGC (full)", "wo_dam": "w/o DAM", "wo_ccd": "w/o CCD", "wo_dtm": "w/o DTM",
    "reversed": "reversed curriculum",
}
ABLATION_VARIANTS = ["full", "wo_dam", "wo_ccd", "wo_dtm"]

METRIC_LABEL = {"mrr": "MRR", "hits@1": "Hits@1", "hits@3": "Hits@3", "hits@10": "Hits@10"}
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


def dataset_label(name: Optional[str]) -> str:
    return DATASET_LABEL.get(name or "", name or "?")


def variant_label(name: Optional[str]) -> str:
    return VARIANT_LABEL.get(name or "", (name or "?").replace("_", " "))


def param_label(key: str) -> str:
    return PARAM_LABEL.get(key, key)


def _ordered(items: Iterable[Optional[str]], order: list[str]) -> list[Optional[str]]:
    items = list(dict.fromkeys(items))
    rank = {n: i for i, n in enumerate(order)}
    return sorted(items, key=lambda x: (x is None, rank.get(x or "", len(order)), x or ""))


def order_datasets(names: Iterable[Optional[str]]) -> list[Optional[str]]:
    return _ordered(names, DATASET_ORDER)


def order_variants(names: Iterable[Optional[str]]) -> list[Optional[str]]:
    return _ordered(names, VARIANT_ORDER)
