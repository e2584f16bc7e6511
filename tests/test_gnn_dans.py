"""DANS-KGC on RED-GNN: the query-conditioned candidate space computed by hand on the toy graph,
snapping against per-query tables, which parameters each kind of negative pushes, the warm start's pairs never
seeing their own edge, the uniform-term control's known answer, exact resume of DANS-KGC on RED-GNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dans_kgc.diffusion import graph_warm_start_pairs, snap_to_entities
from dans_kgc.evaluation import FilterIndex
from dans_kgc.losses import band_loss
from dans_kgc.models import build_model
from dans_kgc.sampling import StepContext, build_sampler
from dans_kgc.training import CHECKPOINT, Trainer, build_run
from dans_kgc.utils import set_threads
from tests.conftest import random_dam, tiny_config
from tests.test_gnn import READOUT, REL, RG, W_OUT, _msg, _toy_model


# ------------------------------------------------------------------------------------------
# the space: known answer on the toy graph
# ------------------------------------------------------------------------------------------
def _toy_states_query0_r0() -> list[float]:
    """Final (2-layer) states of entities 0..3 for the query (0, r0, ?), by hand as in test_gnn's known answer."""
    q1, q2 = REL[0][0], REL[1][0]
    h1 = {0: W_OUT[0] * _msg(0.0, REL[0][4], q1), 1: W_OUT[0] * _msg(0.0, REL[0][0], q1)}
    return [
        W_OUT[1] * (_msg(h1[0], REL[1][4], q2) + _msg(h1[1], REL[1][2], q2)),
        W_OUT[1] * (_msg(h1[0], REL[1][0], q2) + _msg(h1[1], REL[1][4], q2)),
        W_OUT[1] * _msg(h1[1], REL[1][1], q2),
        0.0,
    ]


def test_candidate_space_of_a_tail_query_by_hand():
    """(0, r0, 1), tail side: candidates = every entity's final state under the query (0 for the unreached 3),
    target = the answer's state, query = the anchor's state + the last layer's embedding of r0."""
    model = _toy_model(2)
    h = _toy_states_query0_r0()
    space = model.negative_space(torch.tensor([[0, 0, 1]]), torch.tensor([False]))
    assert space.per_query and space.candidates.shape == (1, 4, 1)
    assert space.candidates[0, :, 0].tolist() == pytest.approx(h, rel=1e-6, abs=1e-6)
    assert space.target.item() == pytest.approx(h[1], rel=1e-6)
    assert space.query.item() == pytest.approx(h[0] + REL[1][0], rel=1e-6)
    # the read-out of a candidate state is exactly the score evaluation ranks with
    scores = model.score_tail_embeddings(torch.tensor([0]), torch.tensor([0]), space.candidates)
    assert torch.allclose(scores, model.score_all_tails(torch.tensor([0]), torch.tensor([0])), atol=1e-6)
    assert scores[0].tolist() == pytest.approx([READOUT * v for v in h], rel=1e-6, abs=1e-6)


def test_head_side_is_the_inverse_relation_query_from_the_tail():
    model = _toy_model(2)
    space = model.negative_space(torch.tensor([[0, 0, 1]]), torch.tensor([True]))  # (?, r0, 1): from 1 along r0^-1
    tail_view = model.negative_space(torch.tensor([[1, 2, 0]]), torch.tensor([False]))  # (1, r0 + R, ?)
    assert torch.equal(space.candidates, tail_view.candidates) and torch.equal(space.target, tail_view.target)
    assert torch.equal(space.query, tail_view.query)
    scores = model.score_head_embeddings(torch.tensor([0]), torch.tensor([1]), space.candidates)
    assert torch.allclose(scores, model.score_all_heads(torch.tensor([0]), torch.tensor([1])), atol=1e-6)


def test_vectors_gather_each_rows_own_candidates():
    model = _toy_model(2)
    pos = torch.tensor([[0, 0, 1], [1, 1, 2]])
    space = model.negative_space(pos, torch.tensor([False, True]))
    ids = torch.tensor([[2, 0], [3, 1]])
    got = space.vectors(ids)
    for b in range(2):
        for k in range(2):
            assert torch.equal(got[b, k], space.candidates[b, ids[b, k]])


