"""Translation configs: defaults, presets, JSON files, `key=value` overrides,
and errors that name the field (or the file and line)."""

import dataclasses
import json

import pytest

from training.core import config as config_lib
from training.core.config import ConfigError
from training.translation.config import PRESETS, TranslationConfig


def load(preset=None, config_file=None, overrides=()):
    return config_lib.load(TranslationConfig, PRESETS, preset, config_file, overrides)


def write_json(tmp_path, value, name="config.json"):
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def test_defaults_without_preset():
    assert load() == TranslationConfig()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_sets_exactly_its_fields(preset):
    config = load(preset)
    defaults = TranslationConfig()
    for field in dataclasses.fields(TranslationConfig):
        expected = PRESETS[preset].get(field.name, getattr(defaults, field.name))
        assert getattr(config, field.name) == expected, field.name
        assert type(getattr(config, field.name)) is type(getattr(defaults, field.name)) or \
            getattr(defaults, field.name) is None


def test_tiny_preset_is_small():
    tiny = load("tiny")
    assert tiny.units == 32 and tiny.embedding_dim == 32
    assert tiny.epochs * tiny.steps_per_epoch <= 100
    assert tiny.max_train_pairs == 2000 and tiny.beam_width == 2


def test_unknown_preset():
    with pytest.raises(ConfigError) as error:
        load("huge")
    assert "huge" in str(error.value)
    for name in PRESETS:
        assert name in str(error.value)


def test_json_file_over_preset_and_overrides_over_json(tmp_path):
    path = write_json(tmp_path, {"units": 48, "dropout": 0.25, "data": "files", "epochs": 7,
                                 "data_files": "pairs.tsv"})
    config = load("tiny", path, ["epochs=9"])
    assert config.units == 48 and config.dropout == 0.25 and config.data == "files"
    assert config.epochs == 9  # the override wins
    assert config.embedding_dim == PRESETS["tiny"]["embedding_dim"]  # the preset stays
    assert config.rnn_type == TranslationConfig().rnn_type  # the default stays


@pytest.mark.parametrize("override, field, expected", [
    ("units=64", "units", 64),
    ("units= 64 ", "units", 64),
    ("dropout=0.25", "dropout", 0.25),
    ("learning_rate=1e-3", "learning_rate", 0.001),
    ("max_train_seconds=5", "max_train_seconds", 5.0),
    ("skip_bad_lines=true", "skip_bad_lines", True),
    ("skip_bad_lines=Yes", "skip_bad_lines", True),
    ("skip_bad_lines=1", "skip_bad_lines", True),
    ("skip_bad_lines=off", "skip_bad_lines", False),
    ("skip_bad_lines=0", "skip_bad_lines", False),
    ("tfds_data_dir=none", "tfds_data_dir", None),
    ("tfds_data_dir=/data/tfds", "tfds_data_dir", "/data/tfds"),
    ("data_files=src.txt,tgt.txt", "data_files", "src.txt,tgt.txt"),
    ("data_files=a=b.tsv", "data_files", "a=b.tsv"),
    ("direction=es-en", "direction", "es-en"),
])
def test_override_type_conversion(override, field, expected):
    value = getattr(load("tiny", overrides=[override]), field)
    assert value == expected
    assert type(value) is type(expected)


def test_later_override_wins():
    assert load(overrides=["units=64", "units=128"]).units == 128


@pytest.mark.parametrize("override, field", [
    ("units=abc", "units"),
    ("units=2.5", "units"),
    ("epochs=", "epochs"),
    ("dropout=much", "dropout"),
    ("skip_bad_lines=maybe", "skip_bad_lines"),
    ("batch_size=none", "batch_size"),
])
def test_bad_override_value_names_the_field(override, field):
    with pytest.raises(ConfigError) as error:
        load("tiny", overrides=[override])
    assert field in str(error.value)


@pytest.mark.parametrize("key", ["nosuchkey", "unit", "Units"])
def test_unknown_override_key_is_named(key):
    with pytest.raises(ConfigError) as error:
        load(overrides=[f"{key}=1"])
    assert repr(key) in str(error.value)


def test_unknown_key_suggests_a_close_field():
    with pytest.raises(ConfigError, match="did you mean 'units'"):
        load(overrides=["unit=64"])


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match="key=value"):
        load(overrides=["units"])


def test_json_values_are_checked(tmp_path):
    assert load(config_file=write_json(tmp_path, {"units": 4.0})).units == 4
    assert load(config_file=write_json(tmp_path, {"tfds_data_dir": None})).tfds_data_dir is None
    for values, field in (({"units": 2.5}, "units"), ({"units": None}, "units"),
                          ({"skip_bad_lines": 1}, "skip_bad_lines"),
                          ({"epochs": "many"}, "epochs")):
        path = write_json(tmp_path, values)
        with pytest.raises(ConfigError) as error:
            load(config_file=path)
        assert field in str(error.value)
        assert path in str(error.value) or "null" in str(error.value)


def test_unknown_json_key_names_key_and_file(tmp_path):
    path = write_json(tmp_path, {"units": 64, "attenton": "dot"})
    with pytest.raises(ConfigError) as error:
        load(config_file=path)
    assert "'attenton'" in str(error.value) and path in str(error.value)


def test_invalid_json_names_the_line(tmp_path):
    path = write_json(tmp_path, '{\n  "units": 64,\n  "dropout": 0.1,,\n  "epochs": 2\n}\n')
    with pytest.raises(ConfigError) as error:
        load(config_file=path)
    assert f"{path}:3:" in str(error.value)
    assert "invalid JSON" in str(error.value)


def test_json_must_be_an_object(tmp_path):
    path = write_json(tmp_path, "[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load(config_file=path)


def test_saved_config_loads_back_equal(tmp_path):
    config = load("tiny", overrides=["units=64", "tfds_data_dir=/x", "skip_bad_lines=true"])
    path = str(tmp_path / "saved.json")
    config_lib.save(config, path)
    assert load(config_file=path) == config


def test_more_sampled_candidates_than_target_words_is_refused():
    with pytest.raises(ConfigError, match="sampled_softmax: 600 candidates need a larger "
                                          "target_vocab_size than 500"):
        load("tiny", overrides=["sampled_softmax=600"])


def test_a_corpus_with_fewer_words_than_candidates_trains_with_the_exact_softmax():
    from training.translation.model import build_model

    config = load("tiny")
    assert config.sampled_softmax == 64
    assert build_model(config, 100, 500).sampled_softmax == 64
    assert build_model(config, 100, 40).sampled_softmax == 0
