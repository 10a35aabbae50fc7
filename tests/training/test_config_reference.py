"""Every config field says what it means (`help`), and the reference built
from those fields -- docs/configuration.md, `--list-options`, `--help` --
says what the code does."""

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from training.core import cli, config_reference
from training.core import config as config_lib
from training.core.config import ConfigError, TrainingConfig, option
from training.translation.__main__ import TASK as TRANSLATION

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASK_MODULES = [f"training.{name}.__main__" for name in config_reference.TASK_NAMES]


def task(module_name):
    import importlib

    return importlib.import_module(module_name).TASK


# ------------------------------------------------------------------- help
@pytest.mark.parametrize("module_name", TASK_MODULES)
def test_every_field_of_every_task_config_has_one_line_help(module_name):
    config_class = task(module_name).config_class
    assert config_lib.fields_without_help(TrainingConfig) == []
    assert config_lib.fields_without_help(config_class) == [], (
        f"{config_class.__name__}: declare these fields with option(..., help=...)")


def test_a_field_without_one_line_help_is_flagged():
    @dataclasses.dataclass
    class Config:
        plain: int = 3
        rules_only: int = dataclasses.field(default=1, metadata={"minimum": 1})
        empty: str = option("x", help=" ")
        two_lines: str = option("x", help="First line.\nSecond line.")
        described: int = option(2, minimum=1, help="Stacked layers.")

    assert config_lib.fields_without_help(Config) == ["plain", "rules_only", "empty",
                                                      "two_lines"]


def test_option_refuses_a_field_without_help():
    with pytest.raises(TypeError, match="help"):
        option(1, minimum=0)


def test_help_is_text_not_a_rule():
    @dataclasses.dataclass
    class Config:
        name: str = option("model", help="Folder name.")
        layers: int = option(2, minimum=1, help="Stacked layers.")

    assert config_lib.check(Config(name="other")).name == "other"
    with pytest.raises(ConfigError, match=r"^layers: must be >= 1, received 0$"):
        config_lib.check(Config(layers=0))


# ---------------------------------------------------------- allowed values
def test_allowed_values_are_written_as_the_rules_say():
    @dataclasses.dataclass
    class Config:
        cell: str = option("gru", choices=("gru", "lstm"), help="h")
        units: int = option(8, minimum=1, help="h")
        vocabulary: int = option(8, above=4, help="h")
        objects: int = option(3, minimum=1, maximum=3, help="h")
        rate: float = option(0.1, minimum=0.0, below=1.0, help="h")
        step: float = option(1.0, above=0.0, maximum=2.0, help="h")
        seed: int = option(0, help="h")

    written = {field.name: config_lib.allowed_values(field)
               for field in dataclasses.fields(Config)}
    assert written == {"cell": "gru, lstm", "units": ">= 1", "vocabulary": "> 4",
                       "objects": "1 .. 3", "rate": ">= 0.0, < 1.0", "step": "> 0.0, <= 2.0",
                       "seed": ""}


# ------------------------------------------------------ docs/configuration.md
def test_docs_configuration_md_is_what_the_generator_writes_now():
    with open(os.path.join(REPO, config_reference.DOCUMENT), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == config_reference.markdown_reference(), (
        f"{config_reference.DOCUMENT} is stale: run `{config_reference.COMMAND}`")


def test_reference_starts_with_how_it_is_made_and_the_precedence():
    text = config_reference.markdown_reference([TRANSLATION])
    first_line = text.splitlines()[0]
    assert first_line.startswith("Generated") and config_reference.COMMAND in first_line
    assert ("the defaults below < the preset (`--preset NAME`, else the task's default "
            "preset) < a JSON object of fields (`--config FILE.json`) < `--set FIELD=VALUE`"
            in text)


def test_reference_has_shared_fields_once_and_each_task_its_own_and_changes():
    text = config_reference.markdown_reference([TRANSLATION])
    shared, translation = text.split("\n## translation\n")
    assert "| `beam_width` | int | `4` | `>= 1` | Beams of beam search" in shared
    assert "`beam_width`" not in translation.split("### Presets")[0]
    assert "| `source_vocab_size` | int | `8000` | `> 4` |" in translation
    assert "| `tfds_data_dir` | str or null | `null` |  |" in translation
    # A shared field the task gives another default: both defaults, in its section.
    assert re.search(r"\| `no_repeat_ngram_size` \| `4` \| `0` \| `>= 0` \| No output", translation)
    # A path in a description stays visible (not read as an HTML tag).
    assert "workdir/export/&lt;export_name>/&lt;export_version>" in translation


def test_reference_lists_each_preset_and_the_fields_it_sets():
    text = config_reference.markdown_reference([TRANSLATION])
    presets = text.split("### Presets of translation")[1]
    assert "| Field | Default | main (default) | large | tiny |" in presets
    assert "| `units` | `256` | `256` | `512` | `32` |" in presets
    assert "| `encoder_layers` | `1` |  | `2` |  |" in presets   # large alone sets it
    assert "`rnn_type`" not in presets                          # no preset sets it


def test_write_flag_writes_the_reference(tmp_path, capsys):
    path = tmp_path / "configuration.md"
    assert config_reference._main(["--write", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == config_reference.markdown_reference()
    assert capsys.readouterr().out == ""


# --------------------------------------------------- --list-options, --help
def test_list_options_prints_each_field_its_value_and_meaning_and_exits_0(tmp_path, capsys):
    workdir = tmp_path / "run"
    argv = ["--list-options", "--set", "units=64", "--workdir", str(workdir)]
    assert cli.main(TRANSLATION, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "python -m training.translation --preset main: config fields"
    row = next(i for i, line in enumerate(lines) if line.startswith("no_repeat_ngram_size "))
    assert lines[row].split() == ["no_repeat_ngram_size", "4", ">=", "0"]
    assert lines[row + 1] == "    No output repeats an n-gram of this many words; 0: off."
    # --set, and the main preset, change a value: the default is shown beside it.
    assert re.search(r"^units +64 \(default 256\) +>= 1$", "\n".join(lines), re.M)
    assert re.search(r"^attention +general \(default additive\) ", "\n".join(lines), re.M)
    assert not workdir.exists()  # nothing was trained


def test_list_options_refuses_a_bad_value_like_a_run():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(TRANSLATION, ["--list-options", "--set", "beam_width=0"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("module_name", TASK_MODULES)
def test_list_options_starts_no_tensorflow(module_name):
    """python -X importtime lists every module the command imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module_name, "--list-options"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max_eval_examples" in result.stdout or "max_eval_pairs" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "training.core.config" in imported
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]


@pytest.mark.parametrize("module_name", TASK_MODULES)
def test_help_points_to_the_reference_and_list_options(module_name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(task(module_name), ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--list-options" in out and "docs/configuration.md" in out
