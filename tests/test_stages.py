"""Stage declarations and stage records (dans_kgc/stages.py), checked where they are used:
build_run's initialisation, the checkpoints module and the CLI's refusals (UMLS, dim 8, 1 epoch)."""

from __future__ import annotations

import copy
import json
import logging
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import tiny_config

from dans_kgc import cli
from dans_kgc.checkpoints import BEST_MODEL, init_from_checkpoint, load_trained_model, read_checkpoint, stage_record_of
from dans_kgc.config import load_defaults
from dans_kgc.datasets import load_dataset
from dans_kgc.models import build_model
from dans_kgc.stages import (
    JOINT_ONLY_DIFFUSION_KEYS,
    RUNTIME_KEYS,
    STAGE_KEYS,
    StageMismatchError,
    backbone_of,
    check_record,
    flatten,
    pretrain_config,
    pretrained_backbone,
    reads,
    semantic_backbone,
    stage_keys,
    stage_record,
)
from dans_kgc.training import build_run
from dans_kgc.utils import torch_save

torch.set_num_threads(1)

DEFAULT_KEYS = sorted(flatten(load_defaults()))


def _kg(name="toy", variant="kge", n=6, r=2):
    return SimpleNamespace(name=name, variant=variant, num_entities=n, num_relations=r)


def _record(name="transe", dim=16, kg=None, mode="negative_sampling"):
    cfg = tiny_config(**{"model.name": name, "model.dim": dim})
    return stage_record("pretrain", cfg, kg or _kg(), backbone_of(cfg["model"], mode))


# ----------------------------------------------------------------------------------------
# check_record
# ----------------------------------------------------------------------------------------
def test_check_record_accepts_a_record_of_this_backbone_and_dataset():
    rec = _record("distmult", 16)
    check_record(
        rec, "pre/model_best.pt", kg=_kg(), backbone={"name": "distmult", "dim": 16, "mode": "negative_sampling"}
    )
    # the training mode may differ: a 1-N run may start from a negative-sampling pretraining
    check_record(rec, "pre/model_best.pt", kg=_kg(), backbone={"name": "distmult", "dim": 16, "mode": "one_to_n"})
    check_record(rec, "pre/model_best.pt", kg=_kg())  # no backbone asked: the dataset alone is checked


@pytest.mark.parametrize(
    "theirs, mine, kg, differs",
    [
        (("transe", 16), ("distmult", 16), _kg(), "backbone.name"),
        (("distmult", 8), ("distmult", 16), _kg(), "backbone.dim"),
        (("distmult", 16), ("distmult", 16), _kg("nations", "kge", 14, 55), "dataset"),
        (("distmult", 16), ("distmult", 16), _kg("toy", "redgnn"), "split"),
        (("distmult", 16), ("distmult", 16), _kg(n=7), "num_entities"),
    ],
)
def test_check_record_mismatch_names_both_sides(theirs, mine, kg, differs):
    rec = _record(*theirs)
    with pytest.raises(StageMismatchError) as err:
        check_record(rec, "runs/pre/model_best.pt", kg=kg, backbone={"name": mine[0], "dim": mine[1]}, what="this run")
    msg = str(err.value)
    assert "\n" not in msg
    assert "runs/pre/model_best.pt" in msg
    assert f"{theirs[0]} (dim {theirs[1]}) on toy/kge" in msg  # what it was made for
    assert f"{mine[0]} (dim {mine[1]}) on {kg.name}/{kg.variant}" in msg  # what this run needs
    assert differs in msg.split("differs in")[1]


def test_check_record_without_a_record_raises_naming_the_file():
    with pytest.raises(StageMismatchError, match=r"runs/old/model_best.pt: no stage record"):
        check_record(None, "runs/old/model_best.pt", kg=_kg(), backbone={"name": "distmult", "dim": 16})
    assert issubclass(StageMismatchError, ValueError)  # the CLI turns it into exit code 2


