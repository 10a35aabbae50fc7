"""The command line every task's `__main__` uses.

    python -m training.TASK [--preset NAME] [--config FILE.json] [--set KEY=VALUE ...]
                            [--workdir DIR] [--restart] [--logical-cpus N]
    python -m training.TASK --workdir DIR --export-only
    python -m training.TASK [--preset NAME] [--set KEY=VALUE ...] --list-options

`--export-only` rebuilds a finished workdir's model (its config.json,
vocabularies and model.keras, written by any backend) and exports it as a
TensorFlow SavedModel: a JAX-trained model is exported this way, in a
subprocess with KERAS_BACKEND=tensorflow.

The config is read and checked before TensorFlow starts, so a bad option
fails at once, naming the field. Bad input data, or a workdir left by
another config, exit with status 2 and a one-line error, no traceback.
`--list-options` prints every config field (its value for that command
line, the values it accepts, what it means) and exits.
"""

import argparse
import dataclasses
import glob
import importlib
import os
import shutil
import sys
import textwrap
from typing import Callable

from keras_attention import native_memory
from training.core import config as config_lib

# What a workdir holds that a restart removes: checkpoints, logs, and the
# vocabularies (`vocabulary.json`, `vocabulary.source.json`, ...).
RESTART_REMOVES = ("checkpoints", "logs", "vocabulary*.json")

# Under every task's --help.
EPILOG = """resuming:
  Rerunning the same command after an interruption resumes at the step where
  it stopped; --restart starts over.

config fields:
  --list-options prints every field of this task's config: its value with the
  --preset, --config and --set given, the values it accepts, what it means.
  docs/configuration.md has them all, with each preset's values."""


@dataclasses.dataclass
class Task:
    """What the command line needs to know of a task: a declaration.

    The task's modules that start TensorFlow are named, not imported, so
    `--help`, `--list-options` and a bad option answer at once.

    Attributes:
        name: The package name under `training` ("translation").
        description: The `--help` text.
        config_class, presets: Its config.
        print_report: `report -> None`, what the user sees at the end.
        data_error: `"module:ClassName"` of the exception that means bad
            input data (exit 2, message only).
        default_preset: The preset without `--preset`.
        workdir_suffix: `config -> str` added to the default workdir's
            name, `runs/<name>-<preset>`; None: nothing.
        job_module: The module with `train_and_evaluate(config, workdir) ->
            report` and `export_workdir(config, workdir) -> path`
            (default: `training.<name>.train`).
    """

    name: str
    description: str
    config_class: type
    presets: dict
    print_report: Callable
    data_error: str
    default_preset: str = "main"
    workdir_suffix: Callable = None
    job_module: str = ""

    def default_workdir(self, config, preset):
        """The workdir without `--workdir`: `runs/<name>-<preset><suffix>`."""
        suffix = self.workdir_suffix(config) if self.workdir_suffix else ""
        return os.path.join("runs", f"{self.name}-{preset}{suffix}")

    def _job(self):
        return importlib.import_module(self.job_module or f"training.{self.name}.train")

    def run(self, config, workdir):
        """Trains, evaluates and exports: the report dict (None on a data-parallel
        process other than 0)."""
        return self._job().train_and_evaluate(config, workdir)

    def export(self, config, workdir):
        """Exports a finished workdir's model; the SavedModel version's path."""
        return self._job().export_workdir(config, workdir)

    def input_errors(self):
        """The exception classes that mean bad input data."""
        module, name = self.data_error.split(":")
        return (getattr(importlib.import_module(module), name),)


