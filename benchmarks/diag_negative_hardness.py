"""How hard are DANS-KGC's generated negatives? Per band, at a given backbone state.

For a seeded sample of training triples it generates the 4 bands with the diffusion warm start
(or, for a run's ``model_best.pt`` / ``checkpoint.pt``, with the denoiser state saved beside that
backbone) and scores them with the backbone, next to uniform negatives:

- ``active``: share of negatives inside the band's margin (``S(neg) > S(pos) - m_k``), i.e. the
  share that gives a gradient in ``L_dans`` (uniform: margin ``train.margin``);
- ``gap``: mean ``S(pos) - S(neg)``;
- ``quantile``: share of the real entities that score *below* the negative on its query
  (1.0 = the negative outscores every entity, 0.5 = as hard as a typical random entity).

    python benchmarks/diag_negative_hardness.py --run-root results/method --dataset family \
        --diffusion dans-mu1.0-ccd-dam --backbone results/method/family/pretrain/model_best.pt
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from dans_kgc.cli import load_kg
from dans_kgc.config import load_config
from dans_kgc.provenance import git_commit, package_versions
from dans_kgc.checkpoints import init_from_checkpoint
from dans_kgc.training import build_run


def hardness(model, pos: torch.Tensor, head_side: torch.Tensor, neg_scores: torch.Tensor,
             margins: torch.Tensor) -> dict[str, list[float]]:
    """Per column of ``neg_scores`` [B, K]: active share, mean gap and entity quantile."""
    with torch.no_grad():
        pos_scores = model.score_hrt(pos)
        all_scores = torch.where(head_side.unsqueeze(1), model.score_all_heads(pos[:, 1], pos[:, 2]),
                                 model.score_all_tails(pos[:, 0], pos[:, 1]))          # [B, N]
    gap = pos_scores.unsqueeze(1) - neg_scores
    active = (neg_scores > pos_scores.unsqueeze(1) - margins).float()
    quantile = (all_scores.unsqueeze(1) < neg_scores.unsqueeze(2)).float().mean(2)     # [B, K]
    return {"active": active.mean(0).tolist(), "gap": gap.mean(0).tolist(), "quantile": quantile.mean(0).tolist()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--run-root", default="results/method", help="preset folder holding <dataset>/{dam,diffusion}")
    ap.add_argument("--diffusion", default="dans-mu1.0-ccd-dam", help="diffusion stage key under <dataset>/diffusion/")
    ap.add_argument("--backbone", action="append", required=True,
                    help="model_best.pt / checkpoint of the backbone to score with (repeatable: one row each)")
    ap.add_argument("--set", action="append", default=["diffusion.sampling_steps=10"], dest="sets")
    ap.add_argument("--triples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    root = Path(args.run_root) / args.dataset
    cfg = load_config([], ["train.sampler=dans", "device=cpu", f"seed={args.seed}", *args.sets])
    kg, _ = load_kg(cfg, args.dataset)
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    for backbone in args.backbone:
        model, sampler = build_run(cfg, kg, None, dam_dir=str(root / "dam"),
                                   diffusion_dir=str(root / "diffusion" / args.diffusion))
        init_from_checkpoint(model, backbone)
        state = torch.load(backbone, map_location="cpu", weights_only=False)
        # a training run's checkpoint also holds the jointly updated denoiser: use it with its backbone
        has_denoiser = bool(state.get("sampler")) and any(k.startswith("ans.") for k in state["sampler"])
        denoiser = "run" if has_denoiser else "warm start"
        if denoiser == "run":
            sampler.load_state_dict(state["sampler"])
        model.eval()
        idx = torch.randperm(len(kg.train), generator=gen)[: args.triples]
        pos = torch.as_tensor(kg.train[idx.numpy()], dtype=torch.long)
        head_side = torch.rand(len(pos), generator=gen) < 0.5
        out = sampler.generate(pos, model, head_side)
        with torch.no_grad():
            band_scores = sampler.score_negatives(model, pos, head_side, out["neg"])
            # uniform negatives on the row's own side, not NegativeSampler.corrupt (which draws a side
            # per negative): the entity quantile compares against that side's full ranking
            rand = torch.randint(0, kg.num_entities, (len(pos), 16), generator=gen)
            rand_pos = pos.unsqueeze(1).expand(-1, 16, -1).clone()
            rand_pos[:, :, 0] = torch.where(head_side.unsqueeze(1), rand, rand_pos[:, :, 0])
            rand_pos[:, :, 2] = torch.where(head_side.unsqueeze(1), rand_pos[:, :, 2], rand)
            rand_scores = model.score_hrt(rand_pos.reshape(-1, 3)).reshape(len(pos), 16)
        bands = hardness(model, pos, head_side, band_scores, sampler.band_margins())
        uni = hardness(model, pos, head_side, rand_scores, torch.tensor(float(cfg["train"]["margin"])))
        row = {"backbone": backbone, "denoiser": denoiser,
               **{f"band{k + 1}_{m}": round(bands[m][k], 4)
                  for k in range(len(bands["gap"])) for m in ("active", "gap", "quantile")},
               **{f"uniform_{m}": round(sum(v) / len(v), 4) for m, v in uni.items()}}
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "negative_hardness", "dataset": args.dataset, "diffusion": args.diffusion,
              "triples": args.triples, "seed": args.seed, "sets": args.sets, "rows": rows,
              "command": "python " + " ".join(sys.argv), "git_commit": git_commit(),
              "packages": package_versions(), "machine": platform.platform()}
    stem = out / f"negative_hardness_{args.dataset}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Hardness of generated negatives on {args.dataset} (diffusion stage {args.diffusion}, "
             f"{args.triples} train triples)", "",
             "active = share inside the band margin (gives gradient); quantile = share of real entities "
             "scoring below the negative (0.5 = like a random entity, 1 = above all).", "",
             "| backbone | denoiser | negatives | active | gap S(pos)-S(neg) | entity quantile |",
             "|---|---|---|---:|---:|---:|"]
    for row in rows:
        for k in range(4):
            lines.append(f"| {row['backbone']} | {row['denoiser']} | band {k + 1} | {row[f'band{k + 1}_active']:.3f} | "
                         f"{row[f'band{k + 1}_gap']:.3f} | {row[f'band{k + 1}_quantile']:.3f} |")
        lines.append(f"| {row['backbone']} | — | uniform | {row['uniform_active']:.3f} | {row['uniform_gap']:.3f} | "
                     f"{row['uniform_quantile']:.3f} |")
    lines += ["", f"Command: `{result['command']}`"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