def test_check_record_without_a_record_names_what_the_run_needs():
    # exposes bug: dans_kgc/stages.py check_record, the `record is None` branch: the message names only the
    # file ("...: no stage record (...); rerun that stage") and not the backbone/dataset the run needs,
    # unlike every other refusal, which names both sides. Expected e.g. "... needs distmult (dim 16) on toy/kge".
    with pytest.raises(StageMismatchError) as err:
        check_record(None, "runs/old/model_best.pt", kg=_kg(), backbone={"name": "distmult", "dim": 16})
    assert "distmult (dim 16) on toy/kge" in str(err.value)


# ----------------------------------------------------------------------------------------
# stage_record
# ----------------------------------------------------------------------------------------
def test_stage_record_says_what_it_was_made_for(toy_kg):
    cfg = tiny_config(**{"model.name": "distmult", "train.lr": 0.01})
    rec = stage_record("pretrain", cfg, toy_kg, backbone_of(cfg["model"], "one_to_n"), source="backbone")
    assert rec["stage"] == "pretrain" and rec["source"] == "backbone"
    assert rec["backbone"] == {"name": "distmult", "dim": 16, "mode": "one_to_n"}
    assert (rec["dataset"], rec["split"], rec["num_entities"], rec["num_relations"]) == ("toy", "kge", 6, 2)
    assert rec["keys"]["train.lr"] == 0.01 and rec["keys"]["model.dim"] == 16
    assert all(reads("pretrain", k) for k in rec["keys"])
    assert "train.sampler" not in rec["keys"] and "threads" not in rec["keys"]
    json.dumps(rec)  # stored in JSON reports


def test_stage_record_fingerprint_moves_with_read_keys_only(toy_kg):
    def fp(**sets):
        cfg = tiny_config(**sets)
        return stage_record("pretrain", cfg, toy_kg, backbone_of(cfg["model"]))["fingerprint"]

    base = fp()
    assert fp() == base
    assert fp(**{"train.lr": 0.5}) != base
    assert fp(**{"pretrain.margin": 3.0}) != base
    assert fp(**{"train.sampler": "bernoulli"}) == base
    assert fp(**{"train.init_from_pretrained": "false"}) == base
    assert fp(threads=2, device="cpu") == base


# ----------------------------------------------------------------------------------------
# pretrain_config / pretrained_backbone / semantic_backbone
# ----------------------------------------------------------------------------------------
def _p_cfg(**sets):
    return tiny_config(
        **{
            "pretrain.dim": 12,
            "pretrain.epochs": 7,
            "pretrain.lr": 0.02,
            "pretrain.margin": 2.5,
            "pretrain.batch_size": 64,
            "pretrain.num_negatives": 3,
            "pretrain.p_norm": 2,
            **sets,
        }
    )


def test_pretrain_config_of_a_transe_backbone_is_the_same_for_both_sources():
    cfg = _p_cfg(**{"train.lr": 0.5, "train.loss": "softplus"})
    assert pretrain_config(cfg, "backbone") == pretrain_config(cfg, "transe")


def test_pretrain_config_backbone_source_keeps_the_backbone_recipe():
    cfg = _p_cfg(
        **{
            "model.name": "distmult",
            "train.mode": "one_to_n",
            "train.loss": "softplus",
            "train.sampler": "dans",
            "train.lr": 0.3,
            "model.regularizer": "n3",
            "model.reg_weight": 0.1,
        }
    )
    before = copy.deepcopy(cfg)
    out = pretrain_config(cfg, "backbone")
    assert cfg == before  # input untouched
    assert out["model"] == cfg["model"]
    assert out["train"] == {**cfg["train"], "epochs": 7, "sampler": "uniform"}
    assert out["train"]["mode"] == "one_to_n" and out["train"]["lr"] == 0.3
    assert {k: v for k, v in out.items() if k not in ("train",)} == {k: v for k, v in cfg.items() if k != "train"}


