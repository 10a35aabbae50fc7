"""Configs: a dataclass of defaults, named presets, a JSON file, overrides.

Precedence, lowest first: the dataclass defaults, the preset, the JSON
config file, then `--set key=value` overrides from the command line. Each
value is checked against the field's type, so a typo fails with the name
of the field.
"""

import argparse
import dataclasses
import json
import math
import os
import typing

from training.core.decoding_options import DecodingOptions


class ConfigError(ValueError):
    """A config file or override names an unknown field or a bad value."""


# The keys of a field's metadata that `check` enforces (its "help" is text).
RULES = ("choices", "minimum", "maximum", "above", "below")


def option(default, *, help, choices=None, minimum=None, maximum=None, above=None, below=None):
    """A config field: its default, what it means and the values it accepts.

    `help` is one line for people (`--list-options`, docs/configuration.md);
    the rules are checked by `check`: `minimum`/`maximum` are inclusive
    bounds, `above`/`below` exclusive.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Example:
    ...     layers: int = option(2, minimum=1, help="Stacked layers.")
    >>> field, = dataclasses.fields(Example)
    >>> dict(field.metadata)
    {'help': 'Stacked layers.', 'minimum': 1}
    """
    rules = {key: value for key, value in (("choices", choices), ("minimum", minimum),
                                           ("maximum", maximum), ("above", above),
                                           ("below", below)) if value is not None}
    return dataclasses.field(default=default, metadata={"help": help, **rules})


def allowed_values(field):
    """The values `field` accepts, in words: its choices (`"gru, lstm"`), or
    its range (`">= 1"`, `"> 4"`, `"0 .. 3"`, `">= 0.0, < 1.0"`); `""` when
    it has no rule.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Example:
    ...     rate: float = option(0.1, minimum=0.0, below=1.0, help="A rate.")
    >>> allowed_values(dataclasses.fields(Example)[0])
    '>= 0.0, < 1.0'
    """
    rules = field.metadata
    if rules.get("choices") is not None:
        return ", ".join(map(str, rules["choices"]))
    if "minimum" in rules and "maximum" in rules and not {"above", "below"} & set(rules):
        return f"{rules['minimum']} .. {rules['maximum']}"
    return ", ".join(f"{words} {rules[rule]}" for rule, words in (
        ("minimum", ">="), ("above", ">"), ("maximum", "<="), ("below", "<")) if rule in rules)


def fields_without_help(config_class):
    """Names of the fields of `config_class` (a dataclass) that lack a
    one-line `help`: declared without `option`, or with an empty or
    multi-line one."""
    def one_line(text):
        return isinstance(text, str) and bool(text.strip()) and "\n" not in text

    return [field.name for field in dataclasses.fields(config_class)
            if not one_line(field.metadata.get("help"))]


def shown_value(value):
    """A field value as a config file or `--set` writes it: `true`, `null`,
    `""` for the empty string, numbers and words as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if value == "":
        return '""'
    return str(value)


def check(config):
    """Raises `ConfigError` naming the first field whose value is out of its
    choices or range, then runs the `check_combinations()` (rules across
    fields) of each class of its hierarchy, base first. Returns `config`."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        rules = {key: field.metadata[key] for key in RULES if key in field.metadata}
        if value is None or not rules:
            continue
        choices = rules.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{field.name}: must be one of {', '.join(map(str, choices))}; "
                              f"received {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{field.name}: must be a finite number, received {value!r}")
            for rule, fails, words in (("minimum", lambda v, b: v < b, ">="),
                                       ("maximum", lambda v, b: v > b, "<="),
                                       ("above", lambda v, b: v <= b, ">"),
                                       ("below", lambda v, b: v >= b, "<")):
                if rule in rules and fails(value, rules[rule]):
                    raise ConfigError(f"{field.name}: must be {words} {rules[rule]}, "
                                      f"received {value!r}")
    # Each class's own rules, the base class's first (TrainingConfig).
    for cls in reversed(type(config).__mro__):
        own_rules = cls.__dict__.get("check_combinations")
        problem = own_rules(config) if own_rules else None
        if problem:
            raise ConfigError(problem)
    return config


