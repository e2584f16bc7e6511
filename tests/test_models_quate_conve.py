"""QuatE and ConvE backbones: hand-computed quaternion algebra, scoring paths that must agree with
``score_hrt``, ConvE's bias / reciprocal-relation layout and train/eval behaviour, and a tiny fit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dans_kgc.config import load_defaults
from dans_kgc.diffusion import entity_width
from dans_kgc.models import MODELS, build_model
from dans_kgc.models.base import KGEModel
from dans_kgc.models.convolutional import ConvE, nearest_sqrt_divisor
from dans_kgc.models.quaternion import QuatE, conjugate, hamilton, quaternion_modulus

NE, NR, DIM = 7, 3, 8
NAMES = ("quate", "conve")


def quat(*coords: tuple[float, float, float, float]) -> torch.Tensor:
    """Quaternion coordinates (a, b, c, d) -> one row in the [a | b | c | d] block layout."""
    return torch.tensor([list(col) for col in zip(*coords, strict=True)], dtype=torch.float64).reshape(-1)


def make(name: str, seed: int = 0, ne: int = NE, nr: int = NR, dim: int = DIM) -> KGEModel:
    """A float64 model in eval mode; ConvE's BatchNorm running statistics are moved off their init
    (mean 0, var 1) by a few train-mode passes, so that eval visibly uses them."""
    torch.manual_seed(seed)
    cfg = {**load_defaults()["model"], "name": name, "dim": dim}
    model = build_model(cfg, ne, nr).double()
    with torch.no_grad():
        model.entity.weight.mul_(1.7).add_(0.1)
        if isinstance(model, ConvE):
            model.entity.weight[:, dim].uniform_(-1.0, 1.0)  # non-zero biases
            model.train()
            for _ in range(3):
                model.score_all_tails(torch.randint(ne, (16,)), torch.randint(nr, (16,)))
                model.score_all_heads(torch.randint(nr, (16,)), torch.randint(ne, (16,)))
    return model.eval()


def all_triples(ne: int = NE, nr: int = NR) -> torch.Tensor:
    h, r, t = torch.meshgrid(torch.arange(ne), torch.arange(nr), torch.arange(ne), indexing="ij")
    return torch.stack([h.reshape(-1), r.reshape(-1), t.reshape(-1)], 1)


def head_side_score(model: KGEModel, triples: torch.Tensor) -> torch.Tensor:
    """What head-side scoring must equal: ``score_hrt`` (QuatE) or the reciprocal score (ConvE)."""
    return model.score_reciprocal(triples) if isinstance(model, ConvE) else model.score_hrt(triples)


def test_both_are_registered():
    assert MODELS["quate"] is QuatE and MODELS["conve"] is ConvE
    assert (QuatE.label, ConvE.label) == ("QuatE", "ConvE")  # QuatE must not inherit DistMult's label


# --- QuatE -------------------------------------------------------------------------------------


def test_hamilton_product_by_hand():
    one, i, j, k = (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)
    neg = lambda q: tuple(-x for x in q)  # noqa: E731
    for p, q, expected in (
        (i, j, k),
        (j, i, neg(k)),
        (j, k, i),
        (k, j, neg(i)),
        (k, i, j),
        (i, k, neg(j)),
        (i, i, neg(one)),
        (j, j, neg(one)),
        (k, k, neg(one)),
        (one, k, k),
    ):
        assert hamilton(quat(p), quat(q)).tolist() == list(quat(expected).tolist()), (p, q)
    # (1 + 2i + 3j + 4k)(5 + 6i + 7j + 8k) = -60 + 12i + 30j + 24k; reversed: -60 + 20i + 14j + 32k
    p, q = (1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)
    assert hamilton(quat(p), quat(q)).tolist() == [-60.0, 12.0, 30.0, 24.0]
    assert hamilton(quat(q), quat(p)).tolist() == [-60.0, 20.0, 14.0, 32.0]
    # two coordinates per row are multiplied independently: [a1 a2 | b1 b2 | c1 c2 | d1 d2]
    assert hamilton(quat(p, i), quat(q, j)).tolist() == quat((-60.0, 12.0, 30.0, 24.0), k).tolist()
    assert conjugate(quat(p)).tolist() == [1.0, -2.0, -3.0, -4.0]


def _hamilton_via_complex_matrices(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Independent reference: a + bi + cj + dk  <->  [[a + bi, c + di], [-c + di, a - bi]]."""

    def to_mat(x: torch.Tensor) -> torch.Tensor:
        a, b, c, d = torch.chunk(x, 4, dim=-1)
        z, w = torch.complex(a, b), torch.complex(c, d)
        return torch.stack([torch.stack([z, w], -1), torch.stack([-w.conj(), z.conj()], -1)], -2)

    m = to_mat(p) @ to_mat(q)
    z, w = m[..., 0, 0], m[..., 0, 1]
    return torch.cat([z.real, z.imag, w.real, w.imag], dim=-1)