def test_pretrain_config_transe_source_is_the_method_recipe():
    cfg = _p_cfg(
        **{
            "model.name": "distmult",
            "train.mode": "one_to_n",
            "train.loss": "softplus",
            "train.sampler": "dans",
            "model.regularizer": "n3",
            "model.reg_weight": 0.1,
        }
    )
    before = copy.deepcopy(cfg)
    out = pretrain_config(cfg, "transe")
    assert cfg == before
    m, t = out["model"], out["train"]
    assert (m["name"], m["dim"], m["p_norm"], m["regularizer"], m["reg_weight"]) == ("transe", 12, 2, "none", 0.0)
    assert (t["mode"], t["loss"], t["sampler"]) == ("negative_sampling", "margin", "uniform")
    assert (t["epochs"], t["lr"], t["batch_size"], t["num_negatives"], t["margin"]) == (7, 0.02, 64, 3, 2.5)
    # everything else is the run's own
    assert t["eval_every"] == cfg["train"]["eval_every"] and out["diffusion"] == cfg["diffusion"]


@pytest.mark.parametrize("name", ["transe", "distmult", "conve"])
@pytest.mark.parametrize("source", ["backbone", "transe"])
def test_pretrain_config_is_idempotent(name, source):
    # the DAG passes pretrain_config's result and the CLI applies it again
    cfg = _p_cfg(**{"model.name": name, "train.mode": "one_to_n"})
    once = pretrain_config(cfg, source)
    assert pretrain_config(once, source) == once


def test_pretrain_config_rejects_an_unknown_source():
    with pytest.raises(ValueError, match="backbone, transe"):
        pretrain_config(_p_cfg(), "rotate")


def test_pretrained_and_semantic_backbone():
    dm = _p_cfg(**{"model.name": "distmult", "model.dim": 16, "train.mode": "one_to_n"})
    assert pretrained_backbone(dm, "backbone") == {"name": "distmult", "dim": 16, "mode": "one_to_n"}
    assert pretrained_backbone(dm, "transe") == {"name": "transe", "dim": 12, "mode": "negative_sampling"}
    te = _p_cfg(**{"model.dim": 16})
    assert pretrained_backbone(te, "backbone") == {"name": "transe", "dim": 12, "mode": "negative_sampling"}
    assert semantic_backbone(dm) == pretrained_backbone(dm, "transe")  # default dam.semantic_source: transe
    dm["dam"]["semantic_source"] = "backbone"
    assert semantic_backbone(dm) == pretrained_backbone(dm, "backbone")


# ----------------------------------------------------------------------------------------
# STAGE_KEYS
# ----------------------------------------------------------------------------------------
def test_pretrain_keys():
    assert reads("pretrain", "model.dim") and reads("pretrain", "train.lr") and reads("pretrain", "pretrain.dim")
    assert reads("pretrain", "train.mode") and reads("pretrain", "model.reg_weight") and reads("pretrain", "seed")
    assert not reads("pretrain", "train.sampler")
    assert not reads("pretrain", "train.init_from_pretrained")
    assert not any(reads("pretrain", k) for k in DEFAULT_KEYS if k.startswith(("dam.", "diffusion.", "dtm.", "dans.")))


def test_diffusion_warm_start_keys():
    for key in (
        "diffusion.sampling_steps",
        "diffusion.sample_fraction",
        "diffusion.update_every",
        "diffusion.negatives",
        "diffusion.snap_filter",
        "diffusion.reverse",
        "diffusion.chain_start",
    ):
        assert not reads("diffusion_dans", key), key
        assert key in JOINT_ONLY_DIFFUSION_KEYS
    for key in (
        "diffusion.steps",
        "diffusion.side_flag",
        "diffusion.hidden",
        "model.name",
        "model.dim",
        "dam.num_clusters",
        "dans.use_dam",
        "dam.semantic_source",
        "pretrain.dim",
    ):
        assert reads("diffusion_dans", key), key
    assert not reads("diffusion_dans", "dans.eta") and not reads("diffusion_dans", "dtm.lambda")
    assert reads("diffusion_dhns", "samplers.dhns.T") and not reads("diffusion_dhns", "samplers.nscaching.cache_size")


