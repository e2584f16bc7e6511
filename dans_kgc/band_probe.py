"""Scoring a sampler's negatives on seeded train triples: the band probe.

Shared by ``dans-kgc diagnose`` and the per-validation trace columns (``diagnostics.py``) and by the
measured band placement of a diffusion sampler (``sampling/dans.py``), which re-measures where its
bands sit during training. Every draw comes from a generator of its own (``diagnostics_generator``),
never from a training generator, so probing leaves a run's random state unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.models.base import KGEModel

CHUNK = 128  # rows per chunk of the [rows, entities] computations (memory O(CHUNK x entities))
# independent random streams of one diagnostic, each its own generator (order-independent results)
STREAM_TRIPLES, STREAM_DENOISER, STREAM_BANDS, STREAM_SAMPLERS = 0, 1, 2, 10
STREAM_PLACEMENT = 3  # measured band placement: its triples (3) and its chain (4)


def diagnostics_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one measurement (``stream``) of the diagnostic seeded with ``seed``.

    Separate from every training generator: diagnostics never move a run's random state.
    """
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(stream))


def sample_triples(kg: KnowledgeGraph, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded sample of ``n`` train triples [n, 3] and a side per row (True = the head is replaced)."""
    train = torch.as_tensor(np.asarray(kg.train, dtype=np.int64))
    n = min(int(n), len(train))
    idx = torch.randperm(len(train), generator=generator)[:n]
    head_side = torch.rand(n, generator=generator) < 0.5
    return train[idx], head_side


def row_chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    """Row slices of at most ``size`` rows covering ``range(n)``."""
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


@torch.no_grad()
def query_scores(model: KGEModel, pos: torch.Tensor, head_side: torch.Tensor) -> torch.Tensor:
    """``S`` of every entity on each row's query [B, N]: (?, r, t) where ``head_side``, else (h, r, ?)."""
    out = torch.empty((len(pos), model.num_entities), device=pos.device)
    tail_rows, head_rows = (
        (~head_side).nonzero().squeeze(1),
        head_side.nonzero().squeeze(1),
    )
    if len(tail_rows):
        out[tail_rows] = model.score_all_tails(pos[tail_rows, 0], pos[tail_rows, 1]).float()
    if len(head_rows):
        out[head_rows] = model.score_all_heads(pos[head_rows, 1], pos[head_rows, 2]).float()
    return out


def band_hardness(
    pos_scores: torch.Tensor,
    neg_scores: torch.Tensor,
    all_scores: torch.Tensor,
    margins: torch.Tensor | float,
) -> dict[str, torch.Tensor]:
    """Per column of ``neg_scores`` [B, K]: active share, P(outscore), entity quantile and mean gap -> [K] each.

    ``active``: ``S(neg) > S(pos) - margin_k`` (inside the margin, so the hinge gives a gradient);
    ``outscore``: ``S(neg) > S(pos)``; ``quantile``: share of the N entities of ``all_scores``
    [B, N] scoring strictly below the negative; ``gap``: mean ``S(pos) - S(neg)``.
    """
    pos_scores, neg_scores = pos_scores.float(), neg_scores.float()
    margins = torch.as_tensor(margins, dtype=torch.float32, device=neg_scores.device)
    pos_col = pos_scores.unsqueeze(1)
    below = torch.empty(neg_scores.shape, dtype=torch.long, device=neg_scores.device)
    for sl in row_chunks(len(neg_scores)):  # sorted rows in chunks: memory O(CHUNK x entities)
        ordered = all_scores[sl].float().sort(dim=1).values
        below[sl] = torch.searchsorted(ordered, neg_scores[sl].contiguous(), right=False)  # entities < neg
    return {
        "active": (neg_scores > pos_col - margins).float().mean(0),
        "outscore": (neg_scores > pos_col).float().mean(0),
        "quantile": (below.float() / all_scores.shape[1]).mean(0),
        "gap": (pos_col - neg_scores).mean(0),
    }


@contextmanager
def eval_mode(model: KGEModel) -> Iterator[None]:
    """The model in eval mode (no dropout, frozen batch norm), its mode restored after."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


@torch.no_grad()
def scored_bands(
    sampler: Any,
    model: KGEModel,
    pos: torch.Tensor,
    head_side: torch.Tensor,
    generator: torch.Generator,
    margins: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The sampler's negatives for ``pos`` (its own form, drawn from ``generator``), scored in eval mode:
    ``gen`` (``generate``'s output), ``neg_scores`` [B, K], ``all_scores`` [B, N], ``pos_scores`` [B],
    ``margins`` [K] (the sampler's band margins unless given) and ``hard`` (``band_hardness``)."""
    with eval_mode(model):
        gen = sampler.generate(pos, model, head_side, generator=generator)
        neg_scores = sampler.score_negatives(model, pos, gen["head_side"], gen["neg"])
        all_scores = query_scores(model, pos, gen["head_side"])
    pos_scores = all_scores.gather(1, gen["target"].unsqueeze(1)).squeeze(1)
    margins = (sampler.band_margins() if margins is None else margins).to(pos.device).float()
    return {
        "gen": gen,
        "neg_scores": neg_scores,
        "all_scores": all_scores,
        "pos_scores": pos_scores,
        "margins": margins,
        "hard": band_hardness(pos_scores, neg_scores, all_scores, margins),
    }
