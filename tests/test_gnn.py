"""RED-GNN backbone: propagation computed by hand on a toy graph, the reciprocal head side, batching
invariance, the seeded fact/query re-split, determinism, exact resume and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dans_kgc.cli import main
from dans_kgc.models import build_model
from dans_kgc.models.gnn import RedGNN, UnsupportedByGraphBackbone
from dans_kgc.training import CHECKPOINT, Trainer, build_run, fact_split
from dans_kgc.utils import set_threads
from tests.conftest import rng_triples, tiny_config

# toy graph: 4 entities, 2 relations; entity 3 has no edge at all
TOY = torch.tensor([[0, 0, 1], [1, 1, 2]])
REL = [
    [1.0, 2.0, 3.0, 4.0, 0.5],  # layer 1: relations 0, 1, inverses 2, 3, identity 4
    [-1.0, 1.0, 0.5, 0.25, 0.0],
]  # layer 2
W_OUT, READOUT = [2.0, 1.5], 3.0


def _toy_model(layers: int = 2, blocks: bool = False) -> RedGNN:
    """dim 1, attention width 1, identity activation, no gate; every weight set by hand:
    alpha = sigmoid(relu(h_s + h_r + h_{r_q})), layer l multiplies its aggregate by W_OUT[l]."""
    model = RedGNN(4, 2, dim=1, gnn_layers=layers, attn_dim=1, activation="identity", gnn_gate="none")
    with torch.no_grad():
        for layer, rel, w in zip(model.layers, REL[:layers], W_OUT[:layers], strict=True):
            layer.relation.weight.copy_(torch.tensor(rel).unsqueeze(1))
            for lin in (layer.w_source, layer.w_relation, layer.w_query, layer.w_alpha):
                lin.weight.fill_(1.0)
            layer.w_query.bias.zero_()
            layer.w_alpha.bias.zero_()
            layer.w_out.weight.fill_(w)
        model.readout.weight.fill_(READOUT)
    model.attach_graph(TOY)
    model.block_aggregation = blocks
    return model.eval()


def _msg(h_s: float, h_r: float, h_q: float) -> float:
    sig = 1.0 / (1.0 + math.exp(-max(h_s + h_r + h_q, 0.0)))
    return sig * (h_s + h_r)


@pytest.mark.parametrize("blocks", [False, True])  # per-edge messages, or per-query attention blocks
def test_known_answer_on_a_toy_graph(blocks):
    """Query (0, r=0, ?). Layer 1 reaches {0 (identity), 1 (0 -r0-> 1)}; layer 2 adds 2 (1 -r1-> 2);
    3 is never reached and scores 0."""
    q1, q2 = REL[0][0], REL[1][0]  # the query relation's embedding in each layer
    h1 = {0: W_OUT[0] * _msg(0.0, REL[0][4], q1), 1: W_OUT[0] * _msg(0.0, REL[0][0], q1)}
    h2 = {
        0: W_OUT[1] * (_msg(h1[0], REL[1][4], q2) + _msg(h1[1], REL[1][2], q2)),  # identity + inverse of r0
        1: W_OUT[1] * (_msg(h1[0], REL[1][0], q2) + _msg(h1[1], REL[1][4], q2)),  # r0 from 0 + identity
        2: W_OUT[1] * _msg(h1[1], REL[1][1], q2),
    }  # r1 from 1
    one = _toy_model(1, blocks).score_all_tails(torch.tensor([0]), torch.tensor([0]))[0]
    assert one.tolist() == pytest.approx([READOUT * h1[0], READOUT * h1[1], 0.0, 0.0], rel=1e-6, abs=1e-6)
    two = _toy_model(2, blocks).score_all_tails(torch.tensor([0]), torch.tensor([0]))[0]
    assert two.tolist() == pytest.approx([READOUT * h2[0], READOUT * h2[1], READOUT * h2[2], 0.0], rel=1e-6, abs=1e-6)
    assert all(v != 0.0 for v in two[:3].tolist())  # reached entities really score (the zero is the unreached one)


def test_head_query_is_the_tail_query_of_the_inverse_relation():
    """(?, r0, 1) propagates from 1: one hop back along the inverse edge 1 -r0^-1-> 0 reaches 0."""
    model = _toy_model(1)
    head = model.score_all_heads(torch.tensor([0]), torch.tensor([1]))
    assert torch.equal(head, model.score_all_tails(torch.tensor([1]), torch.tensor([0 + 2])))
    q = REL[0][2]  # the query relation is r0's inverse
    expected = [
        READOUT * W_OUT[0] * _msg(0.0, REL[0][2], q),
        READOUT * W_OUT[0] * _msg(0.0, REL[0][4], q),
        READOUT * W_OUT[0] * _msg(0.0, REL[0][1], q),
        0.0,
    ]  # 1 -r1-> 2 is reached too
    assert head[0].tolist() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert model.score_reciprocal(torch.tensor([[0, 0, 1]])).item() == pytest.approx(expected[0], rel=1e-6, abs=1e-6)


def _random_model(gate: str = "gru", blocks: bool | None = None) -> RedGNN:
    torch.manual_seed(0)
    model = RedGNN(30, 4, dim=8, gnn_layers=3, attn_dim=3, activation="tanh", gnn_gate=gate)
    model.attach_graph(torch.from_numpy(rng_triples(30, 4, 80)))
    model.block_aggregation = blocks
    return model.eval()


@pytest.mark.parametrize("gate", ["gru", "none"])
@pytest.mark.parametrize("blocks", [False, True])
def test_batching_does_not_change_any_score(gate, blocks):
    model = _random_model(gate, blocks)
    heads, rels = torch.tensor([3, 3, 7, 0, 3, 29]), torch.tensor([1, 2, 0, 3, 1, 5])  # repeats and an inverse
    batch = model.score_all_tails(heads, rels)
    for i in range(len(heads)):
        alone = model.score_all_tails(heads[i : i + 1], rels[i : i + 1])
        assert torch.allclose(batch[i : i + 1], alone, atol=1e-6), i


def test_both_aggregations_give_the_same_scores_and_gradients():
    model = _random_model()
    model.train()  # dropout is 0: deterministic, but gradients flow as in training
    heads, rels = torch.tensor([3, 7, 0, 29]), torch.tensor([1, 0, 3, 5])
    grads = []
    for blocks in (False, True):
        model.block_aggregation = blocks
        model.zero_grad()
        scores = model.score_all_tails(heads, rels)
        scores.logsumexp(1).sum().backward()
        grads.append((scores.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_fact_split_is_seeded_disjoint_and_complete():
    triples = torch.from_numpy(rng_triples(50, 5, 200))
    a = fact_split(triples, 0.75, torch.Generator().manual_seed(3))
    b = fact_split(triples, 0.75, torch.Generator().manual_seed(3))
    c = fact_split(triples, 0.75, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert len(a[0]) == 150 and len(a[1]) == 50
    rows = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert rows(torch.cat(a)) == rows(triples)  # complete, and (no row twice) disjoint


def test_embedding_paths_refuse_with_one_line():
    model = _random_model()
    for call in (
        lambda: model.entity,
        lambda: model.query_embedding(torch.tensor([0]), torch.tensor([0])),
        lambda: model.regularization(torch.tensor([[0, 0, 1]]), "n3", 0.1),
    ):
        with pytest.raises(UnsupportedByGraphBackbone, match="model.name=redgnn") as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.raises(UnsupportedByGraphBackbone, match="attach_graph"):
        RedGNN(5, 1, dim=4).score_all_tails(torch.tensor([0]), torch.tensor([0]))


def test_graph_is_data_not_state():
    """The propagation graph never enters a checkpoint: a saved model loads into a fresh one."""
    model = _random_model()
    state = model.state_dict()
    assert not any(k.startswith("edge_") for k in state)
    fresh = build_model({"name": "redgnn", "dim": 8, "gnn_layers": 3, "attn_dim": 3, "activation": "tanh"}, 30, 4)
    fresh.load_state_dict(state)


# ------------------------------------------------------------------------------------------
# training: determinism, the fact re-split, exact resume
# ------------------------------------------------------------------------------------------
RG = {
    "model.name": "redgnn",
    "model.dim": 8,
    "model.gnn_layers": 2,
    "model.attn_dim": 3,
    "model.gnn_dropout": 0.1,
    "train.mode": "one_to_n",
    "train.batch_size": 256,
    "train.lr": 0.005,
    "train.weight_decay": 1e-4,
    "train.lr_decay": 0.9,
    "train.loss_reduction": "sum",
    "train.fact_ratio": 0.9,
    "train.sampler": "uniform",
    "train.init_from_pretrained": False,
    "data.max_eval_triples": 100,
}


def _fit(cfg, kg, out, resume=False):
    # threads as the CLI sets them (dans_kgc.pipeline.runtime; tiny_config: 1). With more intra-op threads two processes
    # can differ in the last bit of the GRU's weight gradient (a GEMM over ~10^4 node rows).
    set_threads(cfg["threads"])
    model, sampler = build_run(cfg, kg)
    trainer = Trainer(cfg, kg, model, sampler, out, torch.device("cpu"), "redgnn", show_progress=False)
    return trainer, trainer.fit(resume=resume)


def test_fact_ratio_trains_on_the_rest_and_propagates_over_the_full_graph_at_validation(umls, tmp_path):
    cfg = tiny_config(**{**RG, "train.epochs": 1})
    model, sampler = build_run(cfg, umls)
    trainer = Trainer(cfg, umls, model, sampler, tmp_path, torch.device("cpu"), "redgnn", show_progress=False)
    queries = trainer._epoch_queries()
    n = len(umls.train)
    assert len(queries) == n - int(0.9 * n)
    assert model.edge_rel.numel() == 2 * int(0.9 * n) + umls.num_entities  # graph = the other 90%
    trainer.validate()
    assert model.edge_rel.numel() == 2 * n + umls.num_entities


def test_fact_ratio_is_refused_for_an_embedding_backbone(umls, tmp_path):
    cfg = tiny_config(**{"train.fact_ratio": 0.5})
    with pytest.raises(ValueError, match="train.fact_ratio"):
        _fit(cfg, umls, tmp_path)


def test_same_seed_same_metrics_and_exact_resume(umls, tmp_path):
    full_cfg = tiny_config(**{**RG, "train.epochs": 2, "train.eval_every": 1, "train.checkpoint_every": 1})
    full, s_full = _fit(full_cfg, umls, tmp_path / "full")
    again, s_again = _fit(full_cfg, umls, tmp_path / "again")
    assert s_again["best_valid_mrr"] == s_full["best_valid_mrr"]
    assert [r["valid_mrr"] for r in again.history] == [r["valid_mrr"] for r in full.history]
    # "killed" after epoch 1, then resumed by a fresh process with the full budget
    _fit(
        tiny_config(**{**RG, "train.epochs": 1, "train.eval_every": 1, "train.checkpoint_every": 1}),
        umls,
        tmp_path / "cut",
    )
    assert (tmp_path / "cut" / CHECKPOINT).exists()
    resumed, s_res = _fit(full_cfg, umls, tmp_path / "cut", resume=True)
    assert s_res["resumed_from_epoch"] == 1 and s_res["steps"] == s_full["steps"]
    assert [r["valid_mrr"] for r in resumed.history] == [r["valid_mrr"] for r in full.history]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.005 * 0.9)  # epoch 2 ran at lr * decay


def test_cli_trains_and_evaluates_redgnn(in_tmp):
    sets = [
        a
        for k, v in {**RG, "threads": 1, "train.epochs": 1, "train.eval_every": 1}.items()
        for a in ("--set", f"{k}={v}")
    ]
    assert main(["data", "fetch", "umls"]) == 0
    assert main(["train", "--dataset", "umls", "--out", "runs/rg", "--quiet", *sets]) == 0
    assert main(["evaluate", "--run", "runs/rg", "--quiet"]) == 0
    metrics = json.loads((in_tmp / "runs/rg/metrics_test.json").read_text())
    assert metrics["backbone"]["name"] == "redgnn" and metrics["backbone"]["label"] == "RED-GNN (1-N)"
    assert metrics["num_ranked"] == 2 * 100 and 0.0 < metrics["mrr"] <= 1.0
    assert "anchor_outscores_answer" in metrics["anchor_diagnostic"]
    run = json.loads((in_tmp / "runs/rg/run.json").read_text())
    assert run["provenance"]["config"]["train"]["fact_ratio"] == 0.9


def test_cli_refuses_negative_sampling_with_one_line(in_tmp, caplog):
    assert main(["data", "fetch", "umls"]) == 0
    assert (
        main(
            [
                "train",
                "--dataset",
                "umls",
                "--out",
                "runs/ns",
                "--quiet",
                "--set",
                "model.name=redgnn",
                "--set",
                "train.init_from_pretrained=false",
                "--set",
                "train.epochs=1",
            ]
        )
        == 2
    )
    assert "use train.mode=one_to_n" in caplog.text


def test_scores_are_finite_and_unreached_is_zero_on_a_real_graph(umls):
    model = build_model({"name": "redgnn", "dim": 8, "gnn_layers": 1}, umls.num_entities, umls.num_relations).eval()
    model.attach_graph(torch.from_numpy(umls.train))
    scores = model.score_all_tails(torch.tensor([0]), torch.tensor([0]))[0]
    neighbours = set(np.concatenate([umls.train[umls.train[:, 0] == 0, 2], umls.train[umls.train[:, 2] == 0, 0]]))
    unreached = [e for e in range(umls.num_entities) if e not in neighbours and e != 0]
    assert torch.isfinite(scores).all() and bool((scores[unreached] == 0).all())
