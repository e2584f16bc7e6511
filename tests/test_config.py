import pytest

from dans_kgc.config import ConfigError, load_config, parse_set


def test_defaults_carry_method_keys():
    cfg = load_config()
    assert cfg["diffusion"]["steps"] == 50
    assert cfg["diffusion"]["beta_global"] == 0.02
    assert cfg["dtm"]["lambda"] == 8.0
    assert cfg["dans"]["eta"] == 0.5


def test_set_overrides_and_parses_yaml_values():
    cfg = load_config([], ["train.epochs=7", "dtm.enabled=false", "dtm.margin_scales=[1,1,1,1]"])
    assert cfg["train"]["epochs"] == 7
    assert cfg["dtm"]["enabled"] is False
    assert cfg["dtm"]["margin_scales"] == [1, 1, 1, 1]


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="train.epoch'"):
        load_config([], ["train.epoch=3"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config([], ["train.batch_size=big"])


def test_bad_choice_is_named():
    with pytest.raises(ConfigError, match="model.name"):
        load_config([], ["model.name=transx"])


def test_yaml_file_error_names_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: [unclosed\n")
    with pytest.raises(ConfigError, match=str(f)):
        load_config([f])


def test_a_runs_recorded_config_remakes_it_on_its_own_dataset_only(tmp_path):
    """A run's config.yaml (save_run_config: the dataset, then every key) is a valid --config for the same
    dataset, giving the recorded config back; for another dataset it stops, naming the file and both."""
    from dans_kgc.pipeline import save_run_config

    recorded = load_config([], ["model.name=quate", "model.dim=32", "train.epochs=3"])
    save_run_config(tmp_path, recorded, "family")
    again = load_config([tmp_path / "config.yaml"], ["model.dim=64"], dataset="family")
    assert again == {**recorded, "model": {**recorded["model"], "dim": 64}}
    with pytest.raises(ConfigError, match=f"{tmp_path / 'config.yaml'}: dataset 'family' is not .* 'umls'"):
        load_config([tmp_path / "config.yaml"], dataset="umls")
    with pytest.raises(ConfigError, match="unknown config key 'dataset'"):  # no command dataset to check it by
        load_config([tmp_path / "config.yaml"])


@pytest.mark.parametrize(
    "text, negatives",
    [
        ("diffusion:\n  snap: true\n  steps: 20\n", "snapped"),
        ("diffusion.snap: false\ndiffusion.steps: 20\n", "continuous"),  # flat dotted keys, as best.yaml writes
    ],
)
def test_a_renamed_key_is_read_under_its_new_name_with_one_warning(tmp_path, caplog, text, negatives):
    """A run config recorded before diffusion.snap became diffusion.negatives (commit 75f1f3a: snap true = the
    snapped negatives, false = the chain's continuous states) is read under the new key, warning once with both
    names, the file, and nothing else of the file changed."""
    f = tmp_path / "config.yaml"
    f.write_text(text)
    cfg = load_config([f])
    assert cfg["diffusion"]["negatives"] == negatives and "snap" not in cfg["diffusion"]
    assert cfg["diffusion"]["steps"] == 20
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert all(s in warnings[0] for s in (str(f), "'diffusion.snap'", "'diffusion.negatives'", negatives)), warnings


def test_a_renamed_key_given_on_the_command_line_migrates_too(caplog):
    assert load_config([], ["diffusion.snap=true"])["diffusion"]["negatives"] == "snapped"
    assert "--set: config key 'diffusion.snap' was renamed 'diffusion.negatives'" in caplog.text


def test_a_renamed_key_next_to_its_new_name_or_with_an_unknown_value_stops():
    with pytest.raises(ConfigError, match="'diffusion.snap' and 'diffusion.negatives' both given"):
        load_config([], ["diffusion.snap=true", "diffusion.negatives=mixed"])
    with pytest.raises(
        ConfigError,
        match=r"--set: config key 'diffusion.snap' = 'sometimes' .* expected one of "
        r"True, False",
    ):
        load_config([], ["diffusion.snap=sometimes"])


def test_migrations_lead_from_dead_keys_to_live_keys_and_valid_values():
    from dans_kgc.config import MIGRATIONS, load_defaults

    def has(cfg, dotted):
        for part in dotted.split("."):
            if not isinstance(cfg, dict) or part not in cfg:
                return False
            cfg = cfg[part]
        return True

    defaults = load_defaults()
    for old, (new, values, _) in MIGRATIONS.items():
        assert not has(defaults, old), old  # a live key is never moved away
        assert has(defaults, new), new
        for value in (values or {}).values():  # every translated value is one the new key accepts
            load_config([], [f"{new}={value}"])


def test_parse_set_requires_equals():
    with pytest.raises(ConfigError):
        parse_set(["train.epochs"])


def test_scientific_notation_is_a_float():
    cfg = load_config([], ["train.lr=1e-3", "diffusion.beta_low=2e-4"])
    assert cfg["train"]["lr"] == 0.001 and cfg["diffusion"]["beta_low"] == 0.0002


def test_config_choices_name_every_registered_backbone():
    from dans_kgc.config import _CHOICES
    from dans_kgc.models import MODELS

    assert _CHOICES[("model", "name")] == set(MODELS)


def test_apply_per_dataset_puts_the_datasets_own_entry_over_the_shared_keys():
    from dans_kgc.config import apply_per_dataset

    recipe = {
        "model.name": "redgnn",
        "model.dim": 64,
        "train.lr": 0.0012,
        "per_dataset": {"family": {"model.dim": 48}, "wn18rr": {"train.lr": 0.0003}},
    }
    assert apply_per_dataset(recipe, "family") == {"model.name": "redgnn", "model.dim": 48, "train.lr": 0.0012}
    assert apply_per_dataset(recipe, "wn18rr") == {"model.name": "redgnn", "model.dim": 64, "train.lr": 0.0003}
    assert (
        apply_per_dataset(recipe, "umls")
        == apply_per_dataset(recipe)
        == {"model.name": "redgnn", "model.dim": 64, "train.lr": 0.0012}
    )
    assert "per_dataset" in recipe  # the recipe itself is left as it was
