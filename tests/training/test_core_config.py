"""Configs are checked when they load: a bad choice, range or combination
fails at once, naming the field, before any data is read."""

import os
import re
import subprocess
import sys

import pytest

from training.core import config as config_lib
from training.core.config import ConfigError
from training.translation.config import PRESETS, TranslationConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(*overrides, preset="tiny"):
    return config_lib.load(TranslationConfig, PRESETS, preset, None, overrides)


# `received` is the value after parsing, as the message writes it (repr).
@pytest.mark.parametrize("override, field, words, received", [
    ("beam_width=0", "beam_width", ">= 1", "0"),
    ("attention=foo", "attention", "additive, dot, general, scaled_dot", "'foo'"),
    ("encoder=lstm", "encoder", "rnn, conv, transformer", "'lstm'"),
    ("decoder=luong", "decoder", "fast, bahdanau, luong_feeding", "'luong'"),
    ("rnn_type=rnn", "rnn_type", "gru, lstm", "'rnn'"),
    ("dropout=1.0", "dropout", "< 1.0", "1.0"),
    ("dropout=-0.1", "dropout", ">= 0.0", "-0.1"),
    ("learning_rate=0", "learning_rate", "> 0.0", "0.0"),
    ("learning_rate=nan", "learning_rate", "finite", "nan"),
    ("batch_size=0", "batch_size", ">= 1", "0"),
    ("checkpoint_steps=0", "checkpoint_steps", ">= 1", "0"),
    ("max_train_seconds=-1", "max_train_seconds", ">= 0.0", "-1.0"),
    ("strategy=tpu", "strategy", "default, mirrored, multi_worker", "'tpu'"),
    ("decoder_initial_state=ones", "decoder_initial_state", "zeros, mean_memory", "'ones'"),
    ("source_vocab_size=4", "source_vocab_size", "> 4", "4"),
    ("data=web", "data", "bundled, files, tfds", "'web'"),
])
def test_bad_value_names_field_and_what_it_accepts(override, field, words, received):
    with pytest.raises(ConfigError) as error:
        load(override)
    message = str(error.value)
    assert message.startswith(f"{field}:") and words in message, message
    assert message.endswith(f" received {received}"), message


@pytest.mark.parametrize("overrides, field", [
    (["beam_width=2", "num_hypotheses=3"], "num_hypotheses"),
    (["data=files"], "data_files"),
    (["units=33"], "units"),                           # rnn encoder: units / 2 per direction
    (["encoder=transformer", "units=30"], "units"),    # 4 heads
    (["export_name=../x"], "export_name"),
])
def test_bad_combination_names_the_field(overrides, field):
    with pytest.raises(ConfigError) as error:
        load(*overrides)
    assert str(error.value).startswith(f"{field}:"), str(error.value)


def test_every_preset_and_the_defaults_pass_the_checks():
    for preset in [None, *PRESETS]:
        config_lib.check(load(preset=preset))


def test_a_valid_combination_is_accepted():
    config = load("beam_width=3", "num_hypotheses=3", "decoder_initial_state=mean_memory")
    assert (config.beam_width, config.num_hypotheses) == (3, 3)