def test_dhns_warm_start_reads_side_flag():
    # exposes bug: dans_kgc/stages.py STAGE_KEYS["diffusion_dhns"] lacks "diffusion.side_flag", which
    # dhns_diffusion (dans_kgc/sampling/dhns.py) passes to ConditionalDiffusion and which changes the denoiser's
    # input width (an _ARCH_KEYS key load_warm_start checks): flipping it does not rerun the DHNS warm start
    # (nor change its fingerprint), and the DHNS training run then refuses the stale warm start.
    from dans_kgc.sampling.dhns import dhns_diffusion

    on, off = (dhns_diffusion(5, 8, tiny_config(**{"diffusion.side_flag": v})) for v in ("true", "false"))
    assert on.init_args["side_flag"] != off.init_args["side_flag"]
    assert reads("diffusion_dhns", "diffusion.side_flag")


def test_dam_keys():
    assert reads("dam", "dam.semantic_source") and reads("dam", "model.name") and reads("dam", "pretrain.dim")
    assert not reads("dam", "train.lr") and not reads("dam", "diffusion.steps")


def test_no_stage_reads_runtime_keys():
    for stage in STAGE_KEYS:
        for key in ("threads", "device", "data.mirror", *RUNTIME_KEYS):
            assert not reads(stage, key), (stage, key)
        assert not set(stage_keys({k: 0 for k in RUNTIME_KEYS}, stage))


def test_every_declared_pattern_names_a_config_key():
    for stage, spec in STAGE_KEYS.items():
        for pattern in [*spec["include"], *spec.get("exclude", ())]:
            assert any(k == pattern or (pattern.endswith(".") and k.startswith(pattern)) for k in DEFAULT_KEYS), (
                stage,
                pattern,
            )
        # an exclusion excludes something the inclusions would read
        for pattern in spec.get("exclude", ()):
            assert any(k.startswith(p) or k == p for p in spec["include"] for k in [pattern]), (stage, pattern)


# Reads recorded on the real stage commands: every key a stage reads through its config lies in its declaration.
_READS: set[str] = set()


class RecordingConfig(dict):
    """A config that notes every leaf key read with [] or get (bulk copies are not reads)."""

    def __init__(self, data, path=""):
        super().__init__({k: RecordingConfig(v, f"{path}{k}.") if isinstance(v, dict) else v for k, v in data.items()})
        self._path = path

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if not isinstance(value, dict):
            _READS.add(self._path + str(key))
        return value

    def get(self, key, default=None):
        if key not in self:
            return default
        return self[key]  # through __getitem__, so the read is recorded

    def __deepcopy__(self, memo):
        out = RecordingConfig({}, self._path)
        for k, v in dict.items(self):
            dict.__setitem__(out, k, copy.deepcopy(v, memo))
        return out

    def __reduce__(self):  # checkpoints pickle the config: store a plain dict
        return dict, (dict(dict.items(self)),)


yaml.add_representer(RecordingConfig, yaml.representer.SafeRepresenter.represent_dict, Dumper=yaml.SafeDumper)


def _undeclared_reads(monkeypatch, argv, stage):
    _READS.clear()
    load = cli._config
    monkeypatch.setattr(cli, "_config", lambda args: RecordingConfig(load(args)))
    assert cli.main(argv) == 0
    monkeypatch.setattr(cli, "_config", load)
    assert _READS
    return sorted(k for k in _READS if not reads(stage, k) and k not in RUNTIME_KEYS)


DIFF = [
    "--set",
    "diffusion.hidden=[16, 16]",
    "--set",
    "diffusion.time_dim=8",
    "--set",
    "diffusion.type_dim=4",
    "--set",
    "diffusion.warmstart_epochs=1",
    "--set",
    "diffusion.steps=10",
    "--set",
    "samplers.dhns.T=10",
    "--set",
    "samplers.dhns.steps=[0, 2, 5]",
    "--set",
    "samplers.dhns.weights=[0.0, 1.0, 1.0]",
    "--set",
    "samplers.dhns.margin_scales=[0.1, 0.5, 0.9]",
]


@pytest.mark.parametrize("source, model", [("backbone", "transe"), ("transe", "distmult"), ("backbone", "distmult")])
def test_pretrain_command_reads_only_declared_keys(monkeypatch, sets, tmp_path, source, model):
    argv = [
        "pretrain",
        "--dataset",
        "umls",
        "--out",
        str(tmp_path / "p"),
        "--quiet",
        "--source",
        source,
        *sets,
        "--set",
        f"model.name={model}",
    ]
    assert _undeclared_reads(monkeypatch, argv, "pretrain") == []


