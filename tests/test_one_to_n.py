"""1-N training, regularisers, loss families, the DANS sampler's positive side, the anchor diagnostic and the
diffusion side flag: known answers on hand-sized inputs, invariants on toy data and UMLS (dim 8)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import dtm_weights_by_hand, random_dam, spy_chain, tiny_config

from dans_kgc.diffusion import ConditionalDiffusion
from dans_kgc.evaluation import FilterIndex, anchor_competition, anchor_diagnostic, evaluate, rank_triples
from dans_kgc.losses import band_loss, one_to_n_cross_entropy
from dans_kgc.models import build_model
from dans_kgc.sampling import StepContext
from dans_kgc.training import Trainer, build_run

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _cfg(**sets):
    return tiny_config(**{"model.dim": 8, "device": "cpu", **sets})


def _trainer(cfg, kg, out, **resources):
    model, sampler = build_run(cfg, kg, None, **resources)
    return Trainer(cfg, kg, model, sampler, out, CPU, "kge", show_progress=False)


def _trace(out):
    with open(out / "trace.csv") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------------------
def _lse(xs):
    return math.log(sum(math.exp(x) for x in xs))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_one_to_n_cross_entropy_by_hand(eps):
    scores = [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]
    targets = [2, 0]
    n = 3
    want = 0.0
    for row, y in zip(scores, targets, strict=True):
        q = [(1 - eps) * (j == y) + eps / n for j in range(n)]  # target: (1 - eps) onehot + eps / N
        want += -sum(qj * (s - _lse(row)) for qj, s in zip(q, row, strict=True))
    want /= len(scores)
    got = one_to_n_cross_entropy(torch.tensor(scores), torch.tensor(targets), eps)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_label_smoothing_changes_the_loss():
    s, y = torch.tensor([[4.0, 0.0, -1.0]]), torch.tensor([0])
    assert one_to_n_cross_entropy(s, y, 0.2).item() > one_to_n_cross_entropy(s, y, 0.0).item() + 1e-3


def _sp(x):
    return math.log1p(math.exp(x))


BAND = dict(
    pos=torch.tensor([1.0, 2.0]),
    neg=torch.tensor([[0.5, 1.5], [2.5, -1.0]]),
    weights=torch.tensor([[0.25, 0.75], [1.0, 0.0]]),
    margins=torch.tensor([1.0, 0.5]),
)


@pytest.mark.parametrize(
    "family, want",
    [
        # sum_k w_k relu(gamma_k - pos + neg_k): row 1: .25*.5 + .75*1.0, row 2: 1*1.5 + 0
        ("margin", (0.25 * 0.5 + 0.75 * 1.0 + 1.5) / 2),
        # sum_k w_k softplus(neg_k), margins do not enter
        ("softplus", (0.25 * _sp(0.5) + 0.75 * _sp(1.5) + _sp(2.5)) / 2),
        # sum_k w_k softplus(gamma_k - pos + neg_k)
        ("softmax", (0.25 * _sp(0.5) + 0.75 * _sp(1.0) + _sp(1.5)) / 2),
    ],
)
def test_band_loss_by_hand(family, want):
    assert band_loss(family, **BAND).item() == pytest.approx(want, rel=1e-6)


def test_band_loss_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="margin, softplus, softmax"):
        band_loss("nssa", **BAND)


# ----------------------------------------------------------------------------------------
# regularisers
# ----------------------------------------------------------------------------------------
def _distmult():
    m = build_model({"name": "distmult", "dim": 2}, 3, 1)
    with torch.no_grad():
        m.entity.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]]))
        m.relation.weight.copy_(torch.tensor([[2.0, 1.0]]))
    return m


TRIPLES = torch.tensor([[0, 0, 1], [2, 0, 0]])


def test_n3_and_l2_on_distmult_by_hand():
    m = _distmult()
    # |e|^3 per row: 9, 1.125, 1; |r|^3: 9. triple 1: 9 + 9 + 1.125, triple 2: 1 + 9 + 9; mean over B = 2
    assert m.regularization(TRIPLES, "n3", 0.1).item() == pytest.approx(0.1 * (19.125 + 19.0) / 2)
    # |e|^2 per row: 5, 1.25, 1; |r|^2: 5
    assert m.regularization(TRIPLES, "l2", 0.1).item() == pytest.approx(0.1 * (11.25 + 11.0) / 2)
    assert m.regularization(TRIPLES, "none", 0.1).item() == 0.0
    assert m.regularization(TRIPLES, "n3", 0.0).item() == 0.0


def test_n3_on_complex_uses_the_modulus_of_each_coordinate():
    m = build_model({"name": "complex", "dim": 2}, 2, 1)
    with torch.no_grad():  # rows are [re_1, re_2 | im_1, im_2]
        m.entity.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 1.0], [0.0, 0.0, 0.0, 2.0]]))
        m.relation.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    # moduli: e0 = (5, 1), e1 = (0, 2), r = (1, 0); N3 = 125 + 1 + 1 + 0 + 8 = 135
    got = m.regularization(torch.tensor([[0, 0, 1]]), "n3", 1.0)
    assert got.item() == pytest.approx(135.0, rel=1e-6)
    assert m.regularization(torch.tensor([[0, 0, 1]]), "l2", 1.0).item() == pytest.approx(25 + 1 + 1 + 4, rel=1e-6)


def test_n3_on_conve_leaves_out_the_entity_bias():
    m = build_model(_cfg(**{"model.name": "conve"})["model"], 3, 1)
    before = m.regularization(TRIPLES, "n3", 1.0).item()
    with torch.no_grad():
        m.entity.weight[:, 8] = 100.0  # the bias column
    assert m.regularization(TRIPLES, "n3", 1.0).item() == pytest.approx(before)


# ----------------------------------------------------------------------------------------
# Trainer in 1-N mode
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["bernoulli", "self_adversarial", "nscaching"])
def test_one_to_n_refuses_draw_only_samplers(toy_kg, tmp_path, sampler):
    cfg = _cfg(**{"train.mode": "one_to_n", "train.sampler": sampler, "model.name": "distmult"})
    with pytest.raises(ValueError) as err:
        _trainer(cfg, toy_kg, tmp_path)
    assert f"'{sampler}'" in str(err.value) and "train.sampler=uniform" in str(err.value)
    _trainer(_cfg(**{"train.sampler": sampler, "model.name": "distmult"}), toy_kg, tmp_path)  # fine with NS


def test_reciprocal_model_refuses_negative_sampling(toy_kg, tmp_path):
    with pytest.raises(ValueError, match="train.mode=one_to_n"):
        _trainer(_cfg(**{"model.name": "conve"}), toy_kg, tmp_path)
    _trainer(_cfg(**{"model.name": "conve", "train.mode": "one_to_n"}), toy_kg, tmp_path)


def test_bad_mode_or_regularizer_is_refused(toy_kg, tmp_path):
    # the config loader already refuses these values; the Trainer also does for configs built in code
    for section, key, value, match in (
        ("train", "mode", "1-N", "negative_sampling, one_to_n"),
        ("model", "regularizer", "n2", "none, n3 or l2"),
    ):
        cfg = _cfg()
        cfg[section][key] = value
        with pytest.raises(ValueError, match=match):
            _trainer(cfg, toy_kg, tmp_path)


@pytest.mark.parametrize(
    "sets, family",
    [
        ({"train.mode": "one_to_n", "model.name": "distmult"}, "softmax"),
        ({"train.mode": "one_to_n", "model.name": "distmult", "train.loss": "softplus"}, "softmax"),
        ({"train.loss": "margin"}, "margin"),
        ({"train.loss": "softplus"}, "softplus"),
        ({"train.loss": "nssa"}, "softplus"),
    ],
)
def test_loss_family(toy_kg, tmp_path, sets, family):
    assert _trainer(_cfg(**sets), toy_kg, tmp_path).loss_family == family


def _spy_first_step(trainer):
    """Run one step and return what the sampler got: loss_rand, the StepContext and the hand-computed L_rand."""
    seen = {}
    inner = trainer.sampler.total_loss

    def spy(loss_rand, ctx):
        if not seen:
            m, pos = ctx.model, ctx.pos
            with torch.no_grad():
                tails, heads = m.score_all_tails(pos[:, 0], pos[:, 1]), m.score_all_heads(pos[:, 1], pos[:, 2])
                eps = trainer.tcfg["label_smoothing"]
                ce = F.cross_entropy(torch.cat([tails, heads]), torch.cat([pos[:, 2], pos[:, 0]]), label_smoothing=eps)
                f = m.factors(pos)
                reg = trainer.reg_weight * sum(x.abs().pow(3).sum() for x in f) / len(pos)
                hrt = m.score_hrt(pos)
            seen.update(
                loss_rand=loss_rand.detach().clone(),
                ctx=ctx,
                want=(ce + reg).item(),
                hrt=hrt,
                reg=reg.item(),
                pos_scores=ctx.pos_scores.detach().clone(),
                pos_scores_head=ctx.pos_scores_head.detach().clone(),
                tails=tails.gather(1, pos[:, 2:3]).squeeze(1),
                heads=heads.gather(1, pos[:, 0:1]).squeeze(1),
            )
        return inner(loss_rand, ctx)

    trainer.sampler.total_loss = spy
    trainer.tcfg = {**trainer.tcfg, "epochs": 1}
    trainer._train_epoch(1)
    return seen


# scripted scores of the 6 toy entities: tail queries by head id, head queries by tail id
TAILS = [[3.0, 0.0, 1.0, 0.0, -1.0, 2.0], [0.0, 1.0, 4.0, 0.0, 0.0, 0.0]] + [[0.0] * 6] * 4
HEADS = [[0.0] * 6] * 2 + [[1.0, 2.0, 0.0, -2.0, 0.0, 0.0], [0.5, 2.0, 0.0, 3.0, 0.0, 1.0]] + [[0.0] * 6] * 2


def test_one_to_n_random_loss_by_hand(toy_kg, tmp_path):
    eps = 0.3
    trainer = _trainer(
        _cfg(**{"train.mode": "one_to_n", "model.name": "distmult", "train.label_smoothing": eps}), toy_kg, tmp_path
    )
    trainer.model.score_all_tails = lambda h, r: torch.tensor([TAILS[int(i)] for i in h])
    trainer.model.score_all_heads = lambda r, t: torch.tensor([HEADS[int(i)] for i in t])
    # tail queries (0, 0, ?) and (1, 1, ?), head queries (?, 0, 2) and (?, 1, 3)
    pos = torch.tensor([[0, 0, 2], [1, 1, 3]])
    queries = [(TAILS[0], 2), (TAILS[1], 3), (HEADS[2], 0), (HEADS[3], 1)]
    want = (
        sum(_lse(row) - sum(((1 - eps) * (j == y) + eps / 6) * s for j, s in enumerate(row)) for row, y in queries) / 4
    )
    loss, tail_scores, head_scores, _ = trainer._random_loss(pos)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert tail_scores.tolist() == [1.0, 0.0] and head_scores.tolist() == [1.0, 2.0]


def test_one_to_n_l_rand_is_cross_entropy_of_both_sides_plus_n3(toy_kg, tmp_path):
    cfg = _cfg(
        **{
            "train.mode": "one_to_n",
            "model.name": "complex",
            "train.label_smoothing": 0.2,
            "model.regularizer": "n3",
            "model.reg_weight": 0.05,
            "train.batch_size": 4,
        }
    )
    seen = _spy_first_step(_trainer(cfg, toy_kg, tmp_path))
    assert seen["loss_rand"].item() == pytest.approx(seen["want"], rel=1e-5)
    assert seen["reg"] > 1e-2  # the N3 term is in L_rand
    ctx = seen["ctx"]
    assert ctx.loss_family == "softmax" and len(ctx.pos) == 4
    assert torch.allclose(seen["pos_scores"], seen["tails"]) and torch.allclose(seen["pos_scores_head"], seen["heads"])
    # a one-score-per-triple model: both sides give S(h, r, t)
    assert torch.allclose(seen["pos_scores"], seen["hrt"], atol=1e-6)
    assert torch.allclose(seen["pos_scores_head"], seen["hrt"], atol=1e-6)


def test_one_to_n_head_scores_of_a_reciprocal_model_are_its_own(toy_kg, tmp_path):
    cfg = _cfg(
        **{
            "train.mode": "one_to_n",
            "model.name": "conve",
            "model.input_dropout": 0.0,
            "model.feature_dropout": 0.0,
            "model.hidden_dropout": 0.0,
            "model.regularizer": "l2",
            "model.reg_weight": 0.0,
            "train.batch_size": 6,
        }
    )
    seen = _spy_first_step(_trainer(cfg, toy_kg, tmp_path))
    assert seen["loss_rand"].item() == pytest.approx(seen["want"], rel=1e-5)
    assert torch.allclose(seen["pos_scores_head"], seen["heads"], atol=1e-5)
    assert torch.allclose(seen["pos_scores"], seen["tails"], atol=1e-5)
    assert not torch.allclose(seen["pos_scores_head"], seen["pos_scores"])  # S(t, r^-1, h) != S(h, r, t)


def test_negative_sampling_l_rand_gets_the_regularizer(toy_kg, tmp_path):
    cfg = _cfg(
        **{"model.name": "distmult", "train.loss": "softplus", "model.regularizer": "l2", "model.reg_weight": 0.5}
    )
    t = _trainer(cfg, toy_kg, tmp_path)
    got = {}
    inner = t.sampler.total_loss

    def spy(loss_rand, ctx):
        got.setdefault("l", loss_rand.item())
        got.setdefault("reg", ctx.model.regularization(ctx.pos, "l2", 0.5).item())
        got.setdefault("head", ctx.pos_scores_head)
        return inner(loss_rand, ctx)

    t.sampler.total_loss = spy
    t._train_epoch(1)
    assert got["head"] is None  # negative sampling: one positive score per row
    assert got["l"] > got["reg"] > 0.0
    assert t.loss_family == "softplus"


def test_complex_one_to_n_learns_the_toy_graph(toy_kg, tmp_path):
    cfg = _cfg(
        **{
            "train.mode": "one_to_n",
            "model.name": "complex",
            "train.label_smoothing": 0.1,
            "model.regularizer": "n3",
            "model.reg_weight": 0.01,
            "train.epochs": 30,
            "train.lr": 0.05,
            "train.batch_size": 6,
            "train.eval_every": 10,
            "train.checkpoint_every": 30,
        }
    )
    summary = _trainer(cfg, toy_kg, tmp_path).fit()
    rows = _trace(tmp_path)
    assert summary["epochs_run"] == 30 and len(rows) == 30
    losses = [float(r["loss"]) for r in rows]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.5 * losses[0]
    assert all(math.isfinite(float(r["valid_mrr"])) for r in rows if r["valid_mrr"])


# ----------------------------------------------------------------------------------------
# the DANS sampler in 1-N mode (UMLS, tiny settings as in test_dans_sampler.py)
# ----------------------------------------------------------------------------------------
FAST = {
    "diffusion.hidden": "[16, 16]",
    "diffusion.time_dim": 8,
    "diffusion.type_dim": 4,
    "diffusion.steps": 20,
    "train.batch_size": 1024,
    "dam.num_clusters": 5,
    "train.sampler": "dans",
}


def test_dans_trains_one_epoch_in_one_to_n_mode(umls, tmp_path):
    cfg = _cfg(**FAST, **{"train.mode": "one_to_n", "model.name": "complex", "train.epochs": 1})
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    summary = Trainer(cfg, umls, model, sampler, tmp_path, CPU, "redgnn", show_progress=False).fit()
    assert summary["epochs_run"] == 1 and math.isfinite(summary["best_valid_mrr"])
    (row,) = _trace(tmp_path)
    for col in ("loss", "l_rand", "l_dans", "l_diff"):
        assert math.isfinite(float(row[col])), col
    assert float(row["l_dans"]) > 0 and float(row["l_diff"]) > 0


def test_one_to_n_refuses_a_self_adversarial_base_sampler(umls, tmp_path):
    """1-N has no random negatives to weight: dans.base_sampler=self_adversarial would silently do nothing."""
    cfg = _cfg(**FAST, **{"train.mode": "one_to_n", "model.name": "complex", "dans.base_sampler": "self_adversarial"})
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    with pytest.raises(ValueError, match="dans.base_sampler=uniform"):
        Trainer(cfg, umls, model, sampler, tmp_path, CPU, "redgnn", show_progress=False)


@pytest.mark.parametrize("family", ["softmax", "margin"])
def test_dans_pushes_each_generated_negative_against_the_positive_of_its_side(umls, family):
    cfg = _cfg(
        **FAST, **{"train.mode": "one_to_n", "model.name": "distmult", "diffusion.update_every": 0, "dans.eta": 0.3}
    )
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    pos = torch.from_numpy(umls.train[:64])
    with torch.no_grad():
        tail = model.score_hrt(pos)
    head = tail + 0.5 + torch.linspace(0, 2, 64)  # a head-side score unlike the tail-side one
    seen = spy_chain(sampler)

    def run(pos_scores_head):
        state = sampler.generator.get_state()
        ctx = StepContext(pos, tail, model, 0.4, step=3, pos_scores_head=pos_scores_head, loss_family=family)
        loss, logs = sampler.total_loss(torch.tensor(0.7), ctx)
        sampler.generator.set_state(state)
        return loss, logs, dict(seen)

    loss, logs, chain = run(head)
    _, logs_tail, chain_tail = run(None)
    assert torch.equal(chain["neg"], chain_tail["neg"])  # the same draws both times
    # rebuild L_dans by hand from the states the chain returned
    head_side = chain["head_side"]
    assert head_side.any() and (~head_side).any()
    e = torch.where(head_side, pos[:, 0], pos[:, 2])
    assert torch.equal(chain["target"], e)
    with torch.no_grad():
        # DistMult: S = sum_i h_i r_i t_i; a generated embedding takes the replaced side's place
        ent, rel = model.entity.weight, model.relation.weight
        anchor = torch.where(head_side, pos[:, 2], pos[:, 0])
        s_neg = (ent[anchor] * rel[pos[:, 1]]).unsqueeze(1).mul(chain["neg"]).sum(-1)
    w = torch.tensor(dtm_weights_by_hand(0.4, random_dam(umls)["zeta"][e.numpy()], cfg["dtm"]))
    m = torch.tensor([cfg["dtm"]["gamma0"] * k for k in cfg["dtm"]["margin_scales"]])
    push = F.softplus if family == "softmax" else F.relu

    def l_dans(p):
        return (w * push(m - p.unsqueeze(1) + s_neg)).sum(1).mean().item()

    assert logs["l_dans"] == pytest.approx(l_dans(torch.where(head_side, head, tail)), rel=1e-5)
    assert logs_tail["l_dans"] == pytest.approx(l_dans(tail), rel=1e-5)
    assert logs["l_dans"] < logs_tail["l_dans"]  # the head rows' positives score higher: less to push
    assert loss.item() == pytest.approx(0.7 * 0.7 + 0.3 * logs["l_dans"], rel=1e-5)


# ----------------------------------------------------------------------------------------
# anchor diagnostic
# ----------------------------------------------------------------------------------------
# 5 entities, 1 relation. Test triples: (0, r, 1): the tail-side anchor 0 outscores the answer, the head-side
# anchor 1 ties it; (2, r, 2): the anchor is the answer; (3, r, 4): the tail-side anchor 3 outscores the
# answer but (3, r, 3) is a true triple, so it is filtered.
TRUE = np.array([[0, 0, 1], [0, 0, 2], [2, 0, 2], [3, 0, 3], [3, 0, 4]])
TEST = np.array([[0, 0, 1], [2, 0, 2], [3, 0, 4]])
TAIL_SCORES = {0: [5.0, 3.0, 1.0, 0.0, 0.0], 2: [0.0, 0.0, 1.0, 0.0, 0.0], 3: [0.0, 0.0, 0.0, 9.0, 4.0]}
HEAD_SCORES = {1: [2.0, 2.0, 0.0, 3.0, 0.0], 2: [0.0, 0.0, 1.0, 0.0, 0.0], 4: [0.0, 0.0, 0.0, 1.0, 0.0]}


def _scripted_model():
    model = build_model({"name": "distmult", "dim": 2}, 5, 1)
    model.score_all_tails = lambda h, r: torch.tensor([TAIL_SCORES[int(i)] for i in h])
    model.score_all_heads = lambda r, t: torch.tensor([HEAD_SCORES[int(i)] for i in t])
    return model


def test_anchor_diagnostic_by_hand():
    result = rank_triples(_scripted_model(), TEST, FilterIndex(TRUE, 5, 1))
    # realistic ranks: tail 2, 1, 1 (entity 3 of the last one filtered); head 2.5 (3 above, 1 tied), 1, 1
    assert result.realistic("tail").tolist() == [2.0, 1.0, 1.0]
    assert result.realistic("head").tolist() == [2.5, 1.0, 1.0]
    assert result.anchor_gt["tail"].tolist() == [True, False, False]
    assert result.anchor_ge["head"].tolist() == [True, False, False] and not result.anchor_gt["head"].any()
    diag = anchor_diagnostic(result)
    assert diag["anchor_outscores_answer"] == pytest.approx(1 / 6)
    # anchor removed: tail 1, 1, 1; head 2 (the tie counted half), 1, 1
    assert diag["mrr_anchor_removed"] == pytest.approx((5 + 0.5) / 6)
    assert "diagnostic only" in diag["note"] and "by_relation" not in diag
    # per relation (ids given as if triple 0 had relation r and triples 1-2 relation s): r holds both rankings of
    # triple 0 (tail rank 2 with the anchor above, head 2.5 with it tied), s the four rank-1 ones
    by = anchor_diagnostic(result, np.array([0, 1, 1]), ["r", "s"])["by_relation"]
    assert by["r"] == pytest.approx(
        {
            "rankings": 2,
            "anchor_outscores_answer": 0.5,
            "mrr": (1 / 2 + 1 / 2.5) / 2,
            "mrr_anchor_removed": (1 + 1 / 2) / 2,
        }
    )
    assert by["s"] == pytest.approx(
        {"rankings": 4, "anchor_outscores_answer": 0.0, "mrr": 1.0, "mrr_anchor_removed": 1.0}
    )


def test_anchor_competition_skips_the_answer_and_filtered_answers():
    scores = torch.tensor([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    targets = torch.tensor([1, 0, 1, 1])
    anchors = torch.tensor([0, 0, 0, 0])
    mask = torch.zeros(4, 3, dtype=torch.bool)
    mask[2, 0] = True  # the anchor of row 2 is a filtered true answer
    gt, ge = anchor_competition(scores, targets, anchors, mask)
    assert gt.tolist() == [True, False, False, False]  # row 1: the anchor is the answer
    assert ge.tolist() == [True, False, False, True]  # row 3: a tie
    gt, ge = anchor_competition(scores, targets, anchors, None)
    assert gt.tolist() == [True, False, True, False]


def test_evaluate_reports_the_anchor_diagnostic(toy_kg):
    model = build_model({"name": "transe", "dim": 8}, toy_kg.num_entities, toy_kg.num_relations)
    metrics, result = evaluate(model, toy_kg, "test", "kge")
    diag = metrics["anchor_diagnostic"]
    assert diag == anchor_diagnostic(result, toy_kg.test[:, 1], toy_kg.relations)
    assert set(diag["by_relation"]) <= set(toy_kg.relations)
    assert sum(v["rankings"] for v in diag["by_relation"].values()) == result.num_ranked
    assert 0.0 <= diag["anchor_outscores_answer"] <= 1.0
    assert metrics["mrr"] <= diag["mrr_anchor_removed"] <= 1.0  # removing a candidate never lowers a rank


# ----------------------------------------------------------------------------------------
# diffusion side flag
# ----------------------------------------------------------------------------------------
def _diffusion(side_flag, condition="ccd"):
    d = ConditionalDiffusion(
        6, 4, num_clusters=2, steps=10, hidden=[8], time_dim=4, type_dim=3, condition=condition, side_flag=side_flag
    )
    d.ensure_scale(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)))
    return d


@pytest.mark.parametrize("condition, width", [("ccd", 3 + 4), ("query", 4)])
def test_side_flag_adds_a_plus_minus_one_column(condition, width):
    target, query = torch.tensor([0, 1, 2, 3]), torch.randn(4, 4)
    head_side = torch.tensor([True, False, True, False])
    plain = _diffusion(False, condition).condition(target, query)
    assert plain.shape == (4, width)
    flagged = _diffusion(True, condition)
    c = flagged.condition(target, query, head_side)
    assert c.shape == (4, width + 1)
    assert c[:, -1].tolist() == [1.0, -1.0, 1.0, -1.0]
    assert torch.allclose(c[:, -1 - 4 : -1], query / flagged.data_scale)
    # the denoiser takes the wider condition: a loss and a chain run
    g = torch.Generator().manual_seed(0)
    assert math.isfinite(flagged.loss(torch.randn(4, 4), target, query, g, head_side).item())
    assert flagged.sample(target, query, g, [0], 0, head_side).shape == (4, 1, 4)


def test_side_flag_without_the_side_is_refused():
    d = _diffusion(True)
    with pytest.raises(ValueError, match="pass head_side"):
        d.condition(torch.tensor([0, 1]), torch.randn(2, 4))
    with pytest.raises(ValueError, match="side_flag"):
        d.loss(torch.randn(2, 4), torch.tensor([0, 1]), torch.randn(2, 4), torch.Generator().manual_seed(0))


def test_side_flag_from_config_and_in_the_architecture_keys():
    on = ConditionalDiffusion.from_config(6, 4, None, None, tiny_config(**{"diffusion.side_flag": "true"}))
    off = ConditionalDiffusion.from_config(6, 4, None, None, tiny_config(**{"diffusion.side_flag": "false"}))
    assert on.side_flag and not off.side_flag and on.init_args["side_flag"] is True
    # one more condition column: more denoiser weights
    assert sum(p.numel() for p in on.denoiser.parameters()) > sum(p.numel() for p in off.denoiser.parameters())
