"""What every task's training shares: loss, schedule, strategies, callbacks,
and checkpoints that survive interruption."""

import json
import os
import time

import keras
import tensorflow as tf
from keras import ops

from training.core.seq2seq import AttentionSeq2Seq  # noqa: F401 (registers the class)


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
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

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


def make_strategy(name):
    """`"default"`, `"mirrored"` (all local GPUs, or CPUs given as logical
    devices) or `"multi_worker"` (several machines, described by TF_CONFIG).

    The strategy is made once per process and reused: a multi-worker
    strategy must exist before TensorFlow runs its first operation, so the
    training script asks for it first thing.
    """
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
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be default, mirrored or multi_worker, received {name!r}")


def split_cpu(devices):
    """Expose the CPU as `devices` logical devices (call before TF starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


# ------------------------------------------------------------ checkpoints
class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves weights + optimizer + epoch at the end of every epoch, atomically.

    Files in `directory`: `latest.weights.h5` + `latest.json`, and the
    previous pair as `previous.*`. A file is written under a temporary name
    and renamed, so a kill mid-write leaves the last good checkpoint; a
    corrupt or partial one is skipped at restore (see `restore`).
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        latest = os.path.join(self.directory, "latest")
        previous = os.path.join(self.directory, "previous")
        temporary = os.path.join(self.directory, "writing")
        self.model.save_weights(temporary + ".weights.h5", overwrite=True)
        with open(temporary + ".json", "w", encoding="utf-8") as handle:
            json.dump({"epoch": epoch + 1, "logs": _plain(logs)}, handle)
        if os.path.exists(latest + ".json"):
            os.replace(latest + ".weights.h5", previous + ".weights.h5")
            os.replace(latest + ".json", previous + ".json")
        os.replace(temporary + ".weights.h5", latest + ".weights.h5")
        os.replace(temporary + ".json", latest + ".json")


def restore(model, directory, log=print):
    """Loads the newest readable checkpoint into a built, compiled model.

    Returns the number of epochs it had completed (0 when none).
    """
    for name in ("latest", "previous"):
        weights = os.path.join(directory, name + ".weights.h5")
        metadata = os.path.join(directory, name + ".json")
        if not (os.path.exists(weights) and os.path.exists(metadata)):
            continue
        try:
            with open(metadata, encoding="utf-8") as handle:
                epoch = int(json.load(handle)["epoch"])
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(weights)
        except Exception as error:  # a corrupt file of any kind: try the older one
            log(f"checkpoint {weights} unreadable ({type(error).__name__}: {error}); skipping it")
            continue
        log(f"resumed from {weights} after epoch {epoch}")
        return epoch
    return 0


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the batch where `seconds` have passed."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.start = None
        self.exhausted = False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start if self.start else 0.0

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds and self.elapsed() >= self.seconds:
            self.exhausted = True
            self.model.stop_training = True


def _plain(logs):
    return {key: float(value) for key, value in (logs or {}).items()}
