"""How often a random negative is a training triple, with and without ``train.filter_negatives``.

Draws negatives with the harness's own samplers (uniform, Bernoulli) for random training positives and
counts those that are training triples (facts + train). Writes OUT.json and OUT.md.

    python benchmarks/false_negative_share.py --datasets umls family --out benchmarks/results/false_negative_share
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dans_kgc.config import load_config
from dans_kgc.datasets.loading import load_dataset
from dans_kgc.provenance import provenance
from dans_kgc.sampling import build_sampler


def share(kg, sampler: str, filtered: bool, positives: int, negatives: int, seed: int) -> dict:
    cfg = load_config([], [f"train.num_negatives={negatives}", f"train.filter_negatives={str(filtered).lower()}"])
    s = build_sampler(sampler, kg, cfg, torch.Generator().manual_seed(seed))
    rng = np.random.default_rng(seed)
    pos = torch.from_numpy(kg.train[rng.integers(len(kg.train), size=positives)])
    neg = s.corrupt(pos)
    keys = torch.unique(torch.from_numpy(s.triple_keys(np.asarray(kg.train, dtype=np.int64))))
    k = s.triple_keys(neg)
    true = keys[torch.searchsorted(keys, k).clamp_max(len(keys) - 1)] == k
    return {
        "dataset": kg.name,
        "sampler": sampler,
        "filter_negatives": filtered,
        "positives": positives,
        "negatives_per_positive": negatives,
        "share_true": float(true.float().mean()),
        "rows_with_a_true_negative": float(true.any(1).float().mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["umls", "family"])
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--positives", type=int, default=20000)
    ap.add_argument("--negatives", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for ds in args.datasets:
        kg = load_dataset(args.data_root, ds)
        for sampler in ("uniform", "bernoulli"):
            for filtered in (False, True):
                rows.append(share(kg, sampler, filtered, args.positives, args.negatives, args.seed))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(
            {"rows": rows, "provenance": provenance(vars(args), torch.device("cpu"), time.perf_counter() - t0)},
            indent=1,
        )
    )
    lines = [
        f"Share of random negatives that are training triples ({args.positives} random training positives x "
        f"{args.negatives} negatives, seed {args.seed}; `python benchmarks/false_negative_share.py "
        f"--datasets {' '.join(args.datasets)} --out {args.out}`)",
        "",
        "| dataset | sampler | filter_negatives | share of negatives | rows with one or more |",
        "|---|---|---|---:|---:|",
    ]
    lines += [
        f"| {r['dataset']} | {r['sampler']} | {str(r['filter_negatives']).lower()} | {r['share_true']:.4f} | "
        f"{r['rows_with_a_true_negative']:.3f} |"
        for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
