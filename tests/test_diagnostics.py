"""Diagnostics of the negatives (dans_kgc/diagnostics.py, `dans-kgc diagnose`, the trace's band columns):
known answers on a toy KG with a hand-set TransE, false negatives by split, the CLI on runs and warm
starts, and that measuring during training leaves training (and its resume) unchanged."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import torch
from conftest import random_dam, tiny_config
from torch import nn

from dans_kgc import cli
from dans_kgc.band_probe import STREAM_DENOISER, STREAM_TRIPLES, band_hardness, diagnostics_generator, sample_triples
from dans_kgc.checkpoints import BEST_MODEL, load_trained_model
from dans_kgc.datasets import load_dataset
from dans_kgc.datasets.loading import KnowledgeGraph
from dans_kgc.diagnostics import (
    KnownTriples,
    denoiser_quality,
    false_negative_shares,
    false_negatives,
    negative_hardness,
    render_markdown,
    run_diagnostics,
)
from dans_kgc.diffusion import load_diffusion
from dans_kgc.models.translational import TransE
from dans_kgc.sampling.base import NegativeSampler
from dans_kgc.sampling.dans import DiffusionSampler
from dans_kgc.training import CHECKPOINT, Trainer, build_run

torch.set_num_threads(1)

# toy_kg (conftest): entities a..f = ids 0..5, relations r = 0, s = 1; train (a r b) (b r c) (c r d) (a s c)
# (d s e) (e r f); valid (a r c); test (b r d) (a s e)
A, B, C, D, E, F = range(6)
R, S = 0, 1


def line_transe(kg: KnowledgeGraph) -> TransE:
    """TransE-L1 in one dimension: entity i sits at x = i, relation r at +1, s at +2 (S = -|h + r - t|)."""
    model = TransE(kg.num_entities, kg.num_relations, 1, p_norm=1, gamma=0.0, normalize_entities=False)
    with torch.no_grad():
        model.entity.weight.copy_(torch.arange(kg.num_entities, dtype=torch.float32).unsqueeze(1))
        model.relation.weight.copy_(torch.tensor([[1.0], [2.0]]))
    return model.eval()


class FixedBands(nn.Module):
    """A stand-in diffusion sampler whose bands sit at fixed points of the line, whatever the query."""

    def __init__(self, points, margins):
        super().__init__()
        self.points, self.margins, self.keep = points, torch.tensor(margins), list(range(len(points)))

    def generate(self, pos, model, head_side, snap=None, generator=None):
        target = torch.where(head_side, pos[:, 0], pos[:, 2])
        neg = torch.tensor(self.points, dtype=torch.float32).view(1, -1, 1).expand(len(pos), -1, -1)
        space = model.negative_space(pos, head_side)
        return {"neg": neg, "target": target, "head_side": head_side, "query": space.query, "space": space}

    def score_negatives(self, model, pos, head_side, neg):
        return DiffusionSampler.score_negatives(self, model, pos, head_side, neg)

    def band_margins(self):
        return self.margins


def test_band_hardness_known_answer():
    # one row; 4 entities with scores 0, -1, -2, -3 (the answer: 0); negatives at -0.5, 0 (a tie with the answer), -2.5
    all_scores = torch.tensor([[0.0, -1.0, -2.0, -3.0]])
    out = band_hardness(
        torch.tensor([0.0]), torch.tensor([[-0.5, 0.0, -2.5]]), all_scores, torch.tensor([0.3, 0.3, 3.0])
    )
    assert out["quantile"].tolist() == pytest.approx([3 / 4, 3 / 4, 1 / 4])  # strictly below the negative
    assert out["active"].tolist() == [0.0, 1.0, 1.0]  # S(neg) > S(pos) - margin
    assert out["outscore"].tolist() == [0.0, 0.0, 0.0]  # a tie does not outscore
    assert out["gap"].tolist() == pytest.approx([0.5, 0.0, 2.5])


def test_negative_hardness_on_a_hand_set_transe(toy_kg):
    """Rows (a r ?) and (? r c), both answered by b at x = 1 on query point 1; bands at x = 4.2, 1.5, 1.0."""
    model = line_transe(toy_kg)
    pos = torch.tensor([[A, R, B], [B, R, C]])
    head_side = torch.tensor([False, True])
    sampler = FixedBands([4.2, 1.5, 1.0], [4.0, 0.3, 0.3])
    out = negative_hardness(
        sampler, model, toy_kg, pos, head_side, torch.Generator().manual_seed(0), uniform_margin=1.0
    )
    rows = out["rows"]
    # scores on both queries: a -1, b 0 (answer), c -1, d -2, e -3, f -4; negatives score -3.2, -0.5, 0
    assert [r["quantile"] for r in rows] == pytest.approx([1 / 6, 5 / 6, 5 / 6])
    assert [r["active"] for r in rows] == [1.0, 0.0, 1.0]  # -3.2 > 0 - 4; -0.5 < 0 - 0.3; 0 > 0 - 0.3
    assert [r["outscore"] for r in rows] == [0.0, 0.0, 0.0]
    assert [r["margin"] for r in rows] == pytest.approx([4.0, 0.3, 0.3])
    # snapped (nearest entity that is no known answer, train+valid+test) and ranked with the evaluation filter:
    # (a r ?) knows b, c; (? r c) knows b, a. x = 4.2 -> e, rank 3 on both (a/c and d above it); x = 1.5 -> a / c,
    # rank 1; x = 1.0 -> a / c (b is the answer), rank 1
    assert [r["snap_rank_mean"] for r in rows] == pytest.approx([3.0, 1.0, 1.0])
    assert [r["dist_query"] for r in rows] == pytest.approx([3.2, 0.5, 0.0])
    assert [r["dist_target"] for r in rows] == pytest.approx([3.2, 0.5, 0.0])
    assert out["reference"]["knn1"] == pytest.approx(1.0) and out["reference"]["knn10"] is None  # 5 other entities
    # the yardsticks: the answer b (0) beats 5 of 6; the hardest non-answer is a on (a r ?) / c on (? r c), at -1:
    # 3 of 6 below it (d, e, f); only 4 non-answers per row, so there is no 10th
    assert out["reference"]["quantile_answer"] == pytest.approx(5 / 6)
    assert out["reference"]["quantile_non_answer1"] == pytest.approx(3 / 6)
    assert out["reference"]["quantile_non_answer10"] is None
    assert 0.0 <= out["uniform"]["quantile"] <= 1.0 and out["uniform"]["negatives_per_row"] == 16
    assert out["negatives"] == "continuous"


class ValidTripleSampler(NegativeSampler):
    """Every negative of every positive is the validation triple (a r c); the second one, (a r f), is no true triple."""

    name = "fixed"

    def corrupt(self, pos):
        neg = torch.tensor([[A, R, C], [A, R, F]]).unsqueeze(0).repeat(len(pos), 1, 1)
        return neg[:, : self.num_negatives]

    def negative_weights(self, neg_scores):
        return torch.tensor([0.75, 0.25]).expand_as(neg_scores) if neg_scores.shape[1] == 2 else None


def test_false_negatives_of_a_sampler_that_returns_a_valid_triple(toy_kg):
    model = line_transe(toy_kg)
    pos = torch.tensor([[A, R, B]] * 4)
    cfg = tiny_config()
    one = ValidTripleSampler(toy_kg, cfg, 1, torch.Generator())
    (row,) = false_negatives({"fixed": (one, "stateless")}, model, toy_kg, pos, seed=0)
    assert (row["train"], row["valid"], row["test"], row["any"]) == (0.0, 1.0, 0.0, 1.0)
    assert row["negatives"] == 4 and row["weighted"] is None
    two = ValidTripleSampler(toy_kg, cfg, 2, torch.Generator())
    (row,) = false_negatives({"fixed": (two, "stateless")}, model, toy_kg, pos, seed=0)
    assert row["valid"] == 0.5 and row["weighted"]["valid"] == pytest.approx(0.75)


def test_a_triple_in_several_splits_counts_for_the_earliest():
    kg = KnowledgeGraph.from_labeled(
        "dup",
        "kge",
        {
            "train": [("a", "r", "b")],
            "valid": [("a", "r", "b"), ("a", "r", "c")],
            "test": [("a", "r", "c"), ("b", "r", "c")],
        },
    )
    known = KnownTriples(kg)
    a, b, c = (kg.entities.index(x) for x in "abc")
    codes = known.split_of(np.array([[a, 0, b], [a, 0, c], [b, 0, c], [c, 0, a]]))
    assert codes.tolist() == [1, 2, 3, 0]
    shares = false_negative_shares(codes.reshape(1, 4), np.ones((1, 4), dtype=bool))
    assert (shares["train"], shares["valid"], shares["test"], shares["any"]) == (0.25, 0.25, 0.25, 0.75)


class StubDiffusion(DiffusionSampler):
    """A diffusion sampler whose every band sits exactly on entity c, for any query."""

    name = "dans"

    def __init__(self):
        nn.Module.__init__(self)
        self.generator = torch.Generator()

    def generate(self, pos, model, head_side=None, snap=None, generator=None):
        head_side = torch.zeros(len(pos), dtype=torch.bool) if head_side is None else head_side
        neg = model.entity.weight[C].detach().view(1, 1, -1).expand(len(pos), 2, -1)
        return {
            "neg": neg,
            "target": pos[:, 2],
            "head_side": head_side,
            "query": None,
            "space": model.negative_space(pos, head_side),
        }


def test_diffusion_false_negatives_snap_against_the_train_filter_only(toy_kg):
    """(a r c) is a validation triple: snapping against train only keeps c, so the valid column shows it."""
    model = line_transe(toy_kg)
    (row,) = false_negatives({"dans": (StubDiffusion(), "warm start")}, model, toy_kg, torch.tensor([[A, R, B]] * 3), 0)
    assert (row["train"], row["valid"], row["test"]) == (0.0, 1.0, 0.0)
    assert row["negatives"] == 6 and "train filter" in row["negatives_from"]


def _toy_result_without_bands(toy_kg, sampler: str) -> dict:
    """A diagnosis of the toy line without a diffusion sampler: a false-negative table only."""
    cfg = tiny_config()
    s = ValidTripleSampler(toy_kg, cfg, 1, torch.Generator())
    result = run_diagnostics(
        toy_kg, cfg, line_transe(toy_kg), None, {"fixed": (s, "stateless")}, {"dans": "no warm start"}, 4, 0
    )
    result["subject"] = {"title": "toy", "sampler": sampler}
    return result


def test_markdown_of_a_run_without_bands_keeps_the_false_negative_table(toy_kg):
    text = render_markdown(_toy_result_without_bands(toy_kg, "uniform"))
    assert "No bands: sampler uniform" in text and "| fixed | stateless |" in text and "| dans | not built" in text


# ----------------------------------------------------------------------------------------
# during training: the trace columns, and that measuring changes nothing
# ----------------------------------------------------------------------------------------
FAST = {
    "device": "cpu",
    "train.sampler": "dans",
    "diffusion.hidden": "[16, 16]",
    "diffusion.time_dim": 8,
    "diffusion.type_dim": 4,
    "diffusion.steps": 6,
    "train.batch_size": 1024,
    "dam.num_clusters": 5,
    "train.eval_every": 1,
    "train.checkpoint_every": 1,
}


def _fit(cfg, kg, out, resume=False):
    model, sampler = build_run(cfg, kg, None, **random_dam(kg))
    trainer = Trainer(cfg, kg, model, sampler, out, torch.device("cpu"), "redgnn", show_progress=False)
    return trainer, trainer.fit(resume=resume)


def _trace(out):
    with open(out / "trace.csv") as f:
        return list(csv.DictReader(f))


def test_band_hardness_in_the_trace_does_not_change_training(umls, tmp_path):
    on, _ = _fit(tiny_config(**FAST, **{"diagnostics.triples": 64}), umls, tmp_path / "on")
    off, _ = _fit(tiny_config(**FAST, **{"diagnostics.triples": 0}), umls, tmp_path / "off")
    rows_on, rows_off = _trace(tmp_path / "on"), _trace(tmp_path / "off")
    assert [r["loss"] for r in rows_on] == [r["loss"] for r in rows_off]
    assert [r["valid_mrr"] for r in rows_on] == [r["valid_mrr"] for r in rows_off]
    for a, b in ((on.model, off.model), (on.sampler, off.sampler)):
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k
    for k in range(1, 5):
        for m in ("active", "outscore", "quantile"):
            assert 0.0 <= float(rows_on[0][f"band{k}_{m}"]) <= 1.0
            assert f"band{k}_{m}" not in rows_off[0]
    for r in rows_on:  # the yardsticks at every validation
        assert 0.0 <= float(r["hardest_non_answer_quantile"]) <= 1.0 and 0.0 <= float(r["answer_quantile"]) <= 1.0
    assert "answer_quantile" not in rows_off[0]


def test_the_trace_yardsticks_on_a_hand_set_transe(toy_kg):
    """The probe's answer / hardest-non-answer quantiles equal the diagnose table's on the same rows."""
    from dans_kgc.diagnostics import HardnessProbe, training_hardness

    model, sampler = line_transe(toy_kg), FixedBands([4.2, 1.5, 1.0], [4.0, 0.3, 0.3])
    pos, head_side = torch.tensor([[A, R, B], [B, R, C]]), torch.tensor([False, True])
    filt = HardnessProbe(toy_kg, 2, 0).filter_index
    cols = training_hardness(sampler, model, pos, head_side, torch.Generator().manual_seed(0), filt)
    assert cols["answer_quantile"] == pytest.approx(5 / 6) and cols["hardest_non_answer_quantile"] == pytest.approx(0.5)
    assert "answer_quantile" not in training_hardness(sampler, model, pos, head_side, torch.Generator().manual_seed(0))


class Killed(Exception):
    pass


def test_resume_with_band_hardness_equals_uninterrupted(umls, tmp_path, monkeypatch):
    cfg = tiny_config(**FAST, **{"train.epochs": 3, "diagnostics.triples": 32})
    full, s_full = _fit(cfg, umls, tmp_path / "full")
    # the same run killed right after its first checkpoint (the curriculum depends on train.epochs: same budget)
    save = Trainer.save_checkpoint

    def save_then_die(self):
        save(self)
        raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        _fit(cfg, umls, tmp_path / "cut")
    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    assert (tmp_path / "cut" / CHECKPOINT).exists()
    resumed, s_res = _fit(cfg, umls, tmp_path / "cut", resume=True)
    assert s_res["resumed_from_epoch"] == 1 and s_res["best_valid_mrr"] == s_full["best_valid_mrr"]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    cols = lambda rows: [{k: v for k, v in r.items() if k.startswith(("band", "loss"))} for r in rows]  # noqa: E731
    assert cols(_trace(tmp_path / "cut")) == cols(_trace(tmp_path / "full"))


# ----------------------------------------------------------------------------------------
# the CLI: a training run, warm starts, bad input
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stage_root(tmp_path_factory, mirror):
    """UMLS, dim 8: a pretraining, a dans (w/o DAM) and a dhns warm start, a dans and a uniform run."""
    root = tmp_path_factory.mktemp("diag")
    sets = [
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
        "--set",
        f"data.root={root / 'data'}",
        "--set",
        f"data.mirror={mirror}",
        "--set",
        "model.dim=8",
        "--set",
        "pretrain.dim=8",
        "--set",
        "pretrain.epochs=1",
        "--set",
        "train.epochs=1",
        "--set",
        "train.eval_every=1",
        "--set",
        "data.max_eval_triples=50",
        "--set",
        "diffusion.hidden=[16, 16]",
        "--set",
        "diffusion.time_dim=8",
        "--set",
        "diffusion.type_dim=4",
        "--set",
        "diffusion.warmstart_epochs=1",
        "--set",
        "diffusion.steps=6",
        "--set",
        "samplers.dhns.T=6",
        "--set",
        "samplers.dhns.steps=[0, 1, 3]",
        "--set",
        "samplers.dhns.weights=[0.0, 1.0, 1.0]",
        "--set",
        "samplers.dhns.margin_scales=[0.1, 0.5, 0.9]",
        "--set",
        "dans.use_dam=false",
        "--set",
        "diagnostics.triples=16",
    ]
    assert cli.main(["pretrain", "--dataset", "umls", "--out", str(root / "pre"), "--quiet", *sets]) == 0
    for kind in ("dans", "dhns"):
        assert (
            cli.main(
                [
                    "diffusion",
                    "fit",
                    "--dataset",
                    "umls",
                    "--pretrained",
                    str(root / "pre"),
                    "--kind",
                    kind,
                    "--out",
                    str(root / f"ws_{kind}"),
                    *sets,
                ]
            )
            == 0
        )
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "umls",
                "--out",
                str(root / "dans"),
                "--pretrained",
                str(root / "pre"),
                "--diffusion",
                str(root / "ws_dans"),
                "--quiet",
                "--tag",
                "experiment=main",
                "--tag",
                "variant=dans",
                *sets,
                "--set",
                "train.sampler=dans",
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "umls",
                "--out",
                str(root / "nsc"),
                "--pretrained",
                str(root / "pre"),
                "--quiet",
                *sets,
                "--set",
                "train.sampler=nscaching",
            ]
        )
        == 0
    )
    return root


def _fn(result):
    return {r["sampler"]: r for r in result["false_negatives"]["rows"]}


def test_cli_diagnose_a_dans_run(stage_root):
    out = stage_root / "out" / "dans"
    assert cli.main(["diagnose", "--run", str(stage_root / "dans"), "--out", str(out), "--triples", "40"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["kind"] == "dans_kgc_diagnostics" and result["settings"]["triples"] == 40
    assert result["subject"]["sampler"] == "dans" and result["subject"]["epoch"] == 1
    assert result["subject"]["stages"]["diffusion"] == str(stage_root / "ws_dans")  # run.json records its stages
    d = result["denoiser"]
    assert d["steps"] == list(range(1, 7)) and len(d["mse"]) == 6 and all(b > 0 for b in d["baseline"])
    assert len(result["bands"]["rows"]) == 4 and all(0 <= r["quantile"] <= 1 for r in result["bands"]["rows"])
    fn = _fn(result)
    assert list(fn) == ["uniform", "bernoulli", "self_adversarial", "nscaching", "dans"]
    assert fn["dans"]["train"] == 0.0 and fn["self_adversarial"]["weighted"] is not None
    assert "freshly initialised" in fn["nscaching"]["state"] and "dhns" in result["false_negatives"]["not_built"]
    assert result["trace"]["epoch"] == [1] and "band4_quantile" in result["trace"]
    assert "config" in result["provenance"] and result["provenance"]["checkpoint"].endswith(CHECKPOINT)
    md = out.with_suffix(".md").read_text()
    assert "## Denoiser quality" in md and "| band 4 |" in md and "| dhns | not built" in md
    assert out.with_suffix(".png").stat().st_size > 0


def test_cli_diagnose_a_non_diffusion_run_uses_its_cache(stage_root):
    out = stage_root / "out" / "nsc"
    assert cli.main(["diagnose", "--run", str(stage_root / "nsc"), "--out", str(out), "--triples", "20"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["bands"] is None and result["denoiser"] is None
    assert "run checkpoint" in _fn(result)["nscaching"]["state"]
    assert "No bands" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("kind, bands", [("dhns", 3), ("dans", 4)])
def test_cli_diagnose_a_warm_start(stage_root, kind, bands):
    out = stage_root / "out" / f"ws_{kind}"
    assert (
        cli.main(
            [
                "diagnose",
                "--warm-start",
                str(stage_root / f"ws_{kind}"),
                "--pretrained",
                str(stage_root / "pre"),
                "--dataset",
                "umls",
                "--out",
                str(out),
                "--triples",
                "30",
                "--set",
                "threads=1",
            ]
        )
        == 0
    )
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["subject"]["target"] == "warm_start" and result["subject"]["sampler"] == kind
    assert len(result["bands"]["rows"]) == bands and result["denoiser"]["rows"] == 60  # both sides of 30 triples
    other = "dans" if kind == "dhns" else "dhns"
    assert kind in _fn(result) and other in result["false_negatives"]["not_built"]
    assert _fn(result)[kind]["state"] == "warm start on the pretrained backbone"
    # the diagnosed denoiser is the warm start's, on the pretrained backbone: same numbers as measured by hand
    kg = load_dataset(stage_root / "data", "umls")
    pos, _ = sample_triples(kg, 30, diagnostics_generator(0, STREAM_TRIPLES))
    ref = denoiser_quality(
        load_diffusion(stage_root / f"ws_{kind}"),
        load_trained_model(stage_root / "pre" / BEST_MODEL),
        pos,
        diagnostics_generator(0, STREAM_DENOISER),
    )
    assert result["denoiser"]["mse"] == pytest.approx(ref["mse"], rel=1e-6)
    assert result["denoiser"]["baseline"] == pytest.approx(ref["baseline"], rel=1e-6)


def test_cli_diagnose_a_warm_start_with_measured_band_placement(stage_root):
    # the bands are placed on the pretrained backbone before they are measured; the table names the placed states
    out = stage_root / "out" / "ws_dans_placed"
    assert (
        cli.main(
            [
                "diagnose",
                "--warm-start",
                str(stage_root / "ws_dans"),
                "--pretrained",
                str(stage_root / "pre"),
                "--dataset",
                "umls",
                "--out",
                str(out),
                "--triples",
                "30",
                "--set",
                "threads=1",
                "--set",
                "diffusion.band_placement=measured",
            ]
        )
        == 0
    )
    result = json.loads(out.with_suffix(".json").read_text())
    placed = [int(result["subject"]["band_placement"][f"band{k}_step"]) for k in range(1, 5)]
    assert [r["reverse_step"] for r in result["bands"]["rows"]] == placed
    assert len(set(placed)) == 4  # distinct states (assign_bands)


def test_report_gathers_the_diagnoses(stage_root):
    from dans_kgc.reports import build_report

    # the CLI tests above write these diagnoses; run alone (or reordered), this test makes them itself
    made = {
        "dans": ["--run", str(stage_root / "dans"), "--triples", "40"],
        "ws_dans": [
            "--warm-start",
            str(stage_root / "ws_dans"),
            "--pretrained",
            str(stage_root / "pre"),
            "--dataset",
            "umls",
            "--triples",
            "30",
            "--set",
            "threads=1",
        ],
    }
    for name, argv in made.items():
        if not (stage_root / "out" / f"{name}.json").exists():
            assert cli.main(["diagnose", *argv, "--out", str(stage_root / "out" / name)]) == 0
    written = build_report("diagnostics", [str(stage_root / "out")], stage_root / "tables" / "diagnostics")
    assert {p.suffix for p in written} == {".csv", ".md", ".json"}
    md = (stage_root / "tables" / "diagnostics.md").read_text()
    assert "warm start ws_dans" in md and "main/dans seed 0" in md and "UMLS" in md
    assert "quantile" in (stage_root / "tables" / "diagnostics.csv").read_text()
    non_answer = json.loads((stage_root / "out" / "dans.json").read_text())["bands"]["reference"][
        "quantile_non_answer1"
    ]
    assert "Hardest non-answer quantile" in md and f"| {non_answer:.3f} |" in md


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--run", "{root}/nowhere"], "no such run folder"),
        (["--run", "{root}/ws_dans"], "no run config here"),
        (["--warm-start", "{root}/pre", "--pretrained", "{root}/pre", "--dataset", "umls"], "no diffusion warm start"),
        (["--warm-start", "{root}/ws_dans"], "needs --pretrained"),
        ([], "either --run"),
        (["--run", "{root}/dans", "--warm-start", "{root}/ws_dans"], "either --run"),
    ],
)
def test_cli_diagnose_bad_input_is_one_line_and_exit_2(stage_root, tmp_path, caplog, argv, needle):
    argv = [a.format(root=stage_root) for a in argv]
    with caplog.at_level(logging.ERROR):
        assert cli.main(["diagnose", *argv, "--out", str(tmp_path / "x")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and needle in errors[0], errors
    assert not list(tmp_path.iterdir())


def test_markdown_shows_the_x0_error_next_to_the_noise_error_and_names_the_predicted_one(toy_kg):
    # x0 prediction: its implied noise error explodes at small s by construction (step 1 here: 400x), so the table
    # carries the x0 error and its ratio to predicting zero (E||x0||^2 = 2.0), and says which one is predicted
    result = _toy_result_without_bands(toy_kg, "dans")
    result["denoiser"] = {
        "steps": [1, 2, 3, 4],
        "mse": [400.0, 2.0, 0.5, 0.0],
        "baseline": [1.0] * 4,
        "ratio": [400.0, 2.0, 0.5, 0.0],
        "prediction": "x0",
        "x0_mse": [0.02, 0.2, 1.0, 1.8],
        "x0_baseline": 2.0,
        "rows": 8,
        "mean_mse": 100.625,
        "mean_baseline": 1.0,
        "mean_ratio": 100.625,
        "alpha_bar_T": {"min": 0.0, "max": 0.0},
    }
    text = render_markdown(result)
    assert "| step s | noise MSE | zero baseline | ratio | x0 MSE | zero baseline | x0 ratio |" in text
    assert "| 1 | 400.0000 | 1.0000 | 400.000 | 0.0200 | 2.0000 | 0.010 |" in text
    assert "| mean over s = 1..4 | 100.6250 | 1.0000 | 100.625 | 0.7550 | 2.0000 | 0.378 |" in text
    assert "predicts **x0**" in text
    del result["denoiser"]["x0_mse"]  # a diagnosis written before the x0 error existed keeps the old table
    assert "| step s | MSE | zero baseline | ratio |" in render_markdown(result)


def test_report_rates_each_denoiser_by_what_it_predicts(tmp_path):
    # an x0-predicting denoiser is rated by its x0 error (mean 0.5 over E||x0||^2 = 2.0 -> 0.250), not by the noise
    # error its prediction implies (mean ratio 100); a noise-predicting one by its noise ratio
    from dans_kgc.reports import build_report
    from dans_kgc.reports.diagnostics import KIND

    def diagnosis(name, denoiser):
        subj = {
            "dataset": "umls",
            "target": "run",
            "sampler": "dans",
            "seed": 0,
            "run": name,
            "tags": {"experiment": "main", "variant": name},
        }
        (tmp_path / f"{name}.json").write_text(
            json.dumps(
                {"kind": KIND, "subject": subj, "denoiser": denoiser, "bands": None, "false_negatives": {"rows": []}}
            )
        )

    common = {
        "steps": [1, 2],
        "mse": [199.0, 1.0],
        "baseline": [1.0, 1.0],
        "ratio": [199.0, 1.0],
        "rows": 4,
        "mean_mse": 100.0,
        "mean_baseline": 1.0,
        "mean_ratio": 100.0,
    }
    diagnosis("x0model", {**common, "prediction": "x0", "x0_mse": [0.2, 0.8], "x0_baseline": 2.0})
    diagnosis(
        "epsmodel", {**common, "mean_ratio": 0.9, "prediction": "noise", "x0_mse": [5.0, 5.0], "x0_baseline": 2.0}
    )
    build_report("diagnostics", [str(tmp_path)], tmp_path / "table")
    md = (tmp_path / "table.md").read_text()
    assert "Denoiser MSE / zero (its target)" in md
    assert "| main/x0model seed 0 | dans | — | — | 0.250 (x0) |" in md
    assert "| main/epsmodel seed 0 | dans | — | — | 0.900 (noise) |" in md