def test_quate_score_equals_explicit_formula():
    model = make("quate", seed=1, dim=3)
    trip = all_triples()
    ent, rel = model.entity.weight.detach(), model.relation.weight.detach()
    h, r, t = ent[trip[:, 0]], rel[trip[:, 1]], ent[trip[:, 2]]
    a, b, c, d = torch.chunk(r, 4, dim=-1)
    modulus = torch.sqrt(a**2 + b**2 + c**2 + d**2)
    r_unit = torch.cat([a / modulus, b / modulus, c / modulus, d / modulus], dim=-1)
    expected = (_hamilton_via_complex_matrices(h, r_unit) * t).sum(-1)
    with torch.no_grad():
        torch.testing.assert_close(model.score_hrt(trip), expected, rtol=1e-10, atol=1e-10)
    # dim = 1 by hand: h = 1+2i+3j+4k, r = 5+6i+7j+8k (|r| = sqrt(174)), h r^ = (-60, 12, 30, 24) / sqrt(174)
    small = build_model({"name": "quate", "dim": 1}, 3, 1).double()
    with torch.no_grad():
        small.entity.weight.copy_(torch.stack([quat((1, 2, 3, 4)), quat((1, 0, 0, 0)), quat((0, 1, 1, 1))]))
        small.relation.weight.copy_(quat((5, 6, 7, 8)).unsqueeze(0))
        s = small.score_hrt(torch.tensor([[0, 0, 1], [0, 0, 2]]))
        heads = small.score_all_heads(torch.tensor([0, 0]), torch.tensor([1, 2]))[:, 0]
    expected = torch.tensor([-60.0, 66.0], dtype=torch.float64) / math.sqrt(174.0)
    torch.testing.assert_close(s, expected)
    torch.testing.assert_close(heads, expected)


def test_quate_relation_scale_does_not_change_scores():
    """r is normalised per coordinate: scaling one relation coordinate by c > 0 changes nothing."""
    model = make("quate", seed=2, dim=3)
    trip = all_triples()
    with torch.no_grad():
        before = model.score_hrt(trip)
        scale = torch.tensor([3.0, 0.2, 7.0], dtype=torch.float64).repeat(4)  # one factor per coordinate
        model.relation.weight.mul_(scale)
        torch.testing.assert_close(model.score_hrt(trip), before, rtol=1e-10, atol=1e-10)


def test_quate_head_query_gives_the_tail_score_for_random_tensors():
    model = make("quate", dim=5)
    gen = torch.Generator().manual_seed(3)
    h, r, t = (torch.randn(64, 20, generator=gen, dtype=torch.float64) * 2 for _ in range(3))
    torch.testing.assert_close(
        model.similarity(model.head_query(r, t), h), model.similarity(model.tail_query(h, r), t), rtol=1e-10, atol=1e-10
    )


