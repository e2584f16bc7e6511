"""Stage 3 (DTM): the dynamic training mechanism, as pure tensor functions.

docs/method.md, "Stage 3". Training progress ``tau`` in [0, 1]; band ``k`` (1 = easiest, K_b =
hardest) has hardness ``h_k = (k-1)/(K_b-1)``. Each entity's curriculum centre
``c_e(tau) = sigmoid(lambda (tau - 0.5 - alpha (zeta_e - 0.5)))`` moves from easy to hard as
training proceeds, later for harder entities (higher zeta); the band weights are a softmax of
``-(h_k - c_e)^2 / sigma^2`` over the bands, and harder bands get smaller margins
``gamma_k = gamma_0 m_k`` (fewer strong pushes on likely false negatives).
``enabled = False`` is the w/o DTM ablation: uniform band weights and m_k = 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


def band_hardness(num_bands: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``h_k = (k-1)/(K_b-1)`` for k = 1..K_b (a single band counts as hardest, h = 1)."""
    if num_bands < 1:
        raise ValueError("need at least one band")
    if num_bands == 1:
        return torch.ones(1, device=device)
    return torch.linspace(0.0, 1.0, num_bands, device=device)


def curriculum_centre(
    tau: float | torch.Tensor, zeta: torch.Tensor, lam: float = 8.0, alpha: float = 0.5, reversed: bool = False
) -> torch.Tensor:
    """``c_e(tau)`` per entity; ``reversed`` gives ``1 - c_e`` (hard-to-easy analysis option)."""
    tau_t = torch.as_tensor(tau, dtype=torch.float32, device=zeta.device)
    c = torch.sigmoid(lam * (tau_t - 0.5 - alpha * (zeta.float() - 0.5)))
    return 1.0 - c if reversed else c


def band_weights(
    tau: float | torch.Tensor,
    zeta: torch.Tensor,
    num_bands: int,
    lam: float = 8.0,
    alpha: float = 0.5,
    sigma: float = 0.25,
    reversed: bool = False,
    enabled: bool = True,
) -> torch.Tensor:
    """``w_e^k(tau) = softmax_k(-(h_k - c_e(tau))^2 / sigma^2)`` -> [..., K_b]; rows sum to 1."""
    if not enabled:
        return torch.full((*zeta.shape, num_bands), 1.0 / num_bands, device=zeta.device)
    h = band_hardness(num_bands, zeta.device)
    c = curriculum_centre(tau, zeta, lam, alpha, reversed).unsqueeze(-1)
    return torch.softmax(-((h - c) ** 2) / (sigma**2), dim=-1)


def band_margins(gamma0: float, margin_scales: Sequence[float], enabled: bool = True) -> torch.Tensor:
    """Stage-aware margins ``gamma_k = gamma_0 m_k`` (m_k = 1 when DTM is disabled) -> [K_b]."""
    m = torch.as_tensor([float(x) for x in margin_scales], dtype=torch.float32)
    return gamma0 * (m if enabled else torch.ones_like(m))


def dtm_weights(tau: float | torch.Tensor, zeta: torch.Tensor, dtm: Mapping[str, Any], num_bands: int) -> torch.Tensor:
    """``band_weights`` with the parameters of the ``dtm`` config section."""
    return band_weights(
        tau,
        zeta,
        num_bands,
        lam=float(dtm["lambda"]),
        alpha=float(dtm["alpha"]),
        sigma=float(dtm["sigma"]),
        reversed=bool(dtm["reversed"]),
        enabled=bool(dtm["enabled"]),
    )


def dtm_margins(dtm: Mapping[str, Any]) -> torch.Tensor:
    """``band_margins`` with the parameters of the ``dtm`` config section."""
    return band_margins(float(dtm["gamma0"]), dtm["margin_scales"], bool(dtm["enabled"]))


__all__ = ["band_hardness", "curriculum_centre", "band_weights", "band_margins", "dtm_weights", "dtm_margins"]