# ------------------------------------------------------------------------------------------
# snapping against one candidate table per query
# ------------------------------------------------------------------------------------------
def test_snapping_searches_each_rows_own_table_and_skips_known_answers():
    tables = torch.tensor(
        [
            [[0.0], [1.0], [5.0], [9.0]],  # row 0's candidates
            [[9.0], [5.0], [1.0], [0.0]],
        ]
    )  # row 1's: the same values, reversed
    pos = torch.tensor([[0, 0, 1], [2, 0, 3]])
    neg = torch.tensor([[[0.9], [8.0]], [[0.9], [4.0]]])
    filt = FilterIndex(np.array([[0, 0, 1], [2, 0, 3]]), 4, 1)  # the answers 1 (row 0) and 3 (row 1) are known
    ids = snap_to_entities(neg, pos, torch.tensor([False, False]), tables, filt)
    # row 0: 0.9 is nearest to entity 1 (1.0), a known answer -> entity 0 (0.0); 8.0 -> entity 3 (9.0)
    # row 1: 0.9 is nearest to entity 2 (1.0) in its own table; 4.0 -> entity 1 (5.0)
    assert ids.tolist() == [[0, 3], [2, 1]]


# ------------------------------------------------------------------------------------------
# which parameters L_dans moves
# ------------------------------------------------------------------------------------------
def _gnn_dans(umls, negatives: str):
    cfg = tiny_config(
        **{
            **RG,
            "train.sampler": "dans",
            "dans.eta": 1.0,
            "diffusion.negatives": negatives,
            "diffusion.update_every": 0,
        }
    )
    dam = random_dam(umls)
    model, sampler = build_run(cfg, umls, zeta=dam["zeta"], clusters=dam["clusters"])
    model.attach_graph(torch.from_numpy(umls.train))
    return model, sampler


@pytest.mark.parametrize("negatives", ["continuous", "snapped"])
def test_snapped_negatives_push_the_gnn_continuous_ones_only_the_readout(umls, negatives):
    """A continuous negative is a fixed vector: L_dans moves only the read-out w (with a detached positive score).
    A snapped one is a real candidate's state under the query, so L_dans reaches the propagation's weights."""
    model, sampler = _gnn_dans(umls, negatives)
    pos = torch.from_numpy(umls.train[:16])
    pos_scores = model.score_all_tails(pos[:, 0], pos[:, 1]).gather(1, pos[:, 2:3]).squeeze(1).detach()
    head_scores = model.score_all_heads(pos[:, 1], pos[:, 2]).gather(1, pos[:, 0:1]).squeeze(1).detach()
    ctx = StepContext(
        pos=pos,
        pos_scores=pos_scores,
        model=model,
        progress=0.9,
        step=1,
        pos_scores_head=head_scores,
        loss_family="softmax",
        loss_reduction="sum",
    )
    loss, logs = sampler.total_loss(torch.zeros(()), ctx)
    assert logs["l_dans"] > 0.0 and logs["l_diff"] == 0.0
    loss.backward()
    assert model.readout.weight.grad is not None and model.readout.weight.grad.abs().sum() > 0
    layer_grad = model.layers[0].w_out.weight.grad
    if negatives == "snapped":
        assert layer_grad is not None and layer_grad.abs().sum() > 0
    else:
        assert layer_grad is None


# ------------------------------------------------------------------------------------------
# the warm start's pairs: a triple is never propagated over a graph holding its own edge
# ------------------------------------------------------------------------------------------
def test_warm_start_pairs_never_see_their_own_edge(umls, monkeypatch):
    cfg = tiny_config(**{**RG, "train.fact_ratio": 0.75})
    model = build_model(cfg["model"], umls.num_entities, umls.num_relations)
    train_keys = {tuple(t) for t in umls.train.tolist()}
    current: dict = {}
    seen: list = []
    attach, space_of = model.attach_graph, model.negative_space

    def recording_attach(triples):
        current["graph"] = {tuple(t) for t in triples.tolist()}
        attach(triples)

    def recording_space(pos, head_side):
        for t in pos.tolist():
            assert tuple(t) not in current["graph"], t
        seen.extend(map(tuple, pos.tolist()))
        return space_of(pos, head_side)

    monkeypatch.setattr(model, "attach_graph", recording_attach)
    monkeypatch.setattr(model, "negative_space", recording_space)
    query, answer = graph_warm_start_pairs(model, umls, cfg, torch.Generator().manual_seed(0))
    n = len(umls.train)
    assert query.shape == answer.shape == (2 * n, cfg["model"]["dim"])
    assert sorted(seen) == sorted([tuple(t) for t in umls.train.tolist()] * 2)  # each triple, each side, once
    assert current["graph"] == train_keys  # the model leaves with the full training graph
    # without fact_ratio the graph is the training graph, as training propagates over
    cfg0 = tiny_config(**{**RG, "train.fact_ratio": 0.0})
    monkeypatch.setattr(model, "negative_space", space_of)
    graph_warm_start_pairs(model, umls, cfg0, torch.Generator().manual_seed(0))
    assert current["graph"] == train_keys