def test_quate_n3_factors_are_the_quaternion_modulus():
    model = make("quate", seed=4, dim=3)
    trip = all_triples()[:10]
    ent, rel = model.entity.weight.detach(), model.relation.weight.detach()

    def modulus(x: torch.Tensor) -> torch.Tensor:
        a, b, c, d = torch.chunk(x, 4, dim=-1)
        return torch.sqrt(a**2 + b**2 + c**2 + d**2)

    expected = [modulus(ent[trip[:, 0]]), modulus(rel[trip[:, 1]]), modulus(ent[trip[:, 2]])]
    got = model.factors(trip)
    assert [f.shape for f in got] == [(10, 3)] * 3
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    reg = model.regularization(trip, "n3", 0.5)
    torch.testing.assert_close(reg, 0.5 * sum(e.pow(3).sum() for e in expected) / 10)
    assert quaternion_modulus(quat((0, 3, 0, 4))).item() == 5.0
    # the modulus has a finite (sub)gradient at an all-zero coordinate
    z = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    quaternion_modulus(z).pow(3).sum().backward()
    assert torch.isfinite(z.grad).all()


# --- both: every scoring path agrees with score_hrt --------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_score_all_tails_and_heads_equal_score_hrt_for_every_entity(name):
    model = make(name, seed=5)
    hr = torch.cartesian_prod(torch.arange(NE), torch.arange(NR))
    with torch.no_grad():
        tails = model.score_all_tails(hr[:, 0], hr[:, 1])
        heads = model.score_all_heads(hr[:, 1], hr[:, 0])  # rows: (r, t = hr[:, 0])
        for e in range(NE):
            col = torch.full((len(hr),), e)
            torch.testing.assert_close(
                tails[:, e], model.score_hrt(torch.stack([hr[:, 0], hr[:, 1], col], 1)), rtol=1e-9, atol=1e-9
            )
            torch.testing.assert_close(
                heads[:, e], head_side_score(model, torch.stack([col, hr[:, 1], hr[:, 0]], 1)), rtol=1e-9, atol=1e-9
            )


