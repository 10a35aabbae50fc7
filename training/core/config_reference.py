"""The configuration reference: every task's config fields, in Markdown.

Rendered from the config dataclasses (each field's type, default, rules and
`help`) and the tasks' presets, so that docs/configuration.md says what the
code does:

    python -m training.core.config_reference                                # prints it
    python -m training.core.config_reference --write docs/configuration.md  # writes it
"""

import argparse
import dataclasses
import sys
import typing

from training.core import config as config_lib
from training.core.config import TrainingConfig

DOCUMENT = "docs/configuration.md"
COMMAND = f"python -m training.core.config_reference --write {DOCUMENT}"
TASK_NAMES = ("translation", "captioning", "video", "ocr")


def markdown_reference(tasks=None):
    """The Markdown reference of the tasks' configs: how a config is built,
    the fields every task shares, then per task its own fields, the shared
    fields it gives another default or rule, and its presets.

    Args:
        tasks: `training.core.cli.Task`s; default: every task of
            `TASK_NAMES` (importing captioning's config imports Keras).

    Example:

    >>> from training.translation.__main__ import TASK
    >>> text = markdown_reference([TASK])
    >>> text.splitlines()[0].startswith("Generated from the config dataclasses")
    True
    >>> "| `beam_width` | int | `4` | `>= 1` |" in text
    True
    """
    if tasks is None:
        import importlib

        tasks = [importlib.import_module(f"training.{name}.__main__").TASK
                 for name in TASK_NAMES]
    commands = ", ".join(f"`python -m training.{task.name}`" for task in tasks)
    lines = [
        f"Generated from the config dataclasses by `{COMMAND}`: edit the fields' `help` "
        f"in `training/*/config.py`, not this file.",
        "",
        "# Configuration reference",
        "",
        f"Each training command ({commands}) builds its config in layers, each one "
        f"overriding the one before: the defaults below < the preset (`--preset NAME`, "
        f"else the task's default preset) < a JSON object of fields (`--config FILE.json`) "
        f"< `--set FIELD=VALUE` (repeatable). Every value is checked against its field's "
        f"type and allowed values before any data is read. "
        f"`python -m training.<task> --list-options` prints every field with its value "
        f"for that command line.",
        "",
        "Values are written as in the JSON file: `true`/`false`, `null` for none, `\"\"` "
        "for an empty text; `--set` takes the same words (`--set tfds_data_dir=null`).",
        "",
        "## Shared by every task",
        "",
        "Reading the user's data, the decoder, training, evaluation and export fields of "
        "every task (`training/core/config.py`). A task may give one of them another default: see "
        "its section.",
        "",
        *_field_table(dataclasses.fields(TrainingConfig)),
    ]
    for task in tasks:
        lines += ["", *_task_section(task)]
    return "\n".join(lines) + "\n"


def _task_section(task):
    """A task's heading, its own fields, the shared fields it changes, its presets."""
    summary = " ".join(task.description.strip().split("\n\n")[0].split())
    config_path = task.config_class.__module__.replace(".", "/") + ".py"
    lines = [
        f"## {task.name}",
        "",
        f"`python -m training.{task.name}`: {summary[:1].lower()}{summary[1:]} Its own "
        f"fields are in `{config_path}`.",
        "",
        *_field_table([field for field in dataclasses.fields(task.config_class)
                       if field.name not in _shared_fields()]),
    ]
    changed = _changed_shared_fields(task.config_class)
    if changed:
        lines += ["", f"### Shared fields with another default in {task.name}", "",
                  "| Field | Default here | Shared default | Allowed values | Description |",
                  "|---|---|---|---|---|"]
        for field in changed:
            shared = _shared_fields()[field.name]
            lines.append(_row(_code(field.name), _code(_shown_default(field)),
                              _code(_shown_default(shared)),
                              _code(config_lib.allowed_values(field)),
                              _text(field.metadata["help"])))
    if task.presets:
        lines += ["", f"### Presets of {task.name}", "",
                  f"`--preset NAME` sets these fields; `{task.default_preset}` applies when "
                  f"no preset is given. A blank cell keeps the default.", ""]
        lines += _preset_table(task)
    return lines


def _field_table(fields):
    lines = ["| Field | Type | Default | Allowed values | Description |",
             "|---|---|---|---|---|"]
    for field in fields:
        lines.append(_row(_code(field.name), _type_name(field.type),
                          _code(_shown_default(field)),
                          _code(config_lib.allowed_values(field)),
                          _text(field.metadata["help"])))
    return lines


def _preset_table(task):
    """Rows: every field some preset sets, in the config's order; columns:
    the default, then each preset's value."""
    names = list(task.presets)
    fields = [field for field in dataclasses.fields(task.config_class)
              if any(field.name in task.presets[name] for name in names)]
    headers = [f"{name} (default)" if name == task.default_preset else name for name in names]
    lines = ["| Field | Default | " + " | ".join(headers) + " |",
             "|---|---|" + "---|" * len(names)]
    for field in fields:
        values = [_code(config_lib.shown_value(task.presets[name][field.name]))
                  if field.name in task.presets[name] else "" for name in names]
        lines.append(_row(_code(field.name), _code(_shown_default(field)), *values))
    return lines


def _shared_fields():
    return {field.name: field for field in dataclasses.fields(TrainingConfig)}


def _changed_shared_fields(config_class):
    """The shared fields `config_class` declares again with another default
    or other rules (a declaration that repeats the shared one is left out)."""
    shared = _shared_fields()

    def rules(field):
        return {key: field.metadata.get(key) for key in config_lib.RULES}

    return [field for field in dataclasses.fields(config_class) if field.name in shared
            and (field.default != shared[field.name].default
                 or rules(field) != rules(shared[field.name]))]


def _shown_default(field):
    return config_lib.shown_value(field.default)


def _type_name(hint):
    """`int`, `str`, ...; `str or null` for `Optional[str]`."""
    if typing.get_origin(hint) is typing.Union:
        kinds = [_type_name(kind) for kind in typing.get_args(hint) if kind is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in typing.get_args(hint) else "")
    return getattr(hint, "__name__", str(hint))


def _code(text):
    return f"`{text}`" if text else ""


def _text(text):
    # "<export_name>" would be read as an HTML tag and vanish (the entity
    # works in GitHub's Markdown and in the documentation site's).
    return text.replace("<", "&lt;")


def _row(*cells):
    # A "|" inside a cell would end it, even inside a code span.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.core.config_reference",
        description="Print (or write) the Markdown reference of every task's config fields.")
    parser.add_argument("--write", metavar="PATH",
                        help=f"write it to PATH (the project's copy: {DOCUMENT})")
    args = parser.parse_args(argv)
    text = markdown_reference()
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
