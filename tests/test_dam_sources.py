"""DAM's inputs (the paper's open question 2): semantic features from an untrained, a short or the full
TransE pretraining, scored against one fixed observed-difficulty target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from dans_kgc.checkpoints import BEST_MODEL, load_trained_model
from dans_kgc.cli import main
from dans_kgc.dam import REPORT_JSON, fit_dam_from_run
from dans_kgc.stages import StageMismatchError, pretrain_config, target_source


@pytest.fixture(scope="module")
def pretrainings(umls_root, mirror, tmp_path_factory):
    """UMLS TransE pretrainings as sources: random (0 epochs), transe_short (1 epoch), transe (3 epochs)."""
    root = tmp_path_factory.mktemp("sources")
    common = [
        "--quiet",
        "--set",
        f"data.root={umls_root}",
        "--set",
        f"data.mirror={mirror}",
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
        "--set",
        "pretrain.dim=16",
        "--set",
        "pretrain.epochs=3",
        "--set",
        "dam.short_epochs=1",
        "--set",
        "seed=0",
    ]
    for source in ("random", "transe_short", "transe"):
        assert main(["pretrain", "--dataset", "umls", "--out", str(root / source), "--source", source, *common]) == 0
    return root


def test_sources_train_for_their_budgets(pretrainings):
    epochs = {
        s: json.loads((pretrainings / s / "run.json").read_text())["summary"]["epochs_run"]
        for s in ("random", "transe_short", "transe")
    }
    assert epochs == {"random": 0, "transe_short": 1, "transe": 3}
    cfg = tiny_config(**{"dam.short_epochs": 7, "pretrain.epochs": 40})
    assert [pretrain_config(cfg, s)["train"]["epochs"] for s in ("random", "transe_short", "transe")] == [0, 7, 40]
    # the untrained source is the seeded initialisation, the trained one moved away from it
    rand = load_trained_model(pretrainings / "random" / BEST_MODEL, "cpu").entity.weight
    full = load_trained_model(pretrainings / "transe" / BEST_MODEL, "cpu").entity.weight
    assert not torch.allclose(rand, full)


def _fit(umls, pretrainings, semantic, target="transe"):
    cfg = tiny_config(
        **{
            "dam.semantic_source": semantic,
            "dam.target_source": target,
            "dam.epochs": 30,
            "dam.max_target_triples": 500,
            "dam.num_clusters": 5,
            "pretrain.epochs": 3,
            "dam.short_epochs": 1,
        }
    )
    target_dir = None if target_source(cfg) == semantic else pretrainings / target_source(cfg)
    return fit_dam_from_run(umls, pretrainings / semantic, cfg, target_dir=target_dir)


def test_fixed_target_is_shared_across_semantic_sources(umls, pretrainings):
    fits = {s: _fit(umls, pretrainings, s) for s in ("random", "transe_short", "transe")}
    observed = [f.table["observed_difficulty"].to_numpy() for f in fits.values()]
    # one reference target for all three: the held-out Spearmans are comparable
    assert all(np.array_equal(o, observed[0], equal_nan=True) for o in observed)
    # ... while the semantic features differ with the source
    assert not np.allclose(fits["random"].table["knn_cosine"], fits["transe"].table["knn_cosine"])
    assert {f.report["target_source"] for f in fits.values()} == {"transe"}
    assert fits["random"].report["semantic_source"] == "random"
    # with target_source: semantic, the untrained TransE's own (meaningless) ranks are the target instead
    own = _fit(umls, pretrainings, "random", target="semantic")
    assert not np.array_equal(own.table["observed_difficulty"].to_numpy(), observed[0], equal_nan=True)


def test_a_pretraining_of_another_source_is_refused(umls, pretrainings):
    cfg = tiny_config(**{"dam.semantic_source": "random", "pretrain.epochs": 3})
    with pytest.raises(StageMismatchError, match="'transe' pretraining, but DAM's semantic .*'random'"):
        fit_dam_from_run(umls, pretrainings / "transe", cfg)
    cfg = tiny_config(**{"dam.semantic_source": "random", "dam.target_source": "transe", "pretrain.epochs": 3})
    with pytest.raises(ValueError, match="--target-pretrained"):
        fit_dam_from_run(umls, pretrainings / "random", cfg)
    # the target named by its own source is the semantic model itself: a second folder is refused
    cfg = tiny_config(**{"dam.semantic_source": "transe", "dam.target_source": "transe", "pretrain.epochs": 3})
    with pytest.raises(ValueError, match="drop --target-pretrained"):
        fit_dam_from_run(umls, pretrainings / "transe", cfg, target_dir=pretrainings / "transe")


def test_dam_fit_cli_with_a_separate_target(umls_root, mirror, pretrainings, tmp_path, caplog):
    common = [
        "--set",
        f"data.root={umls_root}",
        "--set",
        f"data.mirror={mirror}",
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
        "--set",
        "pretrain.dim=16",
        "--set",
        "dam.epochs=20",
        "--set",
        "dam.max_target_triples=300",
        "--set",
        "dam.num_clusters=5",
    ]
    out = tmp_path / "dam"
    assert (
        main(
            [
                "dam",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(pretrainings / "transe_short"),
                "--target-pretrained",
                str(pretrainings / "transe"),
                "--out",
                str(out),
                "--set",
                "dam.semantic_source=transe_short",
                "--set",
                "dam.target_source=transe",
                *common,
            ]
        )
        == 0
    )
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["stage_record"]["semantic_source"] == "transe_short"
    assert report["provenance"]["target_pretrained"] == str(pretrainings / "transe" / BEST_MODEL)
    # a missing target folder: one line, exit code 2
    caplog.clear()
    assert (
        main(
            [
                "dam",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(pretrainings / "transe_short"),
                "--out",
                str(out),
                "--set",
                "dam.semantic_source=transe_short",
                "--set",
                "dam.target_source=transe",
                *common,
            ]
        )
        == 2
    )
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0] and "--target-pretrained" in errors[0]
    caplog.clear()
    assert (
        main(
            [
                "dam",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(pretrainings / "transe"),
                "--out",
                str(out),
                "--set",
                "dam.short_epochs=0",
                *common,
            ]
        )
        == 2
    )
    assert "dam.short_epochs" in caplog.text
