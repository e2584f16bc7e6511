"""Known-answer tests of the training losses (dans_kgc/losses.py)."""
from __future__ import annotations

import math

import pytest
import torch

from dans_kgc.losses import nssa, softplus
from dans_kgc.models import build_model


def _sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_nssa_by_hand():
    # Sun et al. 2019, eq. 5: -log sig(S_pos) - sum_i p_i log sig(-S_neg_i), p = softmax(alpha S_neg), S = gamma - d.
    # S_pos = 2, S_neg = (0, 1), alpha = 1: p = (1, e) / (1 + e)
    # loss = sp(-2) + p0 sp(0) + p1 sp(1) = 0.126928 + 0.268941 * 0.693147 + 0.731059 * 1.313262 = 1.273415
    pos, neg = torch.tensor([2.0]), torch.tensor([[0.0, 1.0]])
    p1 = math.e / (1 + math.e)
    want = _sp(-2.0) + (1 - p1) * _sp(0.0) + p1 * _sp(1.0)
    assert want == pytest.approx(1.273415, abs=1e-6)
    assert nssa(pos, neg, adversarial_temperature=1.0).item() == pytest.approx(want, rel=1e-6)
    # alpha = 0.5: p = softmax(0, 0.5)
    q1 = math.exp(0.5) / (1 + math.exp(0.5))
    assert nssa(pos, neg, adversarial_temperature=0.5).item() == pytest.approx(
        _sp(-2.0) + (1 - q1) * _sp(0.0) + q1 * _sp(1.0), rel=1e-6)
    # the batch mean of two rows
    pos2, neg2 = torch.tensor([2.0, -1.0]), torch.tensor([[0.0, 1.0], [3.0, 3.0]])
    row2 = _sp(1.0) + _sp(3.0)  # equal negatives: p = (1/2, 1/2)
    assert nssa(pos2, neg2).item() == pytest.approx((want + row2) / 2, rel=1e-6)


def test_nssa_weights_carry_no_gradient():
    # With detached weights, d loss / d S_neg_i = p_i * sigmoid(S_neg_i) and d loss / d S_pos = -sigmoid(-S_pos).
    pos = torch.tensor([2.0], requires_grad=True)
    neg = torch.tensor([[0.0, 1.0]], requires_grad=True)
    nssa(pos, neg).backward()
    p1 = math.e / (1 + math.e)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    torch.testing.assert_close(neg.grad, torch.tensor([[(1 - p1) * sig(0.0), p1 * sig(1.0)]]))
    torch.testing.assert_close(pos.grad, torch.tensor([-sig(-2.0)]))
    # given weights (a sampler's) are used as they are
    w = torch.tensor([[0.25, 0.75]])
    assert nssa(pos, neg, w).item() == pytest.approx(softplus(pos, neg, w).item())


def test_rotate_nssa_applies_gamma_once():
    # RotatE dim 1, gamma 3 (rho = 5, phase = raw * pi / 5), relation raw 0 (no rotation).
    # h = t = 1 + 0i (distance 0, S = 3); negative tails 0 (distance 1, S = 2) and 4 + 0i (distance 3, S = 0).
    model = build_model({"name": "rotate", "dim": 1, "gamma": 3.0}, 3, 1)
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [4.0, 0.0]]))
        model.relation.weight.zero_()
    pos = torch.tensor([[0, 0, 0]])
    neg = torch.tensor([[[0, 0, 1], [0, 0, 2]]])
    with torch.no_grad():
        s_pos, s_neg = model.score_positive_and_corrupted(pos, neg)
    torch.testing.assert_close(s_pos, torch.tensor([3.0]))
    torch.testing.assert_close(s_neg, torch.tensor([[2.0, 0.0]]))
    p = math.exp(2.0) / (math.exp(2.0) + 1.0)  # softmax(2, 0)
    want = _sp(-3.0) + p * _sp(2.0) + (1 - p) * _sp(0.0)
    assert nssa(s_pos, s_neg).item() == pytest.approx(want, rel=1e-6)
