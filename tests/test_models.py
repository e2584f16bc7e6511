"""Backbone scoring: every scoring path agrees with ``score_hrt``, hand-computed scores, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from dans_kgc.models import MODELS, build_model
from dans_kgc.models.base import KGEModel

NE, NR, DIM = 7, 3, 6

BACKBONES = {
    "transe_l1": {"name": "transe", "p_norm": 1},
    "transe_l2": {"name": "transe", "p_norm": 2},
    "transe_l1_gamma": {"name": "transe", "p_norm": 1, "gamma": 3.0},
    "rotate": {"name": "rotate"},
    "distmult": {"name": "distmult"},
    "complex": {"name": "complex"},
    "quate": {"name": "quate"},
    "conve": {"name": "conve"},
}


# ConvE scores head queries through inverse relations (S(t, r^-1, h), Dettmers et al.), so its head side
# is not score_hrt by design; tests/test_models_quate_conve.py checks it against score_reciprocal instead.
SCORE_HRT_BOTH_SIDES = [k for k in BACKBONES if BACKBONES[k]["name"] != "conve"]


def make(key: str, seed: int = 0, ne: int = NE, nr: int = NR, dim: int = DIM) -> KGEModel:
    torch.manual_seed(seed)
    model = build_model({**BACKBONES[key], "dim": dim}, ne, nr).double()
    with torch.no_grad():  # move away from the normalised init so that nothing relies on unit norms
        model.entity.weight.mul_(1.7).add_(0.1)
    return model.eval()  # ConvE: no dropout, batch norm from running statistics, so every path is deterministic


def all_triples(ne: int = NE, nr: int = NR) -> torch.Tensor:
    h, r, t = torch.meshgrid(torch.arange(ne), torch.arange(nr), torch.arange(ne), indexing="ij")
    return torch.stack([h.reshape(-1), r.reshape(-1), t.reshape(-1)], 1)


# Backbones without entity embeddings: their scoring paths are tested in their own file.
GRAPH_BACKBONES = {"redgnn": "tests/test_gnn.py"}


def test_every_backbone_is_covered():
    assert {cfg["name"] for cfg in BACKBONES.values()} | set(GRAPH_BACKBONES) == set(MODELS)


@pytest.mark.parametrize("key", SCORE_HRT_BOTH_SIDES)
def test_score_all_tails_and_heads_equal_score_hrt_for_every_entity(key):
    model = make(key)
    hr = torch.cartesian_prod(torch.arange(NE), torch.arange(NR))
    with torch.no_grad():
        tails = model.score_all_tails(hr[:, 0], hr[:, 1])  # [NE*NR, NE]
        heads = model.score_all_heads(hr[:, 1], hr[:, 0])  # rows: (r, t = hr[:, 0])
        for e in range(NE):
            col = torch.full((len(hr),), e)
            ref_t = model.score_hrt(torch.stack([hr[:, 0], hr[:, 1], col], 1))
            ref_h = model.score_hrt(torch.stack([col, hr[:, 1], hr[:, 0]], 1))
            torch.testing.assert_close(tails[:, e], ref_t, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(heads[:, e], ref_h, rtol=1e-9, atol=1e-9)


def _corruptions(pos: torch.Tensor, n: int, gen: torch.Generator, mode: str) -> torch.Tensor:
    b = pos.shape[0]
    neg = pos.unsqueeze(1).repeat(1, n, 1)
    ents = torch.randint(NE, (b, n), generator=gen)
    head = torch.rand((b, n), generator=gen) < 0.5
    if mode == "tail":
        head[:] = False
    elif mode == "head":
        head[:] = True
    neg[..., 0] = torch.where(head, ents, neg[..., 0])
    neg[..., 2] = torch.where(head, neg[..., 2], ents)
    if mode == "relation":  # also corrupt some relations: the general (fallback) path
        neg[:, ::2, 1] = torch.randint(NR, neg[:, ::2, 1].shape, generator=gen)
    return neg


@pytest.mark.parametrize("mode", ["mixed", "tail", "head", "relation"])
@pytest.mark.parametrize("key", SCORE_HRT_BOTH_SIDES)
def test_score_corrupted_equals_score_hrt(key, mode):
    model = make(key, seed=1)
    gen = torch.Generator().manual_seed(2)
    pos = all_triples()[torch.randperm(NE * NR * NE, generator=gen)[:40]]
    neg = _corruptions(pos, 9, gen, mode)
    with torch.no_grad():
        ref = model.score_hrt(neg)
        torch.testing.assert_close(model.score_corrupted(pos, neg), ref, rtol=1e-9, atol=1e-9)
        p, n = model.score_positive_and_corrupted(pos, neg)
        torch.testing.assert_close(p, model.score_hrt(pos), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(n, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("key", SCORE_HRT_BOTH_SIDES)
def test_fused_training_scores_have_the_gradients_of_score_hrt(key):
    """score_positive_and_corrupted (TransE-L1: a hand-written backward) == autograd through score_hrt."""
    gen = torch.Generator().manual_seed(3)
    pos = all_triples()[torch.randperm(NE * NR * NE, generator=gen)[:30]]
    pos = torch.cat([pos, pos[:5]])  # repeated positives: gradients must accumulate
    neg = _corruptions(pos, 8, gen, "mixed")
    neg[0, :3] = pos[0]  # a "negative" equal to its positive: zero differences (subgradient 0)
    w_pos = torch.rand(len(pos), generator=gen, dtype=torch.float64)
    w_neg = torch.rand(neg.shape[:2], generator=gen, dtype=torch.float64)
    grads = []
    for fused in (False, True):
        model = make(key, seed=4)
        if key.startswith("transe"):
            with torch.no_grad():  # exact ties in single coordinates (sign(0) = 0 for both paths)
                model.entity.weight[:, 0] = 0.5
                model.relation.weight[:, 0] = 0.0
        if fused:
            p, n = model.score_positive_and_corrupted(pos, neg)
        else:
            p, n = model.score_hrt(pos), model.score_hrt(neg)
        ((w_pos * p).sum() + (w_neg * n).sum()).backward()
        grads.append((model.entity.weight.grad.clone(), model.relation.weight.grad.clone()))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-9, atol=1e-12)


def test_fused_transe_kernel_float32_matches_autograd():
    torch.manual_seed(0)
    model = build_model({"name": "transe", "dim": 32, "p_norm": 1}, 50, 4)
    gen = torch.Generator().manual_seed(1)
    pos = torch.stack(
        [
            torch.randint(50, (64,), generator=gen),
            torch.randint(4, (64,), generator=gen),
            torch.randint(50, (64,), generator=gen),
        ],
        1,
    )
    neg = pos.unsqueeze(1).repeat(1, 16, 1)
    ents = torch.randint(50, (64, 16), generator=gen)
    neg[:, :8, 0] = ents[:, :8]
    neg[:, 8:, 2] = ents[:, 8:]
    out = []
    for fused in (False, True):
        model.zero_grad()
        p, n = model.score_positive_and_corrupted(pos, neg) if fused else (model.score_hrt(pos), model.score_hrt(neg))
        torch.relu(1 - p.unsqueeze(1) + n).mean().backward()
        out.append((p.detach(), n.detach(), model.entity.weight.grad.clone(), model.relation.weight.grad.clone()))
    for a, b in zip(out[0], out[1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("key", SCORE_HRT_BOTH_SIDES)
def test_score_tail_and_head_embeddings_with_own_embedding_equal_score_hrt(key):
    model = make(key, seed=5)
    trip = all_triples()
    with torch.no_grad():
        ref = model.score_hrt(trip)
        ent = model.entity.weight
        t_emb = ent[trip[:, 2]].unsqueeze(1)
        h_emb = ent[trip[:, 0]].unsqueeze(1)
        torch.testing.assert_close(model.score_tail_embeddings(trip[:, 0], trip[:, 1], t_emb)[:, 0], ref)
        torch.testing.assert_close(model.score_head_embeddings(trip[:, 1], trip[:, 2], h_emb)[:, 0], ref)
        # several candidates per query: [B, K, w] -> [B, K]
        cands = torch.stack([trip[:, 2], (trip[:, 2] + 1) % NE, trip[:, 0]], 1)
        many = model.score_tail_embeddings(trip[:, 0], trip[:, 1], ent[cands])
        for k in range(3):
            torch.testing.assert_close(
                many[:, k], model.score_hrt(torch.stack([trip[:, 0], trip[:, 1], cands[:, k]], 1))
            )


def _set(model: KGEModel, ent: list[list[float]], rel: list[list[float]]) -> None:
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor(ent, dtype=model.entity.weight.dtype))
        model.relation.weight.copy_(torch.tensor(rel, dtype=model.relation.weight.dtype))


def test_transe_by_hand_2d():
    # h = (1, 0), r = (0, 1), t = (0, 0): h + r - t = (1, 1) -> L1 = 2, L2 = sqrt(2)
    # t' = (1, 2): h + r - t' = (0, -1) -> L1 = 1, L2 = 1
    ent = [[1.0, 0.0], [0.0, 0.0], [1.0, 2.0]]
    rel = [[0.0, 1.0]]
    trip = torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 0]])
    for p, expected in ((1, [-2.0, -1.0, -1.0]), (2, [-math.sqrt(2.0), -1.0, -1.0])):
        model = build_model({"name": "transe", "dim": 2, "p_norm": p}, 3, 1)
        _set(model, ent, rel)
        with torch.no_grad():
            torch.testing.assert_close(model.score_hrt(trip), torch.tensor(expected))
            torch.testing.assert_close(
                model.score_all_tails(torch.tensor([0]), torch.tensor([0]))[0],
                torch.tensor([expected[2], expected[0], expected[1]]),
            )
    model = build_model({"name": "transe", "dim": 2, "p_norm": 1, "gamma": 5.0}, 3, 1)
    _set(model, ent, rel)
    with torch.no_grad():
        assert model.score_hrt(trip).tolist() == [3.0, 4.0, 4.0]  # gamma - distance


def test_transe_normalises_entities_after_each_step():
    model = build_model({"name": "transe", "dim": 4, "p_norm": 1}, 5, 2)
    torch.testing.assert_close(model.entity.weight.norm(dim=1), torch.ones(5))
    with torch.no_grad():
        model.entity.weight.mul_(3.0)
    model.post_step()
    torch.testing.assert_close(model.entity.weight.norm(dim=1), torch.ones(5))


def test_rotate_zero_phase_is_l1_of_complex_modulus_by_hand():
    # dim = 2 complex numbers; a row is [re_1, re_2 | im_1, im_2]
    # h = (3+4i, 1+0i), t0 = (0, 1+1i): |3+4i| + |-1i| = 5 + 1 = 6
    # t1 = (3+4i, 1+0i) = h: distance 0 ; t2 = (0, 0): 5 + 1 = 6
    model = build_model({"name": "rotate", "dim": 2, "gamma": 9.0}, 4, 2)
    ent = [[3.0, 1.0, 4.0, 0.0], [0.0, 1.0, 0.0, 1.0], [3.0, 1.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    rho = (9.0 + 2.0) / 2  # Sun et al.'s embedding range (gamma + 2) / dim: the table holds phase * rho / pi
    rel = [[0.0, 0.0], [(math.pi / 2) * rho / math.pi, 0.0]]  # relation 1: phase pi/2, rotates the first component by i
    _set(model, ent, rel)
    with torch.no_grad():
        s = model.score_hrt(torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 3]]))
        torch.testing.assert_close(s, torch.tensor([9.0 - 6.0, 9.0 - 0.0, 9.0 - 6.0]), atol=1e-5, rtol=0)
        # phase pi/2: (3+4i) * i = -4+3i; against t = (0, 0): |-4+3i| + |1| = 5 + 1
        s = model.score_hrt(torch.tensor([[0, 1, 3]]))
        torch.testing.assert_close(s, torch.tensor([3.0]), atol=1e-5, rtol=0)
        # head side with the conjugate rotation gives the same score
        s_all = model.score_all_heads(torch.tensor([1]), torch.tensor([3]))
        torch.testing.assert_close(s_all[0, 0], torch.tensor(3.0), atol=1e-5, rtol=0)


def test_distmult_and_complex_by_hand():
    dm = build_model({"name": "distmult", "dim": 2}, 2, 1)
    _set(dm, [[1.0, 2.0], [3.0, -1.0]], [[2.0, 0.5]])
    with torch.no_grad():  # <h, r, t> = 1*2*3 + 2*0.5*(-1) = 5
        assert dm.score_hrt(torch.tensor([[0, 0, 1]])).item() == pytest.approx(5.0)
    cx = build_model({"name": "complex", "dim": 1}, 2, 1)
    # h = 1+2i, r = 0+1i, t = 3-1i: Re(h r conj(t)) = Re((-2+i)(3+i)) = Re(-6-2i+3i-1) = -7
    _set(cx, [[1.0, 2.0], [3.0, -1.0]], [[0.0, 1.0]])
    with torch.no_grad():
        assert cx.score_hrt(torch.tensor([[0, 0, 1]])).item() == pytest.approx(-7.0)
        assert cx.score_all_heads(torch.tensor([0]), torch.tensor([1]))[0, 0].item() == pytest.approx(-7.0)


@pytest.mark.parametrize("key", BACKBONES)
def test_gradients_flow_to_embeddings(key):
    model = make(key, seed=6)
    gen = torch.Generator().manual_seed(7)
    pos = all_triples()[torch.randperm(NE * NR * NE, generator=gen)[:20]]
    neg = _corruptions(pos, 4, gen, "mixed")
    p, n = model.score_positive_and_corrupted(pos, neg)
    loss = torch.relu(1.0 - p.unsqueeze(1) + n).mean() + 1e-3 * p.pow(2).mean()
    loss.backward()
    for param in (model.entity.weight, model.relation.weight):
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0
    # external (generated) embeddings receive gradients too: the diffusion samplers rely on it
    ext = model.entity.weight.detach()[neg[:, :, 2]].clone().requires_grad_(True)
    model.score_tail_embeddings(pos[:, 0], pos[:, 1], ext).sum().backward()
    assert ext.grad is not None and torch.isfinite(ext.grad).all() and ext.grad.abs().sum() > 0


def test_query_embedding_matches_tail_and_head_queries():
    model = make("transe_l1", seed=8)
    h, r, t = torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([3, 4])
    with torch.no_grad():
        torch.testing.assert_close(model.query_embedding(h, r), model.entity.weight[h] + model.relation.weight[r])
        torch.testing.assert_close(
            model.query_embedding(t, r, side="head"), model.entity.weight[t] - model.relation.weight[r]
        )


def test_rotate_phase_is_the_raw_relation_value_times_pi_over_the_embedding_range():
    # Sun et al. 2019's code: rho = (gamma + 2) / dim, phase = raw * pi / rho. dim 1, gamma 9: rho = 11.
    # h = 1 + 0i, t = 0 + 1i. raw 5.5 -> phase pi/2: h r = i = t, distance 0, score 9.
    # raw 11 -> phase pi: h r = -1, |-1 - i| = sqrt(2), score 9 - sqrt(2). raw 0: |1 - i| = sqrt(2).
    model = build_model({"name": "rotate", "dim": 1, "gamma": 9.0}, 2, 3)
    assert model.phase_scale.item() == pytest.approx(math.pi / 11.0)
    _set(model, [[1.0, 0.0], [0.0, 1.0]], [[5.5], [11.0], [0.0]])
    with torch.no_grad():
        s = model.score_hrt(torch.tensor([[0, 0, 1], [0, 1, 1], [0, 2, 1]]))
        torch.testing.assert_close(s, torch.tensor([9.0, 9.0 - math.sqrt(2), 9.0 - math.sqrt(2)]), atol=1e-5, rtol=0)
        # head side: t conj(r) against every head; at phase pi/2 the answer h = entity 0 is at distance 0
        torch.testing.assert_close(
            model.score_all_heads(torch.tensor([0]), torch.tensor([1]))[0],
            torch.tensor([9.0, 9.0 - math.sqrt(2)]),
            atol=1e-5,
            rtol=0,
        )


def test_rotate_initialisation_is_sun_et_al_embedding_range():
    # dim 8, gamma 2: rho = (2 + 2) / 8 = 0.5 (not 1, so the shared "uniform" U(-1, 1) would show).
    # Relations always U(-rho, rho) (phases fill [-pi, pi]); init uniform: entities U(-rho, rho) too;
    # xavier_uniform keeps the shared initialiser for entities.
    torch.manual_seed(0)
    sun = build_model({"name": "rotate", "dim": 8, "gamma": 2.0, "init": "uniform"}, 400, 300)
    for w in (sun.entity.weight, sun.relation.weight):
        assert 0.45 < w.abs().max().item() <= 0.5  # fills the range, no further
    phases = sun.phase(sun.relation.weight)
    assert 3.0 < phases.abs().max().item() <= math.pi
    xav = build_model({"name": "rotate", "dim": 8, "gamma": 2.0, "init": "xavier_uniform"}, 400, 300)
    assert xav.entity.weight.abs().max().item() <= math.sqrt(6.0 / (400 + 16))
    assert 0.45 < xav.relation.weight.abs().max().item() <= 0.5


def test_rotate_refuses_a_checkpoint_without_phase_scale():
    # A state dict of the old parametrisation (relation table = phases, no phase_scale buffer) must not load.
    model = build_model({"name": "rotate", "dim": 2, "gamma": 9.0}, 3, 2)
    old = {k: v for k, v in model.state_dict().items() if k != "phase_scale"}
    with pytest.raises(RuntimeError, match="phase_scale"):
        build_model({"name": "rotate", "dim": 2, "gamma": 9.0}, 3, 2).load_state_dict(old)