@pytest.mark.parametrize("name", NAMES)
def test_score_corrupted_and_embedding_scoring_equal_score_hrt(name):
    """Tail corruptions equal score_hrt; head corruptions equal the head-side score (score_hrt for QuatE)."""
    model = make(name, seed=6)
    gen = torch.Generator().manual_seed(7)
    pos = all_triples()[torch.randperm(NE * NR * NE, generator=gen)[:30]]
    neg = pos.unsqueeze(1).repeat(1, 9, 1)
    ents = torch.randint(NE, (30, 9), generator=gen)
    neg[:, :4, 0] = ents[:, :4]  # head corruptions
    neg[:, 4:, 2] = ents[:, 4:]  # tail corruptions
    with torch.no_grad():
        # a negative keeping the head (a tail corruption, or a head "corruption" that drew the same head)
        # is a tail-side row; the others are head-side rows
        ref = torch.where(neg[..., 0] == pos[:, None, 0], model.score_hrt(neg), head_side_score(model, neg))
        torch.testing.assert_close(
            model.score_hrt(neg), model.score_hrt(neg.reshape(-1, 3)).reshape(30, 9), rtol=1e-9, atol=1e-9
        )  # leading dims are flattened and restored
        torch.testing.assert_close(model.score_corrupted(pos, neg), ref, rtol=1e-9, atol=1e-9)
        p, n = model.score_positive_and_corrupted(pos, neg)
        torch.testing.assert_close(p, model.score_hrt(pos), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(n, ref, rtol=1e-9, atol=1e-9)
        ent = model.entity.weight
        torch.testing.assert_close(
            model.score_tail_embeddings(pos[:, 0], pos[:, 1], ent[neg[:, 4:, 2]]), ref[:, 4:], rtol=1e-9, atol=1e-9
        )
        torch.testing.assert_close(
            model.score_head_embeddings(pos[:, 1], pos[:, 2], ent[neg[:, :4, 0]]),
            head_side_score(model, neg[:, :4]),
            rtol=1e-9,
            atol=1e-9,
        )


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_to_embeddings_and_external_embeddings(name):
    model = make(name, seed=8).train()
    trip = all_triples()[::5]
    F.cross_entropy(model.score_all_tails(trip[:, 0], trip[:, 1]), trip[:, 2]).backward()
    for param in model.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()
    assert model.entity.weight.grad.abs().sum() > 0 and model.relation.weight.grad.abs().sum() > 0
    ext = model.entity.weight.detach()[trip[:, 2]].unsqueeze(1).clone().requires_grad_(True)
    model.score_tail_embeddings(trip[:, 0], trip[:, 1], ext).sum().backward()
    assert ext.grad is not None and torch.isfinite(ext.grad).all() and ext.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_builds_from_package_defaults(name):
    cfg = {**load_defaults()["model"], "name": name}
    model = build_model(cfg, 10, 3)
    dim = cfg["dim"]
    widths = {"quate": (4 * dim, 4 * dim), "conve": (dim + 1, 2 * dim)}[name]
    assert (model.entity_width, model.relation_width) == widths
    assert entity_width(cfg) == model.entity_width  # the diffusion's width, computed from dim alone
    with torch.no_grad():
        assert model.eval().score_all_tails(torch.tensor([0, 1]), torch.tensor([2, 0])).shape == (2, 10)
    for init in ("xavier_normal", "normal", "uniform"):  # the ``init`` key reaches the base initialiser
        other = build_model({**cfg, "init": init}, 10, 3)
        assert torch.isfinite(other.entity.weight).all() and other.entity.weight.std() > 0
        if name == "conve":
            assert other.entity.weight[:, dim].abs().sum().item() == 0.0  # biases start at 0 whatever the init


@pytest.mark.parametrize("name", NAMES)
def test_fits_a_tiny_permutation_kg(name):
    """Full-batch 1-N softmax cross-entropy on 20 entities x 2 permutation relations: train MRR ~ 1."""
    torch.manual_seed(0)
    ne = 20
    gen = torch.Generator().manual_seed(0)
    e = torch.arange(ne)
    trip = torch.cat([torch.stack([e, torch.full_like(e, r), torch.randperm(ne, generator=gen)], 1) for r in (0, 1)])
    model = build_model({**load_defaults()["model"], "name": name, "dim": 16}, ne, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.02 if name == "quate" else 0.01)
    model.train()
    for _ in range(200):
        opt.zero_grad()
        loss = F.cross_entropy(model.score_all_tails(trip[:, 0], trip[:, 1]), trip[:, 2]) + F.cross_entropy(
            model.score_all_heads(trip[:, 1], trip[:, 2]), trip[:, 0]
        )
        loss.backward()
        opt.step()
        model.post_step()
    model.eval()
    with torch.no_grad():
        ranks = []
        for scores, target in (
            (model.score_all_tails(trip[:, 0], trip[:, 1]), trip[:, 2]),
            (model.score_all_heads(trip[:, 1], trip[:, 2]), trip[:, 0]),
        ):
            ranks.append((scores > scores.gather(1, target[:, None])).sum(1) + 1)
        mrr = (1.0 / torch.cat(ranks).double()).mean().item()
    assert mrr > 0.95, mrr


# --- ConvE -------------------------------------------------------------------------------------


def test_conve_entity_bias_adds_exactly_b_e():
    model = make("conve", seed=9)
    with torch.no_grad():
        tails = model.score_all_tails(torch.arange(NE), torch.arange(NE) % NR)
        heads = model.score_all_heads(torch.arange(NE) % NR, torch.arange(NE))
        model.entity.weight[3, DIM] += 2.5
        torch.testing.assert_close(
            model.score_all_tails(torch.arange(NE), torch.arange(NE) % NR) - tails,
            torch.zeros_like(tails).index_fill_(1, torch.tensor([3]), 2.5),
            rtol=0,
            atol=1e-12,
        )
        # head candidate 3 gains b_3 as well; the query of t = 3 is unchanged (the network reads only [:dim])
        new_heads = model.score_all_heads(torch.arange(NE) % NR, torch.arange(NE))
        torch.testing.assert_close(
            new_heads - heads, torch.zeros_like(heads).index_fill_(1, torch.tensor([3]), 2.5), rtol=0, atol=1e-12
        )
        q = model.tail_query(model.entity.weight[:2], model.relation.weight[:2])
        assert q.shape == (2, DIM + 1) and q[:, DIM].tolist() == [1.0, 1.0]
    fresh = build_model({**load_defaults()["model"], "name": "conve", "dim": DIM}, NE, NR)
    assert fresh.entity.weight[:, DIM].abs().sum().item() == 0.0  # biases start at 0
    assert fresh.entity.weight[:, :DIM].abs().sum().item() > 0.0


def test_conve_height_and_kernel_are_checked():
    base = {**load_defaults()["model"], "name": "conve", "dim": 12}
    with pytest.raises(ValueError, match=r"model\.conve_height=5 must divide model\.dim=36"):
        build_model({**base, "dim": 36, "conve_height": 5}, NE, NR)  # the 3x3 kernel would fit a 10 x 7 image
    with pytest.raises(ValueError, match=r"model\.conve_kernel"):
        build_model({**base, "conve_height": 12, "conve_kernel": 3}, NE, NR)  # 24 x 1 image, 3x3 kernel
    assert build_model({**base, "conve_height": 2}, NE, NR).height == 2
    assert build_model(base, NE, NR).height == 3  # auto: divisor of 12 nearest sqrt(12) = 3.46
    assert [nearest_sqrt_divisor(n) for n in (1, 6, 7, 8, 12, 16, 128, 200)] == [1, 2, 1, 2, 3, 4, 8, 10]


def test_conve_dropout_in_train_mode_and_deterministic_eval():
    model = make("conve", seed=10)
    trip = all_triples()[:40]
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model.score_hrt(trip), model.score_hrt(trip))
        model.eval()
        ref = model.score_hrt(trip)
        assert torch.equal(model.score_hrt(trip), ref)
        # eval BatchNorm uses running statistics: a triple scores the same alone as in a batch
        torch.testing.assert_close(model.score_hrt(trip[5:6]), ref[5:6], rtol=1e-12, atol=1e-12)