def test_dans_warm_start_reads_only_declared_keys(monkeypatch, sets, runs, tmp_path):
    argv = [
        "diffusion",
        "fit",
        "--dataset",
        "umls",
        "--pretrained",
        str(runs / "transe"),
        "--out",
        str(tmp_path / "d"),
        "--set",
        "dans.use_dam=false",
        *sets,
        *DIFF,
    ]
    assert _undeclared_reads(monkeypatch, argv, "diffusion_dans") == []


def test_dhns_warm_start_reads_only_declared_keys(monkeypatch, sets, runs, tmp_path):
    # exposes bug: the DHNS warm start ('diffusion fit --kind dhns', dans_kgc/pipeline.py fit_diffusion_stage) reads
    # diffusion.side_flag (dhns_diffusion) and dans.use_dam (the report's "use_dam" field), neither declared in
    # STAGE_KEYS["diffusion_dhns"] (dans_kgc/stages.py).
    argv = [
        "diffusion",
        "fit",
        "--kind",
        "dhns",
        "--dataset",
        "umls",
        "--pretrained",
        str(runs / "transe"),
        "--out",
        str(tmp_path / "d"),
        *sets,
        *DIFF,
    ]
    assert _undeclared_reads(monkeypatch, argv, "diffusion_dhns") == []


# ----------------------------------------------------------------------------------------
# pretrainings made by the CLI (module scope: ~0.1 s each)
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("stage_data")


@pytest.fixture(scope="module")
def sets(data_root, mirror):
    return [
        "--set",
        "threads=1",
        "--set",
        "device=cpu",
        "--set",
        f"data.root={data_root}",
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
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sets):
    root = tmp_path_factory.mktemp("stage_runs")
    for out, extra in (
        ("transe", []),
        ("dm_transe", ["--source", "transe", "--set", "model.name=distmult"]),
        ("dm_backbone", ["--source", "backbone", "--set", "model.name=distmult", "--set", "train.mode=one_to_n"]),
    ):
        assert cli.main(["pretrain", "--dataset", "umls", "--out", str(root / out), "--quiet", *sets, *extra]) == 0
    assert cli.main(["pretrain", "--dataset", "nations", "--out", str(root / "nations"), "--quiet", *sets]) == 0
    return root


@pytest.fixture(scope="module")
def umls(runs, data_root):
    return load_dataset(data_root, "umls", "redgnn")


def _cfg(**sets):
    return tiny_config(**{"model.dim": 8, "pretrain.dim": 8, "device": "cpu", **sets})


def _errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# --- the records the pretrain command writes ----------------------------------------------
def test_pretrain_source_transe_writes_a_transe_record(runs):
    rec = stage_record_of(runs / "dm_transe")
    assert rec["backbone"] == {"name": "transe", "dim": 8, "mode": "negative_sampling"} and rec["source"] == "transe"
    assert (rec["dataset"], rec["split"], rec["num_entities"]) == ("umls", "redgnn", 135)
    run = json.loads((runs / "dm_transe" / "run.json").read_text())
    assert run["backbone"]["name"] == "transe" and run["model"] == "transe" and run["stage_record"] == rec
    assert read_checkpoint(runs / "dm_transe" / BEST_MODEL)["model_config"]["name"] == "transe"


def test_pretrain_source_backbone_writes_a_record_of_the_backbone(runs):
    rec = stage_record_of(runs / "dm_backbone")
    assert rec["backbone"] == {"name": "distmult", "dim": 8, "mode": "one_to_n"} and rec["source"] == "backbone"
    run = json.loads((runs / "dm_backbone" / "run.json").read_text())
    assert run["backbone"]["name"] == "distmult" and run["backbone"]["mode"] == "one_to_n"
    assert run["backbone"]["label"] == "DistMult (1-N)" and run["backbone"]["dim"] == 8
    assert stage_record_of(runs / "transe")["backbone"]["name"] == "transe"


