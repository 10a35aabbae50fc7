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


def option(default, *, choices=None, minimum=None, maximum=None, above=None, below=None):
    """A config field with the values it accepts, checked by `check`.

    `minimum`/`maximum` are inclusive bounds, `above`/`below` exclusive.
    """
    rules = {key: value for key, value in (("choices", choices), ("minimum", minimum),
                                           ("maximum", maximum), ("above", above),
                                           ("below", below)) if value is not None}
    return dataclasses.field(default=default, metadata=rules)


def check(config):
    """Raises `ConfigError` naming the first field whose value is out of its
    choices or range, then runs the config's own `check_combinations()`
    (rules across fields). Returns `config`."""
    for field in dataclasses.fields(config):
        value, rules = getattr(config, field.name), field.metadata
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
    combinations = getattr(config, "check_combinations", None)
    if combinations is not None:
        problem = combinations()
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


@dataclasses.dataclass
class TrainingConfig:
    """What every task's config has: the decoder, training, evaluation and
    export. A task's config subclasses it and adds its data and encoder."""

    # --- decoder ----------------------------------------------------------
    rnn_type: str = option("gru", choices=("gru", "lstm"))  # encoder and decoder
    embedding_dim: int = option(256, minimum=1)  # target (and text source) embeddings
    units: int = option(256, minimum=1)          # decoder units
    attention: str = option("additive", choices=ATTENTIONS)
    attention_units: int = option(256, minimum=1)  # additive attention hidden size
    decoder: str = option("fast", choices=tuple(DECODERS))
    # Attentional state a = f(LayerNorm(W_c [c; h])): the norm makes the model use the
    # source within the first 100 steps (Luong's plain tanh(W_c [c; h]) takes far longer).
    attention_layer_norm: bool = True
    attention_activation: str = option("linear", choices=("linear", "tanh", "relu"))
    decoder_initial_state: str = option("zeros", choices=("zeros", "mean_memory"))
    context_gate: bool = False        # Show, Attend and Tell's gate beta_t on the context
    # lambda of the doubly stochastic attention penalty mean_i (1 - sum_t a_ti)^2; 0: off
    attention_regularization: float = option(0.0, minimum=0.0)
    dropout: float = option(0.1, minimum=0.0, below=1.0)
    # --- training ---------------------------------------------------------
    seed: int = 1234
    batch_size: int = option(64, minimum=1)
    epochs: int = option(30, minimum=1)           # "epochs" of steps_per_epoch steps each
    steps_per_epoch: int = option(200, minimum=1)  # a validation every epoch
    checkpoint_steps: int = option(50, minimum=1)  # and a checkpoint every this many steps
    max_train_seconds: float = option(0.0, minimum=0.0)  # 0: no limit; counts across resumes
    learning_rate: float = option(2e-3, above=0.0)
    warmup_steps: int = option(200, minimum=0)
    label_smoothing: float = option(0.1, minimum=0.0, below=1.0)
    clipnorm: float = option(5.0, minimum=0.0)   # 0: no clipping
    early_stopping_patience: int = option(3, minimum=0)  # epochs without dev loss gain; 0: off
    # tf.distribute, TensorFlow backend: "mirrored" = the GPUs (or logical CPUs) of this
    # machine. "multi_worker" is refused (see MULTI_WORKER_REFUSED): use `distribution`.
    strategy: str = option("default", choices=("default", "mirrored", "multi_worker"))
    # Keras' distribution API, JAX backend: "data_parallel" = one process per machine, the
    # cluster from KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID.
    distribution: str = option("none", choices=DISTRIBUTIONS)
    # Keras dtype policy of the model, set before it is built. Softmax, attention
    # weights, logits and the loss stay float32; mixed_float16 adds loss scaling.
    precision: str = option("float32", choices=PRECISIONS)
    # --- evaluation and export --------------------------------------------
    beam_width: int = option(4, minimum=1)
    length_penalty: float = option(0.6, minimum=0.0)
    num_hypotheses: int = option(4, minimum=1)   # n-best returned by the beam signature
    no_repeat_ngram_size: int = option(0, minimum=0)  # >0: no output repeats an n-gram this long
    eval_batch_size: int = option(128, minimum=1)
    plot_examples: int = option(4, minimum=0)
    export_name: str = "model"
    export_version: int = option(1, minimum=1)

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
                        f"distribution=data_parallel` (pip install keras-attention[jax]).")
            if self.strategy != "default":
                return (f"strategy: {self.strategy} is tf.distribute (TensorFlow backend); "
                        f"with distribution=data_parallel leave strategy=default")
        if self.strategy != "default" and backend != "tensorflow":
            return (f"strategy: {self.strategy} is tf.distribute, for the TensorFlow backend; "
                    f"this process has KERAS_BACKEND={backend}: use --set "
                    f"distribution=data_parallel instead")
        return None
