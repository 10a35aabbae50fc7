"""What every task's training shares: the loss, the schedule, strategies,
checkpoints that resume exactly at the step where a run stopped, and `fit`,
the one training function every task calls."""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from training.core import distribution


# ------------------------------------------------------------------ loss
@keras.saving.register_keras_serializable(package="keras_attention_training")
class MaskedSequenceLoss(keras.losses.Loss):
    """Token cross-entropy that ignores padding (label 0), optionally with
    label smoothing (Szegedy et al. 2016), averaged over real tokens.

    y_true: int `[B, T]`; y_pred: logits `[B, T, V]`.
    """

    def __init__(self, label_smoothing=0.0, name="masked_sequence_loss", **kwargs):
        kwargs.pop("reduction", None)  # in get_config(); always "sum" (see `call`)
        super().__init__(name=name, reduction="sum", **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)  # --> [B, T, V]
        # Smoothed targets are (1 - e) one_hot(y) + e / V: the loss splits into
        # the negative log-likelihood and the mean negative log-probability,
        # without materializing a [B, T, V] one-hot tensor.
        token_losses = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)  # --> [B, T]
            token_losses = ((1.0 - self.label_smoothing) * token_losses
                            + self.label_smoothing * uniform)
        mask = ops.cast(y_true != 0, "float32")
        loss = ops.sum(token_losses * mask) / ops.maximum(ops.sum(mask), 1.0)
        # Keras scales only its "mean" reductions by 1 / replicas; this loss is
        # already a mean per replica, and the replicas' gradients are summed.
        return loss / replicas_in_sync()

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_attention_training")
def masked_token_accuracy(y_true, y_pred):
    """Share of non-padding tokens predicted right (arg-max)."""
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(y_true != 0, "float32")
    hits = ops.cast(ops.argmax(y_pred, axis=-1) == y_true, "float32") * mask
    return ops.sum(hits) / ops.maximum(ops.sum(mask), 1.0)