def test_cli_fails_before_reading_data(tmp_path):
    """beam_width=0 used to fail when the export was traced, after training."""
    result = subprocess.run(
        [sys.executable, "-m", "training.translation", "--preset", "tiny", "--set",
         "beam_width=0", "--workdir", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 2
    assert "beam_width: must be >= 1, received 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
    assert "tensorflow" not in result.stderr.lower()


# ------------------------------------------ strategies, distribution, precision
def test_multi_worker_is_refused_with_the_reason_and_the_jax_route(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(ConfigError) as error:
        load("strategy=multi_worker")
    message = str(error.value)
    assert message.startswith("strategy:")
    assert "keras-team/keras#20585" in message
    assert "KERAS_BACKEND=jax" in message and "--set distribution=data_parallel" in message
    for variable in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID"):
        assert variable in message


def test_mirrored_is_still_accepted_on_tensorflow():
    assert load("strategy=mirrored").strategy == "mirrored"


def test_cli_refuses_multi_worker_before_tensorflow_starts(tmp_path):
    """The refusal is a config check: exit 2 before any data is read, no
    TensorFlow import (python -X importtime lists every module imported)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "training.translation", "--preset", "tiny",
         "--set", "strategy=multi_worker", "--workdir", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "keras-team/keras#20585" in result.stderr
    assert "distribution=data_parallel" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "training.core.config" in imported  # importtime saw the imports
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]


@pytest.mark.parametrize("backend, overrides, words", [
    ("tensorflow", ["distribution=data_parallel"], "needs the JAX backend"),
    ("jax", ["distribution=data_parallel", "strategy=mirrored"], "leave strategy=default"),
    ("jax", ["strategy=mirrored"], "use --set distribution=data_parallel"),
])
def test_distribution_and_strategy_combinations_are_checked(backend, overrides, words,
                                                            monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    monkeypatch.setattr(config_lib, "keras_backend", lambda: backend)
    with pytest.raises(ConfigError, match=words):
        load(*overrides)


def test_data_parallel_is_accepted_on_jax(monkeypatch):
    monkeypatch.setattr(config_lib, "keras_backend", lambda: "jax")
    assert load("distribution=data_parallel").distribution == "data_parallel"


def test_precision_choices():
    assert load().precision == "float32"
    assert load("precision=mixed_bfloat16").precision == "mixed_bfloat16"
    with pytest.raises(ConfigError, match="precision: must be one of float32, mixed_bfloat16, "
                                          "mixed_float16"):
        load("precision=float16")


# ---------------------------------------------------------------- --export-only
@pytest.mark.parametrize("task", ["translation", "captioning", "video"])
def test_export_only_names_what_an_unfinished_workdir_lacks(task, tmp_path, capsys):
    import importlib

    from training.core import cli

    main_module = importlib.import_module(f"training.{task}.__main__")
    with pytest.raises(SystemExit) as exit_info:  # argparse: no config.json there
        cli.main(main_module.TASK, ["--workdir", str(tmp_path), "--export-only"])
    assert exit_info.value.code == 2
    assert "config.json does not exist: not a workdir of a training run" in \
        capsys.readouterr().err
    # A workdir whose run wrote its config but never finished: no model.keras.
    config = config_lib.load(main_module.TASK.config_class, main_module.TASK.presets, "tiny",
                             None, [])
    config_lib.save(config, str(tmp_path / "config.json"))
    assert cli.main(main_module.TASK, ["--workdir", str(tmp_path), "--export-only"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {tmp_path} is not a finished workdir: no ")
    assert "model.keras" in error and "(train it first)" in error


def test_export_only_refuses_a_vocabulary_built_for_another_size(tmp_path, capsys):
    """`--set target_vocab_size=N` against a workdir whose vocabularies were
    built for another size: exit 2 naming the file, not a traceback."""
    import json

    from training.core import cli
    from training.core.text import SPECIAL_TOKENS
    from training.translation.__main__ import TASK

    config = config_lib.load(TASK.config_class, TASK.presets, "tiny", None, [])
    config_lib.save(config, str(tmp_path / "config.json"))
    for side, size in (("source", config.source_vocab_size),
                       ("target", config.target_vocab_size)):
        (tmp_path / f"vocabulary.{side}.json").write_text(json.dumps(
            {"words": [*SPECIAL_TOKENS, "a"], "max_tokens": 100,
             "max_size": size}))
    (tmp_path / "model.keras").write_bytes(b"")  # never read: the vocabulary fails first
    argv = ["--workdir", str(tmp_path), "--export-only", "--set", "target_vocab_size=400"]
    assert cli.main(TASK, argv) == 2
    error = capsys.readouterr().err
    target_path = tmp_path / "vocabulary.target.json"
    assert error.startswith(f"error: {target_path} was built with max_size=")
    assert "the config asks for 400" in error


# ------------------------------------------------------------- declarations
@pytest.mark.parametrize("task", ["translation", "captioning", "video"])
def test_a_task_declaration_names_its_job_and_data_error(task):
    import importlib

    declaration = importlib.import_module(f"training.{task}.__main__").TASK
    job = importlib.import_module(f"training.{task}.train")
    assert callable(job.train_and_evaluate) and callable(job.export_workdir)
    (error_class,) = declaration.input_errors()
    assert issubclass(error_class, Exception)
    assert error_class.__module__ == f"training.{task}.data"


def test_restart_removes_checkpoints_logs_and_vocabularies_only(tmp_path, monkeypatch):
    from training.core import cli
    from training.video.__main__ import TASK

    for name in ("checkpoints/latest.json", "logs/train/events", "vocabulary.json",
                 "vocabulary.source.json", "config.json", "report.json", "export/v/1/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    runs = []
    monkeypatch.setattr(TASK, "run", lambda config, workdir: runs.append(workdir))
    assert cli.main(TASK, ["--preset", "tiny", "--workdir", str(tmp_path), "--restart"]) == 0
    assert runs == [str(tmp_path)]
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")
                  if path.is_file())
    assert left == ["config.json", "export/v/1/x", "report.json"]


@pytest.mark.parametrize("task", ["captioning", "video"])
def test_the_caption_tasks_share_their_common_fields_from_one_declaration(task):
    """CaptionTaskConfig's fields reach both caption tasks as declared there
    (one help line, one rule), and a bad value is refused naming the field."""
    import dataclasses
    import doctest
    import importlib

    from training.core import caption_config, example_data_config

    declaration = importlib.import_module(f"training.{task}.__main__").TASK
    task_fields = {field.name: field for field in dataclasses.fields(declaration.config_class)}
    shared = dataclasses.fields(caption_config.CaptionTaskConfig)
    own = [field for field in shared if field.name not in
           config_lib.TrainingConfig.__dataclass_fields__
           or field.name in ("decoder", "decoder_initial_state")]
    assert len(own) >= 8
    for field in own:
        assert task_fields[field.name].metadata == field.metadata, field.name
        assert task_fields[field.name].default == field.default, field.name
    config = config_lib.load(declaration.config_class, declaration.presets, "tiny")
    assert (config.decoder, config.decoder_initial_state) == ("bahdanau", "mean_memory")
    with pytest.raises(ConfigError, match=r"max_caption_tokens: must be >= 1, received 0"):
        config_lib.load(declaration.config_class, declaration.presets, "tiny", None,
                        ["max_caption_tokens=0"])
    for module in (caption_config, example_data_config):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("task, overrides, message", [
    # The shared data rule (ExampleDataConfig), not restated by the tasks.
    ("captioning", ["data=folder", "images_dir=Images"],
     "images_dir: data=folder needs images_dir=DIR and captions_file=FILE"),
    ("video", ["data=folder", "captions_file=c.csv"],
     "clips_dir: data=folder needs clips_dir=DIR and captions_file=FILE"),
    # TrainingConfig's rule, though the tasks' check_combinations never call super().
    ("ocr", ["export_name=../up"], "export_name: must be a plain directory name"),
    ("video", ["export_name=.hidden"], "export_name: must be a plain directory name"),
    # The task's own rule, after the shared ones passed.
    ("ocr", ["image_width=42"], "image_width: must be a multiple of 4, received 42"),
])
def test_every_level_of_a_task_config_checks_its_own_rules(task, overrides, message):
    """`check` runs the rules of TrainingConfig, of the shared task configs and
    of the task's own config, each class's own: none is skipped because a
    subclass defines check_combinations."""
    import importlib

    declaration = importlib.import_module(f"training.{task}.__main__").TASK
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        config_lib.load(declaration.config_class, declaration.presets, "tiny", None, overrides)
