"""Known-answer tests of the training losses (dans_kgc/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from dans_kgc.losses import SubsamplingWeights, margin_ranking, nssa, softplus
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
        _sp(-2.0) + (1 - q1) * _sp(0.0) + q1 * _sp(1.0), rel=1e-6
    )
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


def test_margin_ranking_by_hand():
    # relu(margin - S_pos + S_neg): S_pos = 2, S_neg = (0, 1.5, 3), margin 1 -> (0, 0.5, 2); mean = 2.5 / 3
    pos, neg = torch.tensor([2.0]), torch.tensor([[0.0, 1.5, 3.0]])
    assert margin_ranking(pos, neg, margin=1.0).item() == pytest.approx(2.5 / 3, rel=1e-6)
    # margin 2 -> (0, 1.5, 3); weighted (0.5, 0.25, 0.25) -> 0.375 + 0.75 = 1.125
    w = torch.tensor([[0.5, 0.25, 0.25]])
    assert margin_ranking(pos, neg, w, margin=2.0).item() == pytest.approx(1.125, rel=1e-6)
    # batch mean over rows; a row with every negative beyond the margin costs 0
    pos2, neg2 = torch.tensor([2.0, 10.0]), torch.tensor([[0.0, 1.5, 3.0], [0.0, 1.0, 2.0]])
    assert margin_ranking(pos2, neg2, margin=1.0).item() == pytest.approx((2.5 / 3 + 0.0) / 2, rel=1e-6)


def test_softplus_by_hand():
    # -log sig(S_pos) - mean_i log sig(-S_neg_i) = sp(-S_pos) + mean_i sp(S_neg_i)
    pos, neg = torch.tensor([2.0]), torch.tensor([[0.0, 1.0]])
    want = _sp(-2.0) + (_sp(0.0) + _sp(1.0)) / 2
    assert want == pytest.approx(0.126928 + (0.693147 + 1.313262) / 2, abs=1e-6)
    assert softplus(pos, neg).item() == pytest.approx(want, rel=1e-6)
    w = torch.tensor([[0.9, 0.1]])
    assert softplus(pos, neg, w).item() == pytest.approx(_sp(-2.0) + 0.9 * _sp(0.0) + 0.1 * _sp(1.0), rel=1e-6)
    # a negative score is pushed down: sp(S_neg) grows with S_neg, sp(-S_pos) shrinks with S_pos
    assert softplus(torch.tensor([3.0]), neg).item() < softplus(pos, neg).item()


def test_self_adversarial_sampler_with_nssa_is_sun_et_al(toy_kg):
    """train.sampler=self_adversarial + train.loss=nssa: the sampler's weights softmax(alpha S_neg), detached,
    fed to the logistic loss, is Sun et al. 2019 eq. 5 exactly (value and gradient)."""
    from dans_kgc.config import load_config
    from dans_kgc.losses import LOSSES
    from dans_kgc.sampling import build_sampler

    cfg = load_config([], ["train.sampler=self_adversarial", "train.loss=nssa", "train.adversarial_temperature=0.5"])
    sampler = build_sampler("self_adversarial", toy_kg, cfg, torch.Generator().manual_seed(0))
    pos = torch.tensor([2.0], requires_grad=True)
    neg = torch.tensor([[0.0, 1.0, -1.0]], requires_grad=True)
    w = sampler.negative_weights(neg)
    assert not w.requires_grad  # detached: no gradient flows through the weights
    loss = LOSSES[cfg["train"]["loss"]](pos, neg, w, adversarial_temperature=cfg["train"]["adversarial_temperature"])
    e = [math.exp(0.5 * s) for s in (0.0, 1.0, -1.0)]
    p = [x / sum(e) for x in e]
    want = _sp(-2.0) + sum(pi * _sp(s) for pi, s in zip(p, (0.0, 1.0, -1.0), strict=True))
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    torch.testing.assert_close(
        neg.grad, torch.tensor([[pi * sig(s) for pi, s in zip(p, (0.0, 1.0, -1.0), strict=True)]])
    )
    # the same as the loss's own weighting (no sampler weights given)
    assert LOSSES["nssa"](pos, neg, adversarial_temperature=0.5).item() == pytest.approx(want, rel=1e-6)


def test_subsampling_weights_by_hand():
    # RotatE's count_frequency (start 4): a query's first triple counts 4, each further one 1.
    # (a, r, b), (a, r, c), (d, r, b): c(a, r) = 5, c(d, r) = 4; c(b, r^-1) = 5, c(c, r^-1) = 4
    a, b, c, d, r = 0, 1, 2, 3, 0
    train = torch.tensor([[a, r, b], [a, r, c], [d, r, b]])
    w = SubsamplingWeights(train, num_relations=2)(train)
    torch.testing.assert_close(w, torch.tensor([1 / math.sqrt(10), 1 / 3, 1 / 3]))
    with pytest.raises(ValueError, match="not in the training graph"):
        SubsamplingWeights(train, num_relations=2)(torch.tensor([[b, r, a]]))


@pytest.mark.parametrize("loss", [margin_ranking, softplus, nssa])
def test_row_weights_give_the_weighted_batch_mean(loss):
    pos, neg = torch.tensor([2.0, -1.0]), torch.tensor([[0.0, 1.0], [0.5, -0.5]])
    rows = torch.stack([loss(pos[i : i + 1], neg[i : i + 1]) for i in range(2)])
    w = torch.tensor([0.2, 0.6])
    want = (w * rows).sum() / w.sum()
    assert loss(pos, neg, row_weights=w).item() == pytest.approx(want.item(), rel=1e-6)
    assert loss(pos, neg, row_weights=torch.ones(2)).item() == pytest.approx(rows.mean().item(), rel=1e-6)