# --- build_run ----------------------------------------------------------------------------
def test_build_run_refuses_a_pretraining_of_another_backbone(runs, umls):
    with pytest.raises(StageMismatchError) as err:
        build_run(_cfg(**{"model.name": "distmult"}), umls, runs / "transe")
    assert "transe (dim 8)" in str(err.value) and "distmult (dim 8)" in str(err.value)


def test_build_run_refuses_another_dimension_or_dataset(runs, umls):
    with pytest.raises(StageMismatchError, match=r"backbone\.dim"):
        build_run(_cfg(**{"model.dim": 16}), umls, runs / "transe")
    with pytest.raises(StageMismatchError, match="dataset"):
        build_run(_cfg(), umls, runs / "nations")


def test_build_run_refuses_a_checkpoint_without_record(runs, umls, tmp_path):
    ck = read_checkpoint(runs / "transe" / BEST_MODEL)
    ck["stage_record"] = None
    torch_save(ck, tmp_path / BEST_MODEL)
    with pytest.raises(StageMismatchError, match="no stage record"):
        build_run(_cfg(), umls, tmp_path)


def test_build_run_without_init_ignores_the_pretraining(runs, umls):
    cfg = _cfg(**{"model.name": "distmult", "train.init_from_pretrained": "false"})
    model, _ = build_run(cfg, umls, runs / "transe")
    fresh, _ = build_run(cfg, umls, None)
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k


def test_build_run_starts_from_the_pretrained_weights(runs, umls):
    model, _ = build_run(_cfg(), umls, runs / "transe")
    saved = read_checkpoint(runs / "transe" / BEST_MODEL)["model"]
    assert set(model.state_dict()) == set(saved)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    fresh, _ = build_run(_cfg(), umls, None)
    assert not torch.equal(fresh.entity.weight, model.entity.weight)
    # a DistMult run starts from a pretraining of DistMult (--source backbone), whatever its training mode
    dm, _ = build_run(_cfg(**{"model.name": "distmult"}), umls, runs / "dm_backbone")
    assert torch.equal(dm.entity.weight, read_checkpoint(runs / "dm_backbone" / BEST_MODEL)["model"]["entity.weight"])


# --- checkpoints ----------------------------------------------------------------------------
def test_load_trained_model_is_in_eval_mode(tmp_path):
    cfg = tiny_config(**{"model.name": "conve", "model.dim": 8})["model"]
    model = build_model(cfg, 6, 2)
    torch_save(
        {"model": model.state_dict(), "model_config": cfg, "num_entities": 6, "num_relations": 2}, tmp_path / BEST_MODEL
    )
    loaded = load_trained_model(tmp_path / BEST_MODEL)
    assert not loaded.training and not any(m.training for m in loaded.modules())
    h, r = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1])
    assert torch.equal(loaded.score_all_tails(h, r), loaded.score_all_tails(h, r))  # no dropout
    assert stage_record_of(tmp_path) is None  # files of older versions carry no record
    other = build_model(cfg, 6, 2)
    init_from_checkpoint(other, tmp_path / BEST_MODEL)
    assert torch.equal(other.entity.weight, model.entity.weight) and torch.equal(other.fc.weight, model.fc.weight)


def test_read_checkpoint_of_an_empty_folder_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="dans-kgc pretrain"):
        stage_record_of(tmp_path)