def _convert(field, value, origin):
    """Converts `value` (JSON value or override string) to the field type."""
    kind = field.type if isinstance(field.type, type) else None
    if isinstance(field.type, str):
        kind = {"int": int, "float": float, "bool": bool, "str": str}.get(field.type)
    optional = False
    hint = field.type
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, kind = True, args[0] if len(args) == 1 else None
    if isinstance(value, str) and origin == "override":
        if optional and value.lower() in ("none", "null", ""):
            return None
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{field.name}: expected true/false, received {value!r}")
        if kind in (list, tuple) or typing.get_origin(hint) in (list, tuple):
            return [v for v in value.split(",") if v]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{field.name}: may not be null")
    try:
        if kind is bool and not isinstance(value, bool):
            raise TypeError
        if kind in (int, float, str):
            converted = kind(value)
            if kind is int and isinstance(value, float) and value != int(value):
                raise TypeError
            return converted
    except (TypeError, ValueError):
        raise ConfigError(
            f"{field.name}: expected {getattr(kind, '__name__', kind)}, received {value!r} "
            f"(from {origin})"
        ) from None
    return value


def apply(config, values, origin):
    """Returns a copy of `config` with `values` (a dict) applied."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    updates = {}
    for key, value in values.items():
        if key not in fields:
            close = [name for name in fields if name.startswith(key[:3])]
            raise ConfigError(
                f"unknown config field {key!r} (from {origin})"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        updates[key] = _convert(fields[key], value, origin)
    return dataclasses.replace(config, **updates)


def load(config_class, presets, preset=None, config_file=None, overrides=()):
    """Builds a config from defaults, a preset, a JSON file and overrides.

    Args:
        config_class: The dataclass of defaults.
        presets: dict of preset name -> dict of field values.
        preset: Optional preset name.
        config_file: Optional path of a JSON object of field values.
        overrides: Iterable of `"key=value"` strings.
    """
    config = config_class()
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
        config = apply(config, presets[preset], f"preset {preset}")
    if config_file:
        try:
            with open(config_file, encoding="utf-8") as handle:
                values = json.load(handle)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{config_file}:{error.lineno}: invalid JSON: {error.msg}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{config_file}: expected a JSON object of config fields")
        config = apply(config, values, config_file)
    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value.strip()
    return check(apply(config, parsed, "override"))


def add_arguments(parser: argparse.ArgumentParser, presets, default_preset):
    """The command-line options every training script shares."""
    parser.add_argument("--preset", default=default_preset, choices=sorted(presets),
                        help=f"named set of sizes (default {default_preset})")
    parser.add_argument("--config", help="JSON file of config fields")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable)")
    parser.add_argument("--list-options", action="store_true",
                        help="print every config field (its value with this command "
                             "line, the values it accepts, what it means) and exit")
    parser.add_argument("--workdir", help="where checkpoints, logs, plots and exports go")


def save(config, path):
    """Writes the config as JSON (atomically: a kill leaves the old file)."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(config), handle, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def prepare_run(config, workdir):
    """What every task's training does first: check the config, join the
    cluster (distribution=data_parallel), make the workdir, save the config
    there (process 0 alone), seed Python, numpy and the backend."""
    import keras

    from training.core import distribution

    check(config)
    distribution.setup(config)
    if distribution.is_chief():
        os.makedirs(workdir, exist_ok=True)
        save(config, os.path.join(workdir, "config.json"))
    keras.utils.set_random_seed(config.seed)


DECODERS = {
    # name: (attention timing, input feeding)
    "fast": ("luong", False),        # attention after the RNN, batched over all steps
    "bahdanau": ("bahdanau", True),  # query h_{t-1}, context into the cell input
    "luong_feeding": ("luong", True),
}
ATTENTIONS = ("additive", "dot", "general", "scaled_dot")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DISTRIBUTIONS = ("none", "data_parallel")

# Why `strategy=multi_worker` is refused, and what to run instead.
MULTI_WORKER_REFUSED = (
    "strategy: multi_worker (tf.distribute.MultiWorkerMirroredStrategy) fails inside Keras 3's "
    "fit on the TensorFlow backend (keras-team/keras#20585). To train on several machines use "
    "Keras' distribution API on the JAX backend: on every machine run "
    "`KERAS_BACKEND=jax python -m training.<task> ... --set distribution=data_parallel` with "
    "KERAS_DISTRIBUTION_JOB_ADDRESSES (process 0's host:port first), "
    "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID set. "
    "(strategy=mirrored still trains on the GPUs of one machine.)")


