"""ANS diffusion (METHOD.md Stage 2): schedules, forward marginal, denoiser, snapping, warm start."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import MIRROR, linear_alpha_bars, rng_triples
from hypothesis import given, settings
from hypothesis import strategies as st

from dans_kgc.config import load_config
from dans_kgc.diffusion import (
    ConditionalDiffusion,
    band_checkpoints,
    entity_beta_max,
    fit_diffusion,
    linear_betas,
    load_diffusion,
    q_sample,
    save_diffusion,
    schedule,
    snap_to_entities,
)
from dans_kgc.evaluation import FilterIndex
from dans_kgc.models import build_model

torch.set_num_threads(1)


# --- schedule -----------------------------------------------------------------------------
@pytest.mark.parametrize("mu", [0.0, 0.5, 1.0, 2.0, 200.0])
def test_betas_increase_and_stay_in_range(mu):
    zeta = torch.linspace(0, 1, 11)
    b = schedule(zeta, 50, 1e-4, 0.02, mu)["betas"]
    assert b.shape == (11, 50)
    assert torch.allclose(b[:, 0], torch.full((11,), 1e-4))  # s = 1: beta_low
    bmax = entity_beta_max(zeta, 1e-4, 0.02, mu)
    live = bmax > 1e-4  # beta_max clipped to beta_low (mu (zeta - 0.5) <= -1) gives a flat schedule
    assert bool((b[:, 1:] >= b[:, :-1]).all())
    assert bool((b[live, 1:] > b[live, :-1]).all())  # strictly increasing in s
    assert bool((b[live, 1:] > 1e-4).all()) and bool((b >= 1e-4).all()) and bool((b <= 0.999).all())
    assert torch.allclose(b[:, -1], entity_beta_max(zeta, 1e-4, 0.02, mu))  # s = T: beta_max(e)


def test_linear_schedule_known_values():
    b = linear_betas(torch.tensor([0.02]), 5, 1e-4)[0]
    assert b.tolist() == pytest.approx([1e-4, 1e-4 + 0.25 * 0.0199, 1e-4 + 0.5 * 0.0199, 1e-4 + 0.75 * 0.0199, 0.02])
    # beta_max = clip(0.02 (1 + mu (zeta - 0.5)), beta_low, 0.999)
    assert entity_beta_max(torch.tensor([1.0, 0.0]), 1e-4, 0.02, 1.0).tolist() == pytest.approx([0.03, 0.01])
    assert entity_beta_max(torch.tensor([0.0]), 1e-4, 0.02, 10.0).item() == pytest.approx(1e-4)  # clipped below


def test_harder_entities_get_more_cumulative_noise():
    zeta = torch.linspace(0, 1, 21)
    abar_T = schedule(zeta, 50, 1e-4, 0.02, 1.0)["alpha_bars"][:, -1]
    assert bool((abar_T[1:] < abar_T[:-1]).all())
    ab = schedule(torch.tensor([0.5]), 50, 1e-4, 0.02, 1.0)
    assert torch.allclose(ab["alpha_bars"], torch.cumprod(1 - ab["betas"], -1))


def test_mu_zero_gives_one_schedule_for_all():
    s = schedule(torch.rand(30), 50, 1e-4, 0.02, 0.0)["alpha_bars"]
    assert torch.equal(s, s[:1].expand_as(s))


@pytest.mark.parametrize("mu", [0.0, 1.0, 2.0])
def test_cosine_schedule_reaches_pure_noise_and_keeps_difficulty_order(mu):
    zeta = torch.linspace(0, 1, 11)
    sch = schedule(zeta, 50, 1e-4, 0.02, mu, kind="cosine")
    abar = sch["alpha_bars"]
    assert bool((abar[:, 1:] < abar[:, :-1]).all())  # strictly decreasing in s
    assert float(abar[:, 0].min()) > 0.99  # alpha-bar_1 ~ 1
    # alpha-bar_T ~ 0 (beta_T capped at 0.999: alpha-bar_T <= 0.001 ** m_e, m_e = 1 + mu (zeta - 0.5) >= 0.05)
    assert float(abar[:, -1].max()) < (1e-3 if mu <= 1 else 0.05)
    assert torch.allclose(abar, torch.cumprod(1 - sch["betas"], -1))
    assert bool((sch["betas"] <= 0.999).all())
    mid = abar[:, 25]
    if mu == 0:
        assert torch.allclose(mid, mid[:1].expand_as(mid))
    else:
        assert bool((mid[1:] < mid[:-1]).all())  # harder entity -> more noise
    # known value (zeta = 0.5: no difficulty adjustment): abar(s) = f(s) / f(0)
    f = lambda x: math.cos((x + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(abar[5, 24]) == pytest.approx(f(25 / 50) / f(0), rel=1e-4)
    with pytest.raises(ValueError, match="diffusion.schedule"):
        schedule(zeta, 50, 1e-4, 0.02, mu, kind="cosne")


def _oracle(prediction: str, reverse: str, sched: str = "linear"):
    """A diffusion model whose network returns the exact x0 (or the exact noise given x0)."""
    n, w = 6, 5
    pts = torch.randn(n, w, generator=torch.Generator().manual_seed(1)) * 3
    d = ConditionalDiffusion(
        n,
        w,
        torch.full((n,), 0.5),
        torch.arange(n),
        num_clusters=n,
        steps=20,
        hidden=[8],
        time_dim=4,
        type_dim=2,
        prediction=prediction,
        schedule=sched,
    )
    d.ensure_scale(pts)
    return d, pts


@pytest.mark.parametrize("reverse", ["ddpm", "ddim"])
@pytest.mark.parametrize("sched", ["linear", "cosine"])
def test_x0_oracle_chain_ends_exactly_at_its_target(reverse, sched):
    d, pts = _oracle("x0", reverse, sched)
    tgt = torch.arange(6)
    x0 = pts / d.data_scale
    d.denoiser.forward_parts = lambda x, pre: x0  # predicts the clean embedding of each row
    out = d.sample(tgt, pts, torch.Generator().manual_seed(0), [20, 10, 0], sampling_steps=5, reverse=reverse)
    assert torch.allclose(out[:, 2], pts, atol=1e-4)  # the fully denoised state is the target
    dist = (out - pts.unsqueeze(1)).norm(dim=-1).mean(0)
    assert bool(dist[1] < dist[0])  # and the chain approaches it band by band


@pytest.mark.parametrize("reverse", ["ddpm", "ddim"])
def test_one_respaced_x0_step_matches_the_closed_form(reverse):
    """One jump T -> s of the x0-parameterised chain: DDPM's posterior q(x_s | x_T, x0) (Ho et al. 2020,
    eq. 7, with the jump's beta = 1 - abar_T / abar_s) or DDIM's eta = 0 update (Song et al. 2021, eq. 12)."""
    d, pts = _oracle("x0", reverse)
    tgt = torch.arange(6)
    x0 = pts / d.data_scale
    d.denoiser.forward_parts = lambda x, pre: x0
    out = d.sample(tgt, pts, torch.Generator().manual_seed(3), [20, 10], sampling_steps=1, reverse=reverse)
    noise = torch.randn((3, 6, 5), generator=torch.Generator().manual_seed(3))  # visits 20, 10, 0
    abar = linear_alpha_bars(0.5, 20)  # the oracle's schedule (zeta 0.5, METHOD.md's defaults), by hand
    a_t, a_s = torch.full((6, 1), abar[20]), torch.full((6, 1), abar[10])
    x_t = noise[0]
    if reverse == "ddpm":
        beta = 1 - a_t / a_s
        mean = a_s.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_s) / (1 - a_t) * x_t
        expected = mean + ((1 - a_s) / (1 - a_t) * beta).sqrt() * noise[1]
    else:
        eps = (x_t - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        expected = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps
    assert torch.allclose(out[:, 1] / d.data_scale, expected, atol=1e-5)


def test_one_call_ddim_reaches_the_states_of_the_full_ddim_chain_for_an_exact_denoiser():
    """With the exact x0, DDIM's implied noise stays constant along the path, so one jump T -> s_k
    (sampling_steps = 1: a single denoiser call) lands where the full T-step DDIM chain does."""
    d, pts = _oracle("x0", "ddim", "cosine")
    tgt = torch.arange(6)
    calls = []
    d.denoiser.forward_parts = lambda x, pre: calls.append(1) or pts / d.data_scale
    keep = [20, 15, 10, 5, 0]
    one = d.sample(tgt, pts, torch.Generator().manual_seed(6), keep, sampling_steps=1, reverse="ddim")
    assert len(calls) == 1
    full = d.sample(tgt, pts, torch.Generator().manual_seed(6), keep, sampling_steps=0, reverse="ddim")
    assert len(calls) == 21
    assert torch.allclose(one, full, atol=1e-4) and torch.allclose(one[:, -1], pts, atol=1e-4)


def test_ddim_with_an_eps_oracle_is_deterministic_and_inverts_the_forward_process():
    d, pts = _oracle("eps", "ddim")
    tgt = torch.arange(6)
    abar = d.entity_schedule(tgt)["alpha_bars"]
    x0 = pts / d.data_scale
    # DDIM (eta = 0) keeps eps fixed along the path: with the true eps of x_T it lands on x0
    x_T = torch.randn((21, 6, 5), generator=torch.Generator().manual_seed(4))[0]
    eps_T = (x_T - abar[:, -1:].sqrt() * x0) / (1 - abar[:, -1:]).sqrt()
    d.denoiser.forward_parts = lambda x, pre: eps_T
    a = d.sample(tgt, pts, torch.Generator().manual_seed(4), [0], reverse="ddim")
    b = d.sample(tgt, pts, torch.Generator().manual_seed(4), [0], reverse="ddim")
    assert torch.equal(a, b) and torch.allclose(a[:, 0], pts, atol=1e-3)


def test_predict_returns_consistent_noise_and_clean_estimates():
    for prediction in ("eps", "x0"):
        d, pts = _oracle(prediction, "ddpm")
        x = torch.randn(6, 5)
        abar = torch.full((6,), 0.3)
        eps, x0 = d.predict(x, torch.full((6,), 7), torch.zeros(6, d.denoiser.cond_dim), abar)
        assert torch.allclose(x, abar.sqrt().unsqueeze(-1) * x0 + (1 - abar).sqrt().unsqueeze(-1) * eps, atol=1e-5)


def test_forward_chain_start_is_the_forward_marginal_of_the_start_point():
    d, pts = _oracle("x0", "ddpm")
    tgt = torch.arange(6)
    abar_T = d.entity_schedule(tgt)["alpha_bars"][:, -1:]
    out = d.sample(tgt, pts, torch.Generator().manual_seed(2), [20], x_start=pts)
    noise = torch.randn((21, 6, 5), generator=torch.Generator().manual_seed(2))[0]
    expected = (abar_T.sqrt() * pts / d.data_scale + (1 - abar_T).sqrt() * noise) * d.data_scale
    assert torch.allclose(out[:, 0], expected, atol=1e-5)


def test_x0_parameterisation_trains_the_network_on_the_clean_embedding():
    d, pts = _oracle("x0", "ddpm")
    tgt = torch.arange(6)
    x0 = pts / d.data_scale
    d.denoiser.forward = lambda x, s, c: x0
    assert float(d.loss(pts, tgt, pts, torch.Generator().manual_seed(0))) == pytest.approx(0.0, abs=1e-10)


def test_band_checkpoints():
    assert band_checkpoints([0.75, 0.5, 0.25, 0.0], 50) == [37, 25, 12, 0]
    assert band_checkpoints([1.0, 0.0], 10) == [10, 0]
    with pytest.raises(ValueError):
        band_checkpoints([1.5], 10)


# --- forward marginal -------------------------------------------------------------------
def test_forward_marginal_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -2.0, 0.3])
    n = 40000
    abar = schedule(torch.full((n,), 0.8), 50, 1e-4, 0.02, 1.0)["alpha_bars"][:, 19]  # s = 20
    xs = q_sample(x0.expand(n, 3), abar, torch.randn((n, 3), generator=g))
    a = abar[0].item()
    assert xs.mean(0).tolist() == pytest.approx((math.sqrt(a) * x0).tolist(), abs=0.02)
    assert xs.var(0).tolist() == pytest.approx([1 - a] * 3, rel=0.05)


# --- denoiser ----------------------------------------------------------------------------
def _toy(condition: str, steps: int = 200):
    """8 points in 8-D; the condition carries the target (type = its id, query = its position)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n, w = 8, 8
    pts = torch.randn(n, w, generator=g) * 2
    d = ConditionalDiffusion(
        n,
        w,
        torch.full((n,), 0.5),
        torch.arange(n),
        num_clusters=n,
        steps=50,
        hidden=[64, 64],
        time_dim=16,
        type_dim=8,
        condition=condition,
    )
    d.ensure_scale(pts)
    opt = torch.optim.Adam(d.parameters(), lr=3e-3)
    for _ in range(steps):
        tgt = torch.randint(0, n, (64,), generator=g)
        loss = d.loss(pts[tgt], tgt, pts[tgt], g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return d, pts, g


def test_conditional_denoiser_approaches_its_target_band_by_band():
    d, pts, g = _toy("ccd")
    tgt = torch.arange(8).repeat(32)
    out = d.sample(tgt, pts[tgt], g, band_checkpoints([0.75, 0.5, 0.25, 0.0], 50))  # [B, 4, w]
    dist = (out - pts[tgt].unsqueeze(1)).norm(dim=-1).mean(0)
    assert bool((dist[1:] < dist[:-1]).all()), dist  # band 4 (denoised) closest
    assert dist[-1] < 0.3 * torch.cdist(pts, pts).mean()  # and near its own target
    assert (torch.cdist(out[:, -1], pts).argmin(-1) == tgt).float().mean() > 0.8


def test_null_condition_ignores_the_condition():
    d, pts, _ = _toy("null", steps=60)
    tgt_a, tgt_b = torch.arange(8), torch.arange(8).flip(0)
    a = d.sample(tgt_a, pts[tgt_a], torch.Generator().manual_seed(5), [25, 0])
    b = d.sample(tgt_b, torch.randn(8, 8) * 10, torch.Generator().manual_seed(5), [25, 0])
    assert torch.equal(a, b)  # same noise -> same output whatever the condition
    c, _, _ = _toy("ccd", steps=60)
    a = c.sample(tgt_a, pts[tgt_a], torch.Generator().manual_seed(5), [25, 0])
    b = c.sample(tgt_b, pts[tgt_b], torch.Generator().manual_seed(5), [25, 0])
    assert not torch.allclose(a, b)  # while the CCD model does use it


def test_sampling_is_reproducible_and_keeps_every_requested_state():
    d, pts, _ = _toy("ccd", steps=5)
    tgt = torch.arange(8)
    a = d.sample(tgt, pts, torch.Generator().manual_seed(3), [50, 37, 0])
    b = d.sample(tgt, pts, torch.Generator().manual_seed(3), [0, 37, 37, 50])  # any order, repeats allowed
    assert torch.equal(a[:, 1], b[:, 1]) and torch.equal(b[:, 1], b[:, 2])
    assert torch.equal(a[:, 0], b[:, 3]) and torch.equal(a[:, 2], b[:, 0])
    # the chain's start is the first noise draw
    x_T = torch.randn((51, 8, 8), generator=torch.Generator().manual_seed(3))[0] * d.data_scale
    assert torch.allclose(a[:, 0], x_T)


def test_diffusion_loss_sends_no_gradient_into_the_backbone(toy_kg):
    model = build_model({"name": "transe", "dim": 8}, toy_kg.num_entities, toy_kg.num_relations)
    d = ConditionalDiffusion(toy_kg.num_entities, 8, None, None, hidden=[16], time_dim=8, type_dim=4)
    d.ensure_scale(model.entity.weight)
    pos = torch.from_numpy(toy_kg.train)
    tgt = pos[:, 2]
    loss = d.loss(model.entity(tgt), tgt, model.query_embedding(pos[:, 0], pos[:, 1]), torch.Generator().manual_seed(0))
    loss.backward()
    assert model.entity.weight.grad is None and model.relation.weight.grad is None
    assert d.denoiser.out.weight.grad is not None


# --- snapping ----------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_ent=st.integers(2, 12), n_rel=st.integers(1, 3))
def test_snap_never_returns_a_known_true_triple(seed, n_ent, n_rel):
    rng = np.random.default_rng(seed)
    true = rng_triples(n_ent, n_rel, int(rng.integers(1, 4 * n_ent * n_rel)), seed)
    if seed % 3 == 0:  # a query whose every entity is a true tail: nothing may be returned
        true = np.concatenate([true, np.stack([np.zeros(n_ent, int), np.zeros(n_ent, int), np.arange(n_ent)], 1)])
    fi = FilterIndex(true, n_ent, n_rel)
    known = {tuple(t) for t in true.tolist()}
    ent = torch.as_tensor(rng.normal(size=(n_ent, 4)), dtype=torch.float32)
    pos = torch.as_tensor(true[rng.integers(0, len(true), 16)])
    head = torch.as_tensor(rng.random(16) < 0.5)
    neg = torch.as_tensor(rng.normal(size=(16, 3, 4)), dtype=torch.float32)
    ids = snap_to_entities(neg, pos, head, ent, fi)
    for i in range(16):
        h, r, t = pos[i].tolist()
        allowed = [e for e in range(n_ent) if ((e, r, t) if head[i] else (h, r, e)) not in known]
        for k in range(3):
            e = int(ids[i, k])
            if not allowed:
                assert e == -1
                continue
            cand = (e, r, t) if head[i] else (h, r, e)
            assert e >= 0 and cand not in known
            dists = torch.cdist(neg[i, k : k + 1], ent[allowed])[0]
            # the nearest allowed entity
            assert torch.dist(neg[i, k], ent[e]).item() == pytest.approx(dists.min().item(), abs=1e-5)


# --- warm start, save / load, CLI -------------------------------------------------------
def test_fit_save_load_roundtrip(toy_kg, tmp_path):
    cfg = load_config([], ["diffusion.hidden=[16, 16]", "diffusion.batch_size=4", "dam.num_clusters=2"])
    model = build_model({"name": "transe", "dim": 8}, toy_kg.num_entities, toy_kg.num_relations)
    zeta, clusters = np.linspace(0, 1, toy_kg.num_entities), np.arange(toy_kg.num_entities) % 2
    d, report = fit_diffusion(toy_kg, model, zeta, clusters, cfg, torch.Generator().manual_seed(0), epochs=20)
    assert len(report["loss_curve"]) == 20 and all(math.isfinite(x) for x in report["loss_curve"])
    assert report["loss_curve"][-1] < report["loss_curve"][0]
    assert model.entity.weight.grad is None
    save_diffusion(tmp_path, d, report, cfg)
    again = load_diffusion(tmp_path)
    for k, v in d.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    assert torch.allclose(again.zeta, torch.as_tensor(zeta, dtype=torch.float32))
    rep = json.loads((tmp_path / "diffusion_report.json").read_text())
    assert rep["loss_curve"] == pytest.approx(report["loss_curve"]) and "git_commit" in rep["provenance"]
    tgt, side = torch.tensor([0, 1, 2]), torch.tensor([False, True, False])
    q = model.query_embedding(tgt, torch.tensor([0, 0, 1])).detach()
    assert torch.equal(
        d.sample(tgt, q, torch.Generator().manual_seed(1), [10, 0], head_side=side),
        again.sample(tgt, q, torch.Generator().manual_seed(1), [10, 0], head_side=side),
    )


def test_fit_accepts_plain_embeddings(toy_kg):
    cfg = load_config([], ["diffusion.hidden=[8]", "dam.num_clusters=1"])
    ent, rel = torch.randn(toy_kg.num_entities, 4), torch.randn(toy_kg.num_relations, 4)
    d, report = fit_diffusion(toy_kg, (ent, rel), None, None, cfg, torch.Generator().manual_seed(0), epochs=2)
    assert d.width == 4 and len(report["loss_curve"]) == 2


def test_cli_diffusion_fit(tmp_path, mirror):
    from dans_kgc.cli import main

    base = [
        "--set",
        f"data.root={tmp_path / 'data'}",
        "--set",
        f"data.mirror={MIRROR}",
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
        "--set",
        "model.dim=8",
    ]  # the backbone whose space the warm start is fitted in
    assert (
        main(
            [
                "pretrain",
                "--dataset",
                "umls",
                "--out",
                str(tmp_path / "pre"),
                "--quiet",
                *base,
                "--set",
                "pretrain.epochs=1",
                "--set",
                "pretrain.dim=8",
                "--set",
                "train.eval_every=1",
            ]
        )
        == 0
    )
    out = tmp_path / "diff"
    assert (
        main(
            [
                "diffusion",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(tmp_path / "pre"),
                "--out",
                str(out),
                *base,
                "--set",
                "dans.use_dam=false",
                "--set",
                "diffusion.warmstart_epochs=1",
                "--set",
                "diffusion.hidden=[16]",
            ]
        )
        == 0
    )
    rep = json.loads((out / "diffusion_report.json").read_text())
    assert rep["epochs"] == 1 and rep["dataset"] == "umls" and rep["kind"] == "dans"
    d = load_diffusion(out)
    assert d.width == 8 and torch.equal(d.zeta, torch.full((d.num_entities,), 0.5))
    # without --dam and with use_dam on, the error names the fix
    assert (
        main(
            [
                "diffusion",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(tmp_path / "pre"),
                "--out",
                str(tmp_path / "d2"),
                *base,
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "diffusion",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(tmp_path / "pre"),
                "--kind",
                "dhns",
                "--out",
                str(tmp_path / "d3"),
                *base,
                "--set",
                "diffusion.warmstart_epochs=1",
                "--set",
                "diffusion.hidden=[16]",
            ]
        )
        == 0
    )
    assert load_diffusion(tmp_path / "d3").condition_mode == "query"


def test_reverse_steps_respacing_keeps_checkpoints():
    from dans_kgc.diffusion import reverse_steps

    assert reverse_steps(50, [37, 25, 12, 0], 0) == list(range(50, -1, -1))
    assert reverse_steps(50, [37, 25, 12, 0], 50) == list(range(50, -1, -1))
    visit = reverse_steps(50, [37, 25, 12, 0], 10)
    assert visit[0] == 50 and visit[-1] == 0 and visit == sorted(set(visit), reverse=True)
    assert {37, 25, 12, 0} <= set(visit) and len(visit) <= 10 + 1 + 4


def test_respaced_chain_with_all_steps_is_the_exact_chain():
    from dans_kgc.diffusion import ConditionalDiffusion

    torch.manual_seed(0)
    diff = ConditionalDiffusion(
        6,
        4,
        zeta=torch.rand(6),
        clusters=torch.zeros(6, dtype=torch.long),
        steps=10,
        hidden=[16],
        time_dim=8,
        type_dim=4,
    )
    diff.ensure_scale(torch.randn(6, 4))
    target, query = torch.tensor([0, 3, 5]), torch.randn(3, 4)
    a = diff.sample(target, query, torch.Generator().manual_seed(1), [7, 5, 2, 0], sampling_steps=0)
    b = diff.sample(target, query, torch.Generator().manual_seed(1), [7, 5, 2, 0], sampling_steps=10)
    assert torch.equal(a, b)
    c = diff.sample(target, query, torch.Generator().manual_seed(1), [7, 5, 2, 0], sampling_steps=4)
    assert c.shape == a.shape and torch.isfinite(c).all()