# ------------------------------------------------------------------------------------------
# the uniform-term control
# ------------------------------------------------------------------------------------------
def test_uniform_term_known_answer_on_transe(umls):
    """eta = 1, margin loss: the term is mean_b mean_k relu(margin - S(pos) + S(h, r, e_k)) over the uniform
    entities e_k it draws on each row's side; replayed from a copy of its generator."""
    cfg = tiny_config(
        **{
            "train.sampler": "uniform_term",
            "samplers.uniform_term.eta": 1.0,
            "samplers.uniform_term.negatives": 3,
            "samplers.uniform_term.margin": 2.0,
        }
    )
    model, sampler = build_run(cfg, umls)
    pos = torch.from_numpy(umls.train[:8])
    replay = torch.Generator()
    replay.set_state(sampler.generator.get_state())
    pos_scores = model.score_hrt(pos)
    loss, logs = sampler.total_loss(torch.tensor(5.0), StepContext(pos, pos_scores, model, 0.3, step=0))
    head_side = torch.rand(8, generator=replay) < 0.5
    ids = torch.randint(umls.num_entities, (8, 3), generator=replay)
    expected = 0.0
    for b in range(8):
        for k in range(3):
            h, r, t = pos[b].tolist()
            neg = [int(ids[b, k]), r, t] if head_side[b] else [h, r, int(ids[b, k])]
            expected += max(
                0.0, 2.0 - float(pos_scores[b].detach()) + float(model.score_hrt(torch.tensor(neg)).detach())
            )
    expected /= 8 * 3
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5) and logs["l_term"] == pytest.approx(
        expected, rel=1e-5
    )


def test_uniform_term_refuses_bad_settings(umls):
    cfg = tiny_config(**{"train.sampler": "uniform_term", "samplers.uniform_term.negatives": 0})
    with pytest.raises(ValueError, match="samplers.uniform_term.negatives"):
        build_sampler("uniform_term", umls, cfg, torch.Generator())


def test_band_loss_sum_reduction_follows_the_batch():
    pos, neg = torch.tensor([1.0, 0.5, -0.2]), torch.tensor([[0.3, 2.0], [0.1, -1.0], [0.0, 0.4]])
    w, m = torch.full((3, 2), 0.5), torch.tensor([1.0, 0.8])
    mean = band_loss("softmax", pos, neg, w, m)
    assert float(band_loss("softmax", pos, neg, w, m, "sum")) == pytest.approx(3 * float(mean))


# ------------------------------------------------------------------------------------------
# DANS-KGC trains on RED-GNN: same seed, same metrics; exact resume
# ------------------------------------------------------------------------------------------
def _fit_dans(umls, out, epochs, resume=False, max_seconds=0):
    cfg = tiny_config(
        **{
            **RG,
            "train.max_seconds": max_seconds,
            "train.sampler": "dans",
            "diffusion.negatives": "mixed",
            "diffusion.steps": 10,
            "diffusion.sampling_steps": 4,
            "diffusion.hidden": [16, 16],
            "diagnostics.triples": 16,
            "train.epochs": epochs,
            "train.eval_every": 1,
            "train.checkpoint_every": 1,
        }
    )
    set_threads(cfg["threads"])
    dam = random_dam(umls)
    model, sampler = build_run(cfg, umls, zeta=dam["zeta"], clusters=dam["clusters"])
    trainer = Trainer(cfg, umls, model, sampler, out, torch.device("cpu"), "redgnn", show_progress=False)
    return trainer, trainer.fit(resume=resume)


def test_dans_on_redgnn_same_seed_same_metrics_and_exact_resume(umls, tmp_path):
    full, s_full = _fit_dans(umls, tmp_path / "full", 2)
    assert all(np.isfinite(r["l_dans"]) and r["l_dans"] > 0 for r in full.history)
    assert "band4_quantile" in full.history[-1]  # the hardness probe runs on the graph backbone too
    again, _ = _fit_dans(umls, tmp_path / "again", 2)
    assert [r["valid_mrr"] for r in again.history] == [r["valid_mrr"] for r in full.history]
    # "killed" after epoch 1 of 2 (the time budget stops it there; the curriculum's progress is epoch / 2)
    cut, _ = _fit_dans(umls, tmp_path / "cut", 2, max_seconds=1e-6)
    assert cut.epoch == 1 and (tmp_path / "cut" / CHECKPOINT).exists()
    resumed, s_res = _fit_dans(umls, tmp_path / "cut", 2, resume=True)
    assert s_res["resumed_from_epoch"] == 1 and s_res["steps"] == s_full["steps"]
    assert [r["valid_mrr"] for r in resumed.history] == [r["valid_mrr"] for r in full.history]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    for k, v in full.sampler.state_dict().items():
        assert torch.equal(v, resumed.sampler.state_dict()[k]), k