def keras_backend():
    """The Keras backend this process has, or will have once Keras is imported
    (KERAS_BACKEND, else ~/.keras/keras.json, else tensorflow), without importing it."""
    import sys

    if "keras" in sys.modules and hasattr(sys.modules["keras"], "backend"):
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(keras_home, "keras.json"), encoding="utf-8") as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


# What every task's `tiny` preset has: a seconds-long run (2 epochs of 10
# steps, a checkpoint every 5) with small decodings, for smoke tests and CI.
TINY_RUN = dict(
    steps_per_epoch=10, epochs=2, warmup_steps=5, early_stopping_patience=0, checkpoint_steps=5,
    eval_batch_size=32, beam_width=2, num_hypotheses=2, plot_examples=1,
)


@dataclasses.dataclass
class TrainingConfig:
    """What every task's config has: reading the user's data files, the
    decoder, training, evaluation and export. A task's config subclasses it
    and adds its data and encoder.

    `check` runs `check_combinations` of every class of a config's
    hierarchy that defines one, this class's first: a subclass checks its
    own rules and need not call `super()`.
    """

    # --- data -------------------------------------------------------------
    skip_bad_lines: bool = option(
        False, help="Skip and count bad lines of the user's data files, and files that "
                    "cannot be read, instead of failing.")
    # --- decoder ----------------------------------------------------------
    rnn_type: str = option(
        "gru", choices=("gru", "lstm"),
        help="Recurrent cell of the decoder (and of translation's rnn encoder).")
    embedding_dim: int = option(
        256, minimum=1,
        help="Size of the output words' embeddings (and the source words' for the rnn and "
             "conv encoders).")
    units: int = option(
        256, minimum=1, help="Size of the decoder's recurrent state (and of the text encoders' "
                             "output).")
    attention: str = option(
        "additive", choices=ATTENTIONS,
        help="Attention score: additive (Bahdanau), dot, general (Luong) or scaled_dot.")
    attention_units: int = option(
        256, minimum=1, help="Hidden size of the additive attention (unused by the others).")
    decoder: str = option(
        "fast", choices=tuple(DECODERS),
        help="fast: attention after the RNN, all steps at once; bahdanau: the context into "
             "the cell's input; luong_feeding: the attentional state into the next input.")
    # The norm makes the model use the source within the first 100 steps (Luong's
    # plain tanh(W_c [c; h]) takes far longer).
    attention_layer_norm: bool = option(
        True, help="Layer-normalize the attentional state W_c [c; h] before its activation.")
    attention_activation: str = option(
        "linear", choices=("linear", "tanh", "relu"),
        help="Activation of the attentional state a = f(LayerNorm(W_c [c; h])).")
    decoder_initial_state: str = option(
        "zeros", choices=("zeros", "mean_memory"),
        help="Decoder's first state: zeros, or tanh(W m) of the mean encoder output m.")
    context_gate: bool = option(
        False, help="Scale the context by a learned gate per step (Show, Attend and Tell).")
    attention_regularization: float = option(
        0.0, minimum=0.0,
        help="Weight of the doubly stochastic attention penalty mean_i (1 - sum_t a_ti)^2 "
             "added to the loss; 0: off.")
    dropout: float = option(
        0.1, minimum=0.0, below=1.0,
        help="Dropout rate in the text encoders and on the decoder's outputs; 0: off.")
    # --- training ---------------------------------------------------------
    seed: int = option(
        1234, help="Seed of weight initialization, dropout and the order of training batches.")
    batch_size: int = option(
        64, minimum=1, help="Training examples per step, over all devices together.")
    epochs: int = option(
        30, minimum=1, help="Epochs to train; the run is epochs x steps_per_epoch steps.")
    steps_per_epoch: int = option(
        200, minimum=1, help="Training steps per epoch; the dev set is evaluated after each.")
    checkpoint_steps: int = option(
        50, minimum=1, help="Steps between checkpoints; a stopped run resumes from the last.")
    max_train_seconds: float = option(
        0.0, minimum=0.0, help="Training time budget in seconds, across resumes; 0: no limit.")
    learning_rate: float = option(
        2e-3, above=0.0,
        help="Peak Adam learning rate, reached after the warm-up, then cosine decay to 10%.")
    warmup_steps: int = option(
        200, minimum=0,
        help="Steps of linear warm-up from 1% of learning_rate (at most half the run).")
    decay_steps: int = option(
        0, minimum=0,
        help="Steps from the start to the end of the cosine decay; later steps train at 10% of "
             "learning_rate. 0: epochs x steps_per_epoch.")
    label_smoothing: float = option(
        0.1, minimum=0.0, below=1.0, help="Label smoothing of the word cross-entropy; 0: off.")
    clipnorm: float = option(
        5.0, minimum=0.0, help="Largest norm of each weight's gradient; 0: no clipping.")
    early_stopping_patience: int = option(
        3, minimum=0,
        help="Epochs without a lower dev loss before training stops, keeping the best "
             "weights; 0: off.")
    # "multi_worker" is refused with the reason and what to run instead
    # (MULTI_WORKER_REFUSED).
    strategy: str = option(
        "default", choices=("default", "mirrored", "multi_worker"),
        help="TensorFlow backend: mirrored trains on every GPU of this machine; several "
             "machines: see distribution.")
    distribution: str = option(
        "none", choices=DISTRIBUTIONS,
        help="JAX backend: data_parallel trains on a cluster of machines, one process each "
             "(KERAS_DISTRIBUTION_* variables).")
    # Softmax, attention weights, logits and the loss stay float32.
    precision: str = option(
        "float32", choices=PRECISIONS,
        help="Keras dtype policy: mixed_* compute in 16 bits with float32 weights "
             "(mixed_float16 adds loss scaling).")
    # --- evaluation and export --------------------------------------------
    beam_width: int = option(4, minimum=1, help="Beams of beam search (export and test).")
    length_penalty: float = option(
        0.6, minimum=0.0,
        help="GNMT length-penalty exponent of beam scores; 0: none, higher favours longer "
             "outputs.")
    num_hypotheses: int = option(
        4, minimum=1, help="Best outputs the beam-search signature returns (<= beam_width).")
    no_repeat_ngram_size: int = option(
        0, minimum=0, help="No output repeats an n-gram of this many words; 0: off.")
    eval_batch_size: int = option(
        128, minimum=1, help="Examples per batch when validating and decoding the test set.")
    plot_examples: int = option(
        4, minimum=0, help="Test examples whose attention is drawn in workdir/plots; 0: none.")
    export_name: str = option(
        "model", help="SavedModel folder: workdir/export/<export_name>/<export_version>.")
    export_version: int = option(
        1, minimum=1, help="Version folder of the SavedModel, as TensorFlow Serving reads it.")

    def check_combinations(self):
        """A message for a rule across fields that fails, else None."""
        try:
            DecodingOptions.from_config(self)
        except ValueError as error:  # its message names the field
            return str(error)
        if not self.export_name or "/" in self.export_name or self.export_name.startswith("."):
            return f"export_name: must be a plain directory name, received {self.export_name!r}"
        if self.strategy == "multi_worker":
            return MULTI_WORKER_REFUSED
        backend = keras_backend()
        if self.distribution == "data_parallel":
            if backend != "jax":
                return (f"distribution: data_parallel uses Keras' distribution API, which "
                        f"needs the JAX backend; this process has KERAS_BACKEND={backend}. "
                        f"Run `KERAS_BACKEND=jax python -m training.<task> ... --set "
                        f"distribution=data_parallel` (pip install keras-attention-kit[jax]).")
            if self.strategy != "default":
                return (f"strategy: {self.strategy} is tf.distribute (TensorFlow backend); "
                        f"with distribution=data_parallel leave strategy=default")
        if self.strategy != "default" and backend != "tensorflow":
            return (f"strategy: {self.strategy} is tf.distribute, for the TensorFlow backend; "
                    f"this process has KERAS_BACKEND={backend}: use --set "
                    f"distribution=data_parallel instead")
        return None


def task_default(name, default, *, help=None):
    """A task config's own default for the shared `TrainingConfig` field
    `name`: its rules kept, its help kept unless `help` words it for the task.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Captions(TrainingConfig):
    ...     decoder: str = task_default("decoder", "bahdanau")
    >>> field = Captions.__dataclass_fields__["decoder"]
    >>> field.default, field.metadata["choices"] == TrainingConfig.__dataclass_fields__[
    ...     "decoder"].metadata["choices"]
    ('bahdanau', True)
    """
    shared = TrainingConfig.__dataclass_fields__[name].metadata
    rules = {rule: shared[rule] for rule in RULES if rule in shared}
    return option(default, help=help or shared["help"], **rules)