# --- the CLI's refusals: exit code 2 and one line naming both sides -------------------------
def test_cli_train_refuses_a_pretraining_of_another_backbone(runs, sets, tmp_path, caplog):
    rc = cli.main(
        [
            "train",
            "--dataset",
            "umls",
            "--out",
            str(tmp_path / "r"),
            "--pretrained",
            str(runs / "transe"),
            "--quiet",
            *sets,
            "--set",
            "model.name=distmult",
        ]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "transe (dim 8)" in errors[0] and "distmult (dim 8)" in errors[0]
    assert not (tmp_path / "r" / BEST_MODEL).exists()


def test_cli_train_from_its_own_pretraining_and_evaluate_record_the_backbone(runs, sets, tmp_path):
    out = tmp_path / "r"
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "umls",
                "--out",
                str(out),
                "--pretrained",
                str(runs / "dm_backbone"),
                "--quiet",
                *sets,
                "--set",
                "model.name=distmult",
                "--set",
                "train.mode=one_to_n",
            ]
        )
        == 0
    )
    assert cli.main(["evaluate", "--run", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics_test.json").read_text())
    run = json.loads((out / "run.json").read_text())
    for info in (metrics["backbone"], run["backbone"]):
        assert (info["name"], info["dim"], info["mode"], info["label"]) == ("distmult", 8, "one_to_n", "DistMult (1-N)")
    assert set(metrics["anchor_diagnostic"]) >= {"anchor_outscores_answer", "mrr_anchor_removed"}
    assert run["stage_record"] is None  # a training run is no stage output


def test_cli_dam_fit_refuses_a_pretraining_that_is_not_its_semantic_source(runs, sets, tmp_path, caplog):
    rc = cli.main(
        [
            "dam",
            "fit",
            "--dataset",
            "umls",
            "--pretrained",
            str(runs / "transe"),
            "--out",
            str(tmp_path / "d"),
            *sets,
            "--set",
            "dam.semantic_source=backbone",
            "--set",
            "model.name=distmult",
        ]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "transe (dim 8)" in errors[0] and "distmult (dim 8)" in errors[0]
    assert "dam.semantic_source: backbone" in errors[0]
    assert not (tmp_path / "d").exists()


def test_cli_dam_fit_refuses_a_pretraining_of_another_dataset(runs, sets, tmp_path, caplog):
    rc = cli.main(
        ["dam", "fit", "--dataset", "umls", "--pretrained", str(runs / "nations"), "--out", str(tmp_path / "d"), *sets]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "on nations/kge" in errors[0] and "on umls/redgnn" in errors[0]


def test_cli_diffusion_fit_refuses_a_pretraining_of_another_backbone(runs, sets, tmp_path, caplog):
    rc = cli.main(
        [
            "diffusion",
            "fit",
            "--dataset",
            "umls",
            "--pretrained",
            str(runs / "dm_transe"),
            "--out",
            str(tmp_path / "d"),
            *sets,
            *DIFF,
            "--set",
            "model.name=distmult",
            "--set",
            "dans.use_dam=false",
        ]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "transe (dim 8)" in errors[0] and "distmult (dim 8)" in errors[0]


def test_cli_train_refuses_a_warm_start_of_another_backbone(runs, sets, tmp_path, caplog):
    assert (
        cli.main(
            [
                "diffusion",
                "fit",
                "--dataset",
                "umls",
                "--pretrained",
                str(runs / "transe"),
                "--out",
                str(tmp_path / "d"),
                *sets,
                *DIFF,
                "--set",
                "dans.use_dam=false",
            ]
        )
        == 0
    )
    caplog.clear()
    rc = cli.main(
        [
            "train",
            "--dataset",
            "umls",
            "--out",
            str(tmp_path / "r"),
            "--diffusion",
            str(tmp_path / "d"),
            "--quiet",
            *sets,
            *DIFF,
            "--set",
            "model.name=distmult",
            "--set",
            "train.sampler=dans",
            "--set",
            "dans.use_dam=false",
        ]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "transe (dim 8)" in errors[0] and "distmult (dim 8)" in errors[0]


def test_cli_train_refuses_a_dam_of_another_semantic_source(runs, umls, sets, tmp_path, caplog):
    # a DAM output made from the TransE pretraining, by hand (only its report's stage record is read first)
    cfg = _cfg()
    dam_dir = tmp_path / "dam"
    dam_dir.mkdir()
    rec = stage_record("dam", cfg, umls, semantic_backbone(cfg), semantic_source="transe")
    (dam_dir / "dam_report.json").write_text(json.dumps({"stage_record": rec}))
    rc = cli.main(
        [
            "train",
            "--dataset",
            "umls",
            "--out",
            str(tmp_path / "r"),
            "--dam",
            str(dam_dir),
            "--quiet",
            *sets,
            *DIFF,
            "--set",
            "model.name=distmult",
            "--set",
            "train.sampler=dans",
            "--set",
            "dam.semantic_source=backbone",
        ]
    )
    assert rc == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "transe (dim 8)" in errors[0] and "distmult (dim 8)" in errors[0]