def learning_rate_schedule(learning_rate, total_steps, warmup_steps):
    """Linear warm-up to `learning_rate`, then cosine decay to 10% of it."""
    warmup_steps = min(warmup_steps, max(total_steps // 2, 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.01,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=0.1,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


# ------------------------------------------------------------- strategies
_STRATEGIES = {}


def replicas_in_sync():
    """tf.distribute replicas whose gradients are summed; 1 on other backends
    (JAX's data parallelism computes the global batch's loss as one)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync


class _NoStrategy:
    """What `make_strategy` gives on a backend without tf.distribute."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def apply_precision(config):
    """Sets Keras' global dtype policy to `config.precision` (before a model
    is built: a layer takes the policy of its construction)."""
    keras.config.set_dtype_policy(getattr(config, "precision", "float32"))


def has_accelerator():
    """Whether the backend sees a GPU or TPU (not only the CPU)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(device.platform != "cpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def precision_warning(precision, accelerator):
    """What to tell a user who trains in 16 bits on CPUs alone (None: nothing)."""
    if precision == "float32" or accelerator:
        return None
    return (f"note: precision={precision} on CPUs alone is slower than float32 for these "
            f"models: a training step ran 0.40x as fast in mixed_bfloat16 even on a Xeon with "
            f"AMX (JAX; the backward pass loses 3x what the forward pass gains). See the "
            f"README's 'Precision'; --set precision=float32 is the default.")


def data_replicas(config):
    """How many ways a batch splits: tf.distribute replicas, or every device
    of every process under `distribution=data_parallel`."""
    if distribution.active():
        return distribution.device_count()
    return make_strategy(config.strategy).num_replicas_in_sync


def make_strategy(name):
    """`"default"`, `"mirrored"` (all local GPUs, or CPUs given as logical
    devices) or `"multi_worker"` (several machines, described by TF_CONFIG).

    The strategy is made once per process and reused: a multi-worker
    strategy must exist before TensorFlow runs its first operation, so the
    training script asks for it first thing.
    """
    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise ValueError(f"strategy {name} is tf.distribute, for the TensorFlow backend; "
                             f"on {keras.backend.backend()} use distribution=data_parallel")
        return _NoStrategy()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _new_strategy(name)
    return _STRATEGIES[name]


def _new_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        from training.core.config import MULTI_WORKER_REFUSED

        raise ValueError(MULTI_WORKER_REFUSED)
    raise ValueError(f"`strategy` must be default, mirrored or multi_worker, received {name!r}")


def split_cpu(devices):
    """Expose the CPU as `devices` logical devices (call before TF starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


# ------------------------------------------------------------ checkpoints
class CheckpointMismatch(RuntimeError):
    """A checkpoint was written by another model (another config)."""


def variable_signature(model):
    """`[[path, shape], ...]` of the model's weights: what a checkpoint must match."""
    return [[v.path, list(v.shape)] for v in model.weights]


def random_state_variables(model):
    """The model's `SeedGenerator` states (dropout's random draws): variables
    that are not weights, so `save_weights` leaves them out."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def optimizer_step(model):
    """Steps the model's optimizer has taken (also under tf.distribute)."""
    return int(np.asarray(model.optimizer.iterations.numpy()))


class Checkpointer:
    """Weights + optimizer + training state in `directory`, written atomically.

    Files: `latest.weights.h5` + `latest.json`, the pair before as
    `previous.*`, and `best.weights.npz` (early stopping's best weights). A
    file is written under a temporary name and renamed, so a kill mid-write
    leaves the last good pair; a corrupt or partial pair is skipped at
    restore. (Keras' `BackupAndRestore` overwrites its file in place and
    resumes at the start of the epoch, which repeats the steps done since.)
    """

    def __init__(self, directory, writable=True):
        self.directory = directory
        self.writable = writable  # False: a data-parallel process other than 0

    def _path(self, name, suffix):
        return os.path.join(self.directory, f"{name}{suffix}")

    def save(self, model, state, best_weights=None):
        """`state`: a JSON-able dict with at least `"step"`."""
        if not self.writable:
            return
        os.makedirs(self.directory, exist_ok=True)
        if best_weights is not None:
            temporary = self._path("writing-best", ".weights.npz")
            np.savez(temporary, *best_weights)
            os.replace(temporary, self._path("best", ".weights.npz"))
        with distribution.local_only():
            model.save_weights(self._path("writing", ".weights.h5"), overwrite=True)
        # Dropout's seed states travel with the weights: a resumed run draws
        # the masks an uninterrupted one would have drawn.
        seeds = [np.asarray(v.numpy()).tolist() for v in random_state_variables(model)]
        with open(self._path("writing", ".json"), "w", encoding="utf-8") as handle:
            json.dump({**state, "variables": variable_signature(model), "random_states": seeds},
                      handle)
        if os.path.exists(self._path("latest", ".json")):
            os.replace(self._path("latest", ".weights.h5"), self._path("previous", ".weights.h5"))
            os.replace(self._path("latest", ".json"), self._path("previous", ".json"))
        os.replace(self._path("writing", ".weights.h5"), self._path("latest", ".weights.h5"))
        os.replace(self._path("writing", ".json"), self._path("latest", ".json"))

    def restore(self, model, log=print):
        """Loads the newest readable checkpoint into a built, compiled model.

        Returns its state dict (None when there is none). Raises
        `CheckpointMismatch` when the checkpoint holds other weights than the
        model has (another config), naming the first difference.
        """
        candidates = []
        for name in ("latest", "previous"):
            weights, metadata = self._path(name, ".weights.h5"), self._path(name, ".json")
            if not (os.path.exists(weights) and os.path.exists(metadata)):
                continue
            try:
                with open(metadata, encoding="utf-8") as handle:
                    state = json.load(handle)
                int(state["step"])
            except Exception as error:  # a corrupt file of any kind: try the older one
                log(f"checkpoint {metadata} unreadable ({type(error).__name__}: {error}); "
                    f"skipping it")
                continue
            candidates.append((weights, state))
        # Data-parallel processes load together (loading is a collective).
        distribution.same_on_every_process(
            int(candidates[0][1]["step"]) if candidates else -1, "the checkpoint step to resume")
        for weights, state in candidates:
            _check_same_variables(state.get("variables"), variable_signature(model), weights)
            try:
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(weights)
            except Exception as error:
                log(f"checkpoint {weights} unreadable ({type(error).__name__}: {error}); "
                    f"skipping it")
                continue
            state.pop("variables", None)
            _restore_random_states(model, state.pop("random_states", None))
            log(f"resumed from {weights} at step {state['step']}")
            return state
        return None

    def best_weights(self):
        """Early stopping's best weights (a list of arrays), or None."""
        path = self._path("best", ".weights.npz")
        if not os.path.exists(path):
            return None
        with np.load(path) as arrays:
            return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _restore_random_states(model, saved):
    """Puts the checkpoint's seed states back (a checkpoint written before
    they were saved leaves the fresh ones)."""
    variables = random_state_variables(model)
    if saved is None or len(saved) != len(variables):
        return
    for variable, value in zip(variables, saved):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _check_same_variables(saved, current, path):
    """Same number of weights with the same shapes, in order. (Paths hold
    per-process layer name counters, `embedding_1` ..., so only the shapes
    are compared; the paths name the difference.)"""
    if saved is None:
        return
    if [list(s) for _, s in saved] == [list(s) for _, s in current]:
        return
    for (saved_path, saved_shape), (path_now, shape_now) in zip(saved, current):
        if list(saved_shape) != list(shape_now):
            difference = (f"it has {saved_path} of shape {list(saved_shape)} where this model "
                          f"has {path_now} of shape {list(shape_now)}")
            break
    else:
        difference = f"it has {len(saved)} weights, this model {len(current)}"
    raise CheckpointMismatch(
        f"{path} was written by another model (another config?): {difference}. Use another "
        f"workdir, or rerun with --restart to start over.")


class StepCheckpoint(keras.callbacks.Callback):
    """Saves every `every_steps` steps, after each validation and when
    training stops, with the state `state_fn()` returns."""

    def __init__(self, checkpointer, every_steps, state_fn, best_weights_fn=lambda: None):
        super().__init__()
        self.checkpointer, self.every_steps = checkpointer, every_steps
        self.state_fn, self.best_weights_fn = state_fn, best_weights_fn
        self.saved_step = None

    def _save(self, best_weights=None):
        state = self.state_fn()
        self.checkpointer.save(self.model, state, best_weights)
        self.saved_step = state["step"]

    def on_train_batch_end(self, batch, logs=None):
        step = optimizer_step(self.model)
        if step % self.every_steps == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._save(self.best_weights_fn())

    def on_train_end(self, logs=None):
        if optimizer_step(self.model) != self.saved_step:
            self._save(self.best_weights_fn())


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` whose counters survive a resume and a `fit`
    split in two; `fit` restores the best weights once, at the very end."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._carried = None
        self.weights_saved_epoch = None

    def state(self):
        best = None if self.best is None else float(self.best)
        return {"wait": self.wait, "best": best, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch}

    def carry(self, state, best_weights=None):
        """Counters (and best weights) to start the next `fit` from."""
        self._carried = (dict(state), best_weights)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._carried is not None:
            state, best_weights = self._carried
            self.wait, self.best_epoch = state["wait"], state["best_epoch"]
            self.stopped_epoch = state["stopped_epoch"]
            self.best = state["best"]
            self.best_weights = best_weights
            self._carried = None

    def on_train_end(self, logs=None):
        pass  # best weights go back in `fit`, after the last checkpoint is written

    def new_best_weights(self):
        """The best weights when they changed since last asked, else None."""
        if self.best_weights is None or self.weights_saved_epoch == self.best_epoch:
            return None
        self.weights_saved_epoch = self.best_epoch
        return self.best_weights


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the batch where `seconds` of training,
    counted across resumes (`spent` before this run), have passed."""

    def __init__(self, seconds, spent=0.0):
        super().__init__()
        self.seconds, self.spent = seconds, float(spent)
        self.start = None
        self.exhausted = bool(seconds) and self.spent >= seconds

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_end(self, logs=None):
        self.spent = self.total()
        self.start = None

    def total(self):
        return self.spent + (time.monotonic() - self.start if self.start else 0.0)

    def on_train_batch_end(self, batch, logs=None):
        # Data-parallel processes stop together: process 0's clock decides.
        if self.seconds and distribution.any_process(
                distribution.is_chief() and self.total() >= self.seconds):
            self.exhausted = True
            self.model.stop_training = True


# ------------------------------------------------------------------ fit
@dataclasses.dataclass
class FitResult:
    model: object
    history: dict          # metric -> per-epoch values, this run's epochs only
    steps: int             # optimizer steps done in all (across resumes)
    train_seconds: float   # training time in all (across resumes)
    stopped_by: str        # "steps", "time budget", "early stopping" or "nan"


def default_optimizer(config, total_steps):
    """Adam with warm-up and cosine decay, gradient norm clipping."""
    return keras.optimizers.Adam(
        learning_rate_schedule(config.learning_rate, total_steps, config.warmup_steps),
        clipnorm=config.clipnorm or None,
    )


def fit(config, workdir, build_model, train_data, dev_data, log=print,
        optimizer_builder=default_optimizer, callbacks=()):
    """Builds, compiles, restores and trains a model: every task's training.

    The run is `config.epochs` epochs of `config.steps_per_epoch` steps,
    validated on `dev_data` after each epoch and checkpointed every
    `config.checkpoint_steps` steps into `workdir/checkpoints`. A run that
    was killed, or stopped by its time budget, resumes at the step where it
    stopped, on the batches it would have had next: the result equals an
    uninterrupted run's: the checkpoint holds the weights, the optimizer's
    state and dropout's seed states.

    Args:
        config: A `TrainingConfig`.
        workdir: Where `checkpoints/` and `logs/` (TensorBoard) go.
        build_model: `() -> keras.Model` taking `{"source", "target_in"}`.
        train_data: `skip -> tf.data.Dataset`, the endless stream of training
            batches with its first `skip` batches left out.
        dev_data: A finite `tf.data.Dataset` of validation batches; its first
            batch builds the model.
        optimizer_builder: `(config, total_steps) -> optimizer`.
        callbacks: More Keras callbacks.

    Returns:
        A `FitResult`; the model holds the best weights on `dev_data` when
        early stopping is on.
    """
    distribution.setup(config)
    distribution.check_batch_size(config.batch_size)
    strategy = make_strategy(config.strategy)
    total_steps = config.epochs * config.steps_per_epoch
    # Under distribution=data_parallel each process feeds its rows of a batch.
    train_data = _local_rows_of(train_data)
    dev_data = distribution.local_rows(dev_data)
    first_batch = next(iter(dev_data), None)
    if first_batch is None:
        raise ValueError(
            f"the dev set gives no batch (batch_size {config.batch_size}, eval_batch_size "
            f"{config.eval_batch_size}, {data_replicas(config)} replicas that need full "
            f"batches): use a larger dev set")
    first_inputs = first_batch[0]
    apply_precision(config)  # before the model is built
    warning = precision_warning(getattr(config, "precision", "float32"), has_accelerator())
    if warning and distribution.is_chief():
        log(warning)
    with strategy.scope():
        model = build_model()
        model.compile(optimizer_builder(config, total_steps),
                      MaskedSequenceLoss(config.label_smoothing),
                      metrics=[masked_token_accuracy])
        predictions = model(first_inputs)  # builds every weight from a real batch
        model.optimizer.build(model.trainable_variables)
        if config.strategy == "default":
            _build_loss_and_metrics(model, first_inputs, first_batch[1], predictions)

    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                                writable=distribution.is_chief())
    state = checkpointer.restore(model, log=log) or {"step": 0, "train_seconds": 0.0}
    budget = TimeBudget(config.max_train_seconds, state.get("train_seconds", 0.0))
    early_stopping = None
    if config.early_stopping_patience:
        early_stopping = ResumableEarlyStopping(
            monitor="val_loss", patience=config.early_stopping_patience,
            restore_best_weights=True)
        if "early_stopping" in state:
            early_stopping.carry(state["early_stopping"], checkpointer.best_weights())
            early_stopping.weights_saved_epoch = state["early_stopping"]["best_epoch"]

    def current_state():
        saved = {"step": optimizer_step(model), "train_seconds": budget.total()}
        if early_stopping is not None:
            saved["early_stopping"] = early_stopping.state()
        return saved

    checkpoint = StepCheckpoint(
        checkpointer, config.checkpoint_steps, current_state,
        early_stopping.new_best_weights if early_stopping is not None else lambda: None)
    all_callbacks = [
        keras.callbacks.TerminateOnNaN(),
        budget,
        *([early_stopping] if early_stopping is not None else []),
        *([keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), update_freq=50)]
          if distribution.is_chief() else []),
        *callbacks,
        checkpoint,  # last: saves what the others decided at the end of a batch or epoch
    ]

    step = int(state["step"])
    stopped_by = _already_stopped(state, budget, total_steps)
    history = {}
    # An epoch cut short by a kill is finished first (its own `fit`), so that
    # validations and the data stream fall where they would have fallen.
    while stopped_by is None and step < total_steps:
        epoch, done_in_epoch = divmod(step, config.steps_per_epoch)
        if done_in_epoch:
            epochs, steps_per_epoch = epoch + 1, config.steps_per_epoch - done_in_epoch
            log(f"Epoch {epoch + 1}/{config.epochs}: resuming at step {step}, "
                f"{steps_per_epoch} steps of it left")
        else:
            epochs, steps_per_epoch = config.epochs, config.steps_per_epoch
        run = model.fit(
            train_data(step), validation_data=dev_data, epochs=epochs, initial_epoch=epoch,
            steps_per_epoch=steps_per_epoch, callbacks=all_callbacks, shuffle=False,
            verbose=(1 if log is print else 2) if distribution.is_chief() else 0,
        )
        for key, values in run.history.items():
            history.setdefault(key, []).extend(values)
        step = optimizer_step(model)
        if early_stopping is not None:
            early_stopping.carry(early_stopping.state(), early_stopping.best_weights)
        stopped_by = _stop_reason(model, budget, early_stopping, history)

    if early_stopping is not None:
        best = early_stopping.best_weights
        if best is None:
            best = checkpointer.best_weights()
        if best is not None:
            model.set_weights(best)
    log(f"trained {step} of {total_steps} steps in {budget.total():.0f} s"
        + (f", stopped by {stopped_by}" if stopped_by else ""))
    return FitResult(model, history, step, round(budget.total(), 1), stopped_by or "steps")


def _build_loss_and_metrics(model, inputs, targets, predictions):
    """Creates the compiled loss's and metrics' variables now, eagerly.

    Without a tf.distribute strategy Keras builds them inside the first
    traced train step; a variable created there makes tf.function trace the
    whole step a second time (9 s of a tiny run on 2 CPU cores)."""
    model.compute_loss(x=inputs, y=targets, y_pred=predictions)
    model.compute_metrics(inputs, targets, predictions, sample_weight=None)
    model.reset_metrics()


def _local_rows_of(train_data):
    if not distribution.active():
        return train_data
    return lambda skip: distribution.local_rows(train_data(skip))


def _already_stopped(state, budget, total_steps):
    if state.get("early_stopping", {}).get("stopped_epoch"):
        return "early stopping"
    if budget.exhausted:
        return "time budget"
    return None


def _stop_reason(model, budget, early_stopping, history):
    if budget.exhausted:
        return "time budget"
    if early_stopping is not None and early_stopping.stopped_epoch:
        return "early stopping"
    if any(not np.isfinite(v) for v in history.get("loss", [])):
        return "nan"
    if model.stop_training:
        return "stopped"
    return None