def main(task, argv=None):
    """Parses the command line, runs the task, prints its report; the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_memory.retain_freed_memory()  # before TensorFlow's first step buffers
    parser = argparse.ArgumentParser(
        prog=f"python -m training.{task.name}", description=task.description, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    config_lib.add_arguments(parser, task.presets, default_preset=task.default_preset)
    parser.add_argument("--restart", action="store_true",
                        help="delete the workdir's checkpoints, vocabularies and logs, start over")
    parser.add_argument("--logical-cpus", type=int, default=0,
                        help="split the CPU into N logical devices (to try strategy=mirrored)")
    parser.add_argument("--export-only", action="store_true",
                        help="export the finished model of --workdir (its config.json) as a "
                             "TensorFlow SavedModel, and print its path")
    args = parser.parse_args(argv)
    if args.export_only and not args.list_options:
        return _export_only(task, parser, args)
    try:
        config = config_lib.load(task.config_class, task.presets, args.preset, args.config,
                                 args.set)
    except config_lib.ConfigError as error:
        parser.error(str(error))
    if args.list_options:
        print(_options_table(task, config, args.preset))
        return 0
    workdir = args.workdir or task.default_workdir(config, args.preset)
    if args.restart:
        for pattern in RESTART_REMOVES:
            for path in glob.glob(os.path.join(glob.escape(workdir), pattern)):
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)

    from training.core import checkpoints, devices
    from training.core.text import VocabularyMismatch

    if args.logical_cpus:
        devices.split_cpu(args.logical_cpus)
    if config.strategy != "default":
        devices.make_strategy(config.strategy)  # before TensorFlow's first operation
    expected = (config_lib.ConfigError, checkpoints.CheckpointMismatch, VocabularyMismatch,
                *task.input_errors())
    from training.core import distribution

    expected = (*expected, distribution.DistributionError)
    try:
        report = task.run(config, workdir)
    except expected as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not distribution.active():
            raise
        # A collective failed: most often another process of the cluster died.
        print(f"error: process {distribution.process_id()} of {distribution.num_processes()}: "
              f"training stopped ({type(error).__name__}: {str(error)[:500]}); another "
              f"process probably stopped: see its log. Rerun the same commands to resume "
              f"from the last checkpoint.", file=sys.stderr, flush=True)
        os._exit(3)  # skip JAX's shutdown barrier, which would wait for the dead process
    if report is not None:  # None: a data-parallel process other than 0
        task.print_report(report)
    return 0


def _export_only(task, parser, args):
    """`--export-only`: the workdir's config, model and vocabularies -> SavedModel."""
    if not args.workdir:
        parser.error("--export-only needs --workdir")
    config_path = os.path.join(args.workdir, "config.json")
    if not os.path.exists(config_path):
        parser.error(f"{config_path} does not exist: not a workdir of a training run")
    try:
        # This process is no cluster's member (and may run another backend).
        config = config_lib.load(task.config_class, task.presets, None, config_path,
                                 [*args.set, "distribution=none"])
    except config_lib.ConfigError as error:
        parser.error(str(error))
    from training.core.backend_export import UnfinishedWorkdir
    from training.core.text import VocabularyMismatch

    try:
        path = task.export(config, args.workdir)
    except (UnfinishedWorkdir, VocabularyMismatch, *task.input_errors()) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _options_table(task, config, preset):
    """`--list-options`: a row per field (name, value, allowed values), its
    help indented under it, wrapped to the terminal. A value other than the
    field's default shows the default too."""
    defaults = task.config_class()
    rows = [("field", "value", "allowed values")]
    helps = [""]
    for field in dataclasses.fields(config):
        value = config_lib.shown_value(getattr(config, field.name))
        default = config_lib.shown_value(getattr(defaults, field.name))
        if value != default:
            value += f" (default {default})"
        rows.append((field.name, value, config_lib.allowed_values(field)))
        helps.append(field.metadata.get("help", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    width = min(max(shutil.get_terminal_size().columns, 60), 120)
    lines = [f"python -m training.{task.name} --preset {preset}: config fields",
             "Precedence, lowest first: defaults < preset < --config < --set.",
             "Every preset's values: docs/configuration.md", ""]
    for (name, value, allowed), help_text in zip(rows, helps):
        lines.append(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {allowed}".rstrip())
        lines += textwrap.wrap(help_text, width, initial_indent="    ",
                               subsequent_indent="    ")
    return "\n".join(lines)
