"""Known answers for places where a plausible slip leaves every other test green.

Each expectation is computed here, independently of the code under test: by a closed form
(the linear schedule, DDPM's reverse step, the DTM weights), by brute force (filtered ranks,
nearest allowed entities) or from a hand-made example.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import dtm_weights_by_hand, linear_alpha_bars, random_dam, tiny_config

from dans_kgc import dam as dam_module
from dans_kgc.dam import fit_dam, observed_difficulty
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diffusion import ConditionalDiffusion
from dans_kgc.models import build_model
from dans_kgc.sampling import StepContext
from dans_kgc.training import Trainer, build_run

torch.set_num_threads(1)
CPU = torch.device("cpu")
TINY_DIFFUSION = {
    "diffusion.hidden": "[8]",
    "diffusion.time_dim": 4,
    "diffusion.type_dim": 2,
    "diffusion.steps": 4,
    "dam.num_clusters": 5,
    "diagnostics.triples": 0,
}


def _relu(x: float) -> float:
    return max(x, 0.0)


# ----------------------------------------------------------------------------------------
# 1. the Trainer's validation filter per protocol
# ----------------------------------------------------------------------------------------
# The valid triple (a, r, c) shares its tail query (a, r, ?) with the test triple (a, r, d) and its
# head query (?, r, c) with the test triple (b, r, c).
LEAK_SPLITS = {
    "train": [("a", "r", "b"), ("c", "r", "d"), ("e", "r", "a")],
    "valid": [("a", "r", "c")],
    "test": [("a", "r", "d"), ("b", "r", "c")],
}


def _leak_kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_labeled("leak", "kge", LEAK_SPLITS)


@pytest.mark.parametrize("protocol, splits", [("kge", ("train", "valid")), ("redgnn", ("train", "valid", "test"))])
def test_validation_filter_holds_exactly_the_protocols_splits(tmp_path, protocol, splits):
    """kge: model selection filters train + valid only (no test triple leaks into it); redgnn: all splits."""
    kg = _leak_kg()
    cfg = tiny_config(**{"model.dim": 4, "device": "cpu"})
    model, sampler = build_run(cfg, kg)
    trainer = Trainer(cfg, kg, model, sampler, tmp_path, CPU, protocol, show_progress=False)
    ent, rel = kg.entities.index, kg.relations.index
    known = [(ent(h), rel(r), ent(t)) for split in splits for h, r, t in LEAK_SPLITS[split]]
    n = kg.num_entities
    for r in range(kg.num_relations):
        for anchor in range(n):
            tails = trainer.valid_filter.mask(np.array([[anchor, r, 0]]), "tail")[0]
            heads = trainer.valid_filter.mask(np.array([[0, r, anchor]]), "head")[0]
            assert set(tails.nonzero().flatten().tolist()) == {t for h, rr, t in known if (h, rr) == (anchor, r)}
            assert set(heads.nonzero().flatten().tolist()) == {h for h, rr, t in known if (rr, t) == (r, anchor)}

    # The consequence for model selection: scripted scores put each test answer above the valid answer.
    # Tail query (a, r, ?): b 5 (filtered: train), d 3, c 2 (the answer); head query (?, r, c): b 4, a 1 (the answer).
    tail_rows = {ent("a"): {ent("b"): 5.0, ent("d"): 3.0, ent("c"): 2.0}}
    head_rows = {ent("c"): {ent("b"): 4.0, ent("a"): 1.0}}

    def scripted(rows, anchors):
        return torch.tensor([[rows.get(int(a), {}).get(e, 0.0) for e in range(n)] for a in anchors])

    trainer.model.score_all_tails = lambda h, r: scripted(tail_rows, h)
    trainer.model.score_all_heads = lambda r, t: scripted(head_rows, t)
    # kge: d and b stay candidates, each answer ranks 2nd; redgnn filters them, each answer ranks 1st
    assert trainer.validate() == pytest.approx(0.5 if protocol == "kge" else 1.0)


# ----------------------------------------------------------------------------------------
# 2. training progress seen by the curriculum
# ----------------------------------------------------------------------------------------
def test_curriculum_sees_the_share_of_training_done_at_each_batch(toy_kg, tmp_path):
    """tau of a batch starting at triple i of epoch e (0-based) = (e + i / n) / epochs, never above 1."""
    cfg = tiny_config(
        **{
            "train.sampler": "dans",
            "train.batch_size": 4,
            "train.epochs": 2,
            "model.dim": 4,
            "device": "cpu",
            **TINY_DIFFUSION,
        }
    )
    model, sampler = build_run(cfg, toy_kg, None, **random_dam(toy_kg))
    seen: list[float] = []
    weights = sampler.band_weights
    sampler.band_weights = lambda tau, target: seen.append(tau) or weights(tau, target)
    Trainer(cfg, toy_kg, model, sampler, tmp_path, CPU, "kge", show_progress=False).fit()
    # 6 train triples, batches of 4 start at i = 0 and 4: epoch 0 -> 0, (4/6)/2; epoch 1 -> 1/2, (1 + 4/6)/2
    assert len(toy_kg.train) == 6
    assert seen == pytest.approx([0.0, 1 / 3, 0.5, 5 / 6])


# ----------------------------------------------------------------------------------------
# 3. and 4. the diffusion: L_diff's forward sample and the exact eps-DDPM reverse step
# ----------------------------------------------------------------------------------------
BETA_LOW, BETA_GLOBAL, MU = 0.05, 0.3, 1.0  # large betas: one step of alpha-bar differs clearly from the next
ZETA = [0.0, 0.4, 0.8, 1.0]


def _alpha_bars(zeta: float, steps: int) -> list[float]:
    return linear_alpha_bars(zeta, steps, BETA_LOW, BETA_GLOBAL, MU)


def _eps_diffusion(steps: int) -> ConditionalDiffusion:
    """Four entities of different difficulty, raw (unnormalised) space, eps prediction, linear schedule."""
    d = ConditionalDiffusion(
        len(ZETA),
        3,
        torch.tensor(ZETA),
        torch.zeros(len(ZETA), dtype=torch.long),
        num_clusters=1,
        steps=steps,
        beta_low=BETA_LOW,
        beta_global=BETA_GLOBAL,
        mu=MU,
        hidden=[8],
        time_dim=4,
        type_dim=2,
        normalize=False,
        schedule="linear",
        prediction="eps",
    )
    d.ensure_scale(torch.ones(len(ZETA), 3))
    assert float(d.data_scale) == 1.0
    return d


def test_l_diff_noises_x0_with_the_alpha_bar_of_the_step_the_denoiser_is_given():
    """The denoiser gets (x_s, s) with x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps for that very s, s in 1..T,
    and L_diff is the MSE between its output and that eps."""
    steps = 5
    d = _eps_diffusion(steps)
    seen = []

    def spy(x, s, cond):
        seen.append((x.detach().clone(), s.clone()))
        return torch.zeros_like(x)

    d.denoiser.forward = spy
    target = torch.arange(len(ZETA)).repeat(16)
    x0_a = torch.randn(len(target), 3, generator=torch.Generator().manual_seed(1))
    x0_b = x0_a + 1.0
    query = torch.zeros(len(target), 3)
    # the same seed draws the same steps and noise: the two states differ by sqrt(abar_s) (x0_a - x0_b)
    loss_a = d.loss(x0_a, target, query, torch.Generator().manual_seed(7))
    d.loss(x0_b, target, query, torch.Generator().manual_seed(7))
    (x_a, s_a), (x_b, s_b) = seen
    assert torch.equal(s_a, s_b)
    assert set(s_a.tolist()) == set(range(1, steps + 1))
    abar = torch.tensor([_alpha_bars(ZETA[e], steps)[s] for e, s in zip(target.tolist(), s_a.tolist(), strict=True)])
    root = abar.sqrt().unsqueeze(1)
    assert torch.allclose(x_a - x_b, -root.expand(-1, 3), atol=1e-5)
    eps = (x_a - root * x0_a) / (1.0 - abar).sqrt().unsqueeze(1)
    assert loss_a.item() == pytest.approx(float((eps**2).mean()), rel=1e-4)  # the goal is that eps


@pytest.mark.parametrize("steps, sampling_steps", [(1, 0), (6, 1)])
def test_exact_eps_ddpm_step_lands_on_x0_for_the_true_noise(steps, sampling_steps):
    """Last DDPM step (to state 0, no noise added) of an oracle that returns the true eps of x_T for a known x0:
    x_0 = (x_T - beta / sqrt(1 - abar_T) eps) / sqrt(1 - beta) with beta = 1 - abar_T, which is x0 itself.
    (1, 0): the one-step chain; (6, 1): a respaced chain jumping T -> 0 in one step."""
    d = _eps_diffusion(steps)
    x0 = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 2.0, 2.0], [-1.5, 0.25, 4.0]])
    a_T = torch.tensor([_alpha_bars(z, steps)[steps] for z in ZETA]).unsqueeze(1)
    d.denoiser.forward_parts = lambda x, pre: (x - a_T.sqrt() * x0) / (1.0 - a_T).sqrt()
    out = d.sample(
        torch.arange(len(ZETA)),
        torch.zeros(len(ZETA), 3),
        torch.Generator().manual_seed(2),
        [steps, 0],
        sampling_steps=sampling_steps,
        reverse="ddpm",
    )
    assert not torch.allclose(out[:, 0], x0, atol=0.1)  # x_T is noise, far from x0
    assert torch.allclose(out[:, 1], x0, atol=1e-5)


def test_exact_eps_ddpm_step_moves_against_eps_by_the_ddpm_coefficient():
    """A noisy step s -> s - 1 (Ho et al. 2020, Algorithm 2): x_{s-1} = (x_s - beta_s / sqrt(1 - abar_s) eps)
    / sqrt(alpha_s) + sigma_s z. Two constant-eps denoisers on the same seed share x_s and z, so their
    states differ by -beta_s / (sqrt(1 - abar_s) sqrt(alpha_s)) times the difference of their eps."""
    steps = 6
    d = _eps_diffusion(steps)
    eps_1, eps_2 = torch.full((len(ZETA), 3), 0.5), torch.full((len(ZETA), 3), -1.0)
    outs = []
    for eps in (eps_1, eps_2):
        d.denoiser.forward_parts = lambda x, pre, eps=eps: eps
        outs.append(
            d.sample(
                torch.arange(len(ZETA)),
                torch.zeros(len(ZETA), 3),
                torch.Generator().manual_seed(3),
                [steps, steps - 1],
                reverse="ddpm",
            )
        )
    assert torch.equal(outs[0][:, 0], outs[1][:, 0])  # the same x_T
    coef = []
    for z in ZETA:
        abar = _alpha_bars(z, steps)
        beta = 1.0 - abar[steps] / abar[steps - 1]
        coef.append(-beta / math.sqrt(1.0 - abar[steps]) / math.sqrt(1.0 - beta))
    want = torch.tensor(coef).unsqueeze(1) * (eps_1 - eps_2)
    assert torch.allclose(outs[0][:, 1] - outs[1][:, 1], want, atol=1e-6)


# ----------------------------------------------------------------------------------------
# 5. mixed negatives: each band once continuous, once snapped, each with its own band margin
# ----------------------------------------------------------------------------------------
ENT = [[0.0, 0.0], [1.0, 0.1], [0.2, 1.1], [1.3, 0.9]]  # 2-D TransE entities e0..e3
REL = [0.9, 0.2]
# every entity is a train tail of (e3, r, ?): a row asking for a tail of e3 has no valid snapped negative
MIXED_TRAIN = [("e0", "r", "e1"), ("e2", "r", "e3"), ("e1", "r", "e0")] + [("e3", "r", f"e{i}") for i in range(4)]
OFFSETS = [[0.1, 0.0], [0.0, -0.2], [-0.35, 0.0], [0.0, 0.45]]  # continuous negative k = query + offset k


def test_mixed_negatives_give_each_band_its_margin_in_both_forms():
    """L_dans = mean_b sum_k w_bk / 2 [relu(g_k - S_pos + S(cont_bk)) + [snap_bk exists] relu(g_k - S_pos + S(snap_bk))]
    with hand-computed DTM weights, margins gamma0 m_k, TransE scores and the nearest allowed entity as snap."""
    names = [f"e{i}" for i in range(4)]
    kg = KnowledgeGraph.from_labeled("mixed", "kge", {"train": MIXED_TRAIN, "valid": [], "test": []}, names, ["r"])
    zeta = np.array([0.1, 0.4, 0.6, 0.9])
    cfg = tiny_config(
        **{
            "train.sampler": "dans",
            "model.dim": 2,
            "model.normalize_entities": "false",
            "device": "cpu",
            "diffusion.negatives": "mixed",
            "diffusion.update_every": 0,
            "dans.eta": 0.5,
            "diffusion.side_flag": "false",
            **TINY_DIFFUSION,
        }
    )
    model, sampler = build_run(cfg, kg, None, zeta=zeta, clusters=np.zeros(4, dtype=np.int64))
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor(ENT))
        model.relation.weight.copy_(torch.tensor([REL]))
    gamma = float(cfg["model"]["gamma"])
    ent, rel = np.array(ENT), np.array(REL)
    pos = torch.as_tensor(kg.train, dtype=torch.long)

    def query(b: int, head: bool) -> np.ndarray:
        h, _, t = pos[b].tolist()
        return ent[t] - rel if head else ent[h] + rel  # the point a replacing entity should sit at

    seen = {}

    def chain(target, space, head_side, generator):
        seen["head"] = head_side.clone()
        rows = [[query(b, bool(head_side[b])) + np.array(o) for o in OFFSETS] for b in range(len(pos))]
        return torch.tensor(np.array(rows), dtype=torch.float32)

    sampler._chain = chain
    s_pos = [gamma - np.abs(ent[h] + rel - ent[t]).sum() for h, _, t in pos.tolist()]
    ctx = StepContext(pos=pos, pos_scores=torch.tensor(s_pos, dtype=torch.float32), model=model, progress=0.55, step=1)
    loss, logs = sampler.total_loss(torch.zeros(()), ctx)

    dtm = cfg["dtm"]
    margins = [float(dtm["gamma0"]) * m for m in dtm["margin_scales"]]
    known = {tuple(t) for t in kg.train.tolist()}
    head_rows = seen["head"].tolist()
    weights = dtm_weights_by_hand(
        0.55, [zeta[h if hd else t] for (h, _, t), hd in zip(pos.tolist(), head_rows, strict=True)], dtm
    )
    total, no_snap = 0.0, 0
    for b, ((h, r, t), head, w) in enumerate(zip(pos.tolist(), head_rows, weights, strict=True)):
        q = query(b, head)
        allowed = [e for e in range(4) if ((e, r, t) if head else (h, r, e)) not in known]
        for k in range(4):
            cont = q + np.array(OFFSETS[k])
            total += 0.5 * w[k] * _relu(margins[k] - s_pos[b] + gamma - np.abs(q - cont).sum())
            if not allowed:
                no_snap += 1
                continue
            snap = min(allowed, key=lambda e: np.linalg.norm(ent[e] - cont))
            total += 0.5 * w[k] * _relu(margins[k] - s_pos[b] + gamma - np.abs(q - ent[snap]).sum())
    assert no_snap > 0 and seen["head"].any() and (~seen["head"]).any()  # the example covers every case
    want = total / len(pos)
    assert logs["l_dans"] == pytest.approx(want, rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * want, rel=1e-5)


# ----------------------------------------------------------------------------------------
# 6. DAM's observed difficulty: filtered realistic ranks credited to the answer's entity
# ----------------------------------------------------------------------------------------
POS_1D = [0.0, 1.0, 1.5, 3.5, 5.0, 2.5]  # 1-D TransE entities a..f (f: no train triple), S = -|h + r - t|
REL_1D = [1.0, 2.0]
DIFF_SPLITS = {
    "train": [("a", "r0", "b"), ("b", "r0", "c"), ("c", "r1", "d"), ("a", "r1", "c"), ("d", "r0", "e")],
    "valid": [("b", "r0", "f")],
    "test": [("e", "r1", "a")],
}


def test_observed_difficulty_credits_each_side_to_its_answer():
    """Mean over the train triples where e is the answer (tail of (h, r, ?), head of (?, r, t)) of
    (realistic filtered rank - 1) / (N - 1); filtered with all splits; NaN where e answers nothing."""
    names = list("abcdef")
    kg = KnowledgeGraph.from_labeled("diff", "kge", DIFF_SPLITS, names, ["r0", "r1"])
    model = build_model({"name": "transe", "dim": 1, "gamma": 0.0, "normalize_entities": False}, 6, 2)
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor(POS_1D).unsqueeze(1))
        model.relation.weight.copy_(torch.tensor(REL_1D).unsqueeze(1))
    n = len(names)
    known = {tuple(t) for t in kg.all_true().tolist()}

    def score(h: int, r: int, t: int) -> float:
        return -abs(POS_1D[h] + REL_1D[r] - POS_1D[t])

    credits: dict[int, list[float]] = {e: [] for e in range(n)}
    for h, r, t in kg.train.tolist():
        for answer, candidates in ((t, [(h, r, e) for e in range(n)]), (h, [(e, r, t) for e in range(n)])):
            mine = score(*candidates[answer])
            rivals = [score(*c) for e, c in enumerate(candidates) if e != answer and c not in known]
            rank = 1.0 + (sum(s > mine for s in rivals) + sum(s >= mine for s in rivals)) / 2.0
            credits[answer].append((rank - 1.0) / (n - 1))
    want = np.array([np.mean(c) if c else np.nan for c in credits.values()])
    # by hand for b: the tail of (a, r0, ?) (query point 1) is b itself, rank 1; for the head of (?, r0, c) (query
    # point 0.5) a and b tie at distance 0.5, realistic rank 1.5; so (0 + 0.5 / 5) / 2. For c: the tail of (b, r0, ?)
    # (point 2) ties with f, but (b, r0, f) is a valid triple, filtered: rank 1; the tail of (a, r1, ?) ties with f
    # (not filtered): 1.5; the head of (?, r1, d): rank 1; so (0 + 0.1 + 0) / 3.
    assert want[names.index("b")] == pytest.approx(0.05) and want[names.index("c")] == pytest.approx(0.1 / 3)
    assert np.isnan(want[names.index("f")])
    got, ranked = observed_difficulty(model, kg)
    assert ranked == len(kg.train)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got[~np.isnan(want)], want[~np.isnan(want)], atol=1e-12)


# ----------------------------------------------------------------------------------------
# 7. DAM's MLP never learns from its held-out entities
# ----------------------------------------------------------------------------------------
def test_dam_mlp_weights_ignore_the_holdout_targets(monkeypatch):
    """The held-out 10 % of the entities with a target only select the epoch: the whole weight trajectory of
    the MLP is bit-identical when their targets change, and changes when one training target does."""
    rng = np.random.default_rng(0)
    n = 60
    triples = np.unique(
        np.stack([rng.integers(n, size=150), rng.integers(2, size=150), rng.integers(n, size=150)], 1), axis=0
    )
    kg = KnowledgeGraph("holdout", "kge", [f"e{i}" for i in range(n)], ["r0", "r1"], triples, triples[:0], triples[:0])
    emb = rng.normal(size=(n, 4))
    target = rng.random(n)
    target[::7] = np.nan
    epochs = 12
    cfg = tiny_config(
        **{
            "dam.num_clusters": 3,
            "dam.epochs": epochs,
            "dam.patience": 1000,
            "dam.hidden": "[8]",
            "dam.target_scale": "raw",
            "dam.kmeans_n_init": 1,
        }
    )
    adam = torch.optim.Adam
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    fit_mlp = dam_module._fit_mlp

    def spy_fit(x, y, train_idx, hold_idx, *a, **k):
        splits.append((train_idx.copy(), hold_idx.copy()))
        return fit_mlp(x, y, train_idx, hold_idx, *a, **k)

    def trajectory(y: np.ndarray) -> list[list[torch.Tensor]]:
        steps: list[list[torch.Tensor]] = []

        class RecordingAdam(adam):
            def step(self, closure=None):
                out = super().step(closure)
                steps.append([p.detach().clone() for g in self.param_groups for p in g["params"]])
                return out

        monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
        monkeypatch.setattr(dam_module, "_fit_mlp", spy_fit)
        fit_dam(kg, emb, cfg, target=y)
        assert len(steps) == epochs
        return steps

    base = trajectory(target)
    train_idx, hold_idx = splits[0]
    has = np.flatnonzero(~np.isnan(target))
    assert not set(train_idx) & set(hold_idx) and set(train_idx) | set(hold_idx) == set(has)
    assert len(hold_idx) == round(0.1 * len(has))
    moved = target.copy()
    moved[hold_idx] = 1.0 - moved[hold_idx]
    same = trajectory(moved)
    assert np.array_equal(splits[1][1], hold_idx)
    for a, b in zip(base, same, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    nudged = target.copy()
    nudged[train_idx[0]] = 1.0 - nudged[train_idx[0]]
    other = trajectory(nudged)
    assert not all(
        torch.equal(x, y) for x, y in zip(base[0], other[0], strict=True)
    )  # the check can see a target change
