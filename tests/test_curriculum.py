"""DTM (METHOD.md Stage 3): known answers and invariants of the curriculum functions."""

import math

import pytest
import torch

from dans_kgc.config import load_config
from dans_kgc.curriculum import band_hardness, band_margins, band_weights, curriculum_centre, dtm_margins, dtm_weights


def test_band_hardness_known_values():
    assert band_hardness(4).tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert band_hardness(1).tolist() == [1.0]


def test_weights_sum_to_one_and_are_positive():
    g = torch.Generator().manual_seed(0)
    zeta = torch.rand(200, generator=g)
    for tau in (0.0, 0.13, 0.5, 0.77, 1.0):
        for k in (2, 4, 5):
            w = band_weights(tau, zeta, k)
            assert w.shape == (200, k)
            assert torch.allclose(w.sum(-1), torch.ones(200), atol=1e-6)
            assert bool((w > 0).all())


def test_centre_known_value():
    # zeta = 0.5: c(tau) = sigmoid(8 (tau - 0.5)); c(0.5) = 0.5 exactly
    z = torch.tensor([0.5])
    assert curriculum_centre(0.5, z).item() == pytest.approx(0.5)
    assert curriculum_centre(0.0, z).item() == pytest.approx(1 / (1 + math.e**4), rel=1e-5)
    # the crossing point moves to 0.5 + alpha (zeta - 0.5)
    assert curriculum_centre(0.75, torch.tensor([1.0]), lam=8, alpha=0.5).item() == pytest.approx(0.5)


def test_centre_moves_easy_to_hard_with_progress():
    zeta = torch.tensor([0.1, 0.5, 0.9])
    taus = torch.linspace(0, 1, 21)
    hard = torch.stack([(band_weights(t, zeta, 4) * band_hardness(4)).sum(-1) for t in taus])  # expected hardness
    assert bool((hard[1:] > hard[:-1]).all())
    assert band_weights(0.0, torch.tensor([0.5]), 4).argmax().item() == 0  # start: easiest band
    assert band_weights(1.0, torch.tensor([0.5]), 4).argmax().item() == 3  # end: hardest band


def test_harder_entities_reach_hard_negatives_later():
    zeta = torch.linspace(0, 1, 11)
    for tau in (0.2, 0.5, 0.8):
        c = curriculum_centre(tau, zeta)
        assert bool((c[1:] < c[:-1]).all())
        hard = (band_weights(tau, zeta, 4) * band_hardness(4)).sum(-1)
        assert bool((hard[1:] < hard[:-1]).all())


def test_reversed_inverts_the_curriculum():
    zeta = torch.rand(50, generator=torch.Generator().manual_seed(1))
    for tau in (0.0, 0.3, 1.0):
        c, cr = curriculum_centre(tau, zeta), curriculum_centre(tau, zeta, reversed=True)
        assert torch.allclose(cr, 1 - c)
        # hardness levels are symmetric, so reversing the centre mirrors the band weights
        assert torch.allclose(band_weights(tau, zeta, 4, reversed=True), band_weights(tau, zeta, 4).flip(-1), atol=1e-6)


def test_disabled_gives_uniform_weights_and_unit_margins():
    zeta = torch.rand(7)
    assert torch.allclose(band_weights(0.9, zeta, 4, enabled=False), torch.full((7, 4), 0.25))
    assert band_margins(2.0, [1.0, 0.9, 0.8, 0.7], enabled=False).tolist() == [2.0] * 4
    assert band_margins(2.0, [1.0, 0.9, 0.8, 0.7]).tolist() == pytest.approx([2.0, 1.8, 1.6, 1.4])


def test_config_wrappers_follow_the_dtm_section():
    cfg = load_config([], ["dtm.sigma=0.5", "dtm.gamma0=3.0"])
    zeta = torch.tensor([0.2, 0.7])
    assert torch.allclose(dtm_weights(0.4, zeta, cfg["dtm"], 4), band_weights(0.4, zeta, 4, sigma=0.5))
    assert dtm_margins(cfg["dtm"]).tolist() == pytest.approx([3.0, 2.7, 2.4, 2.1])
    off = load_config([], ["dtm.enabled=false"])
    assert torch.allclose(dtm_weights(0.4, zeta, off["dtm"], 4), torch.full((2, 4), 0.25))