def test_conve_head_query_uses_the_inverse_half_of_the_relation():
    model = make("conve", seed=11)
    r_idx, e_idx = torch.arange(NE) % NR, torch.arange(NE)
    with torch.no_grad():
        tails, heads = model.score_all_tails(e_idx, r_idx), model.score_all_heads(r_idx, e_idx)
        model.relation.weight[:, :DIM].mul_(-2.0).add_(0.3)  # change r_forward only
        new_tails, new_heads = model.score_all_tails(e_idx, r_idx), model.score_all_heads(r_idx, e_idx)
        torch.testing.assert_close(new_heads, heads, rtol=0, atol=0)
        assert (new_tails - tails).abs().max() > 1e-3
        model.relation.weight[:, DIM:].mul_(-2.0).add_(0.3)  # change r_inverse: heads move, tails do not
        torch.testing.assert_close(model.score_all_tails(e_idx, r_idx), new_tails, rtol=0, atol=0)
        assert (model.score_all_heads(r_idx, e_idx) - new_heads).abs().max() > 1e-3


def test_conve_head_side_is_the_reciprocal_score_not_score_hrt():
    """score_all_heads[b, e] is S(t_b, r_b^-1, e) computed through the forward formula with r_inverse,
    and differs from score_hrt((e, r_b, t_b)) for an untrained model (the reciprocal model is side-dependent)."""
    model = make("conve", seed=12)
    trip = all_triples()
    with torch.no_grad():
        heads = model.score_all_heads(trip[:, 1], trip[:, 2]).gather(1, trip[:, :1]).squeeze(1)
        swapped = model.relation.weight.roll(DIM, dims=1)  # [r_inverse | r_forward]
        ent = model.entity.weight
        forward_formula = model.similarity(model.tail_query(ent[trip[:, 2]], swapped[trip[:, 1]]), ent[trip[:, 0]])
        torch.testing.assert_close(heads, forward_formula, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(model.score_reciprocal(trip), heads, rtol=1e-9, atol=1e-9)
        assert (heads - model.score_hrt(trip)).abs().max() > 1e-3
        assert torch.equal(
            model.query_embedding(trip[:, 2], trip[:, 1], side="head"),
            model.head_query(model.relation(trip[:, 1]), model.entity(trip[:, 2])),
        )
