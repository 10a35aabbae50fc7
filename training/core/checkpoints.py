"""Checkpoints that resume exactly at the step where a run stopped (weights,
optimizer state, dropout's seed states), and the callbacks that write them,
stop early across resumes and keep the time budget."""

import json
import os
import time

import keras
import numpy as np

from training.core import distribution


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

    @classmethod
    def of_run(cls, workdir):
        """The run's checkpoints, `workdir/checkpoints`; only process 0 of a
        data-parallel cluster writes them."""
        return cls(os.path.join(workdir, "checkpoints"), writable=distribution.is_chief())

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

    def readable(self, log=print):
        """`[(weights_path, state), ...]`, newest first: the pairs whose files
        exist and whose state file reads (a pair cut short by a kill is
        skipped, naming its file)."""
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
        return candidates

    def agree_on_step(self, candidates=None):
        """Under a data-parallel cluster, checks that every process would
        resume at the same step (a collective: every process calls it), from
        the files alone, before any model is built; raises
        `distribution.DistributionError` naming each process's step."""
        if candidates is None:
            candidates = self.readable(log=lambda *_: None)
        distribution.same_on_every_process(
            int(candidates[0][1]["step"]) if candidates else -1, "the checkpoint step to resume")

    def restore(self, model, log=print):
        """Loads the newest readable checkpoint into a built, compiled model.

        Returns its state dict (None when there is none). Raises
        `CheckpointMismatch` when the checkpoint holds other weights than the
        model has (another config), naming the first difference.
        """
        candidates = self.readable(log)
        # Data-parallel processes load together (loading is a collective).
        self.agree_on_step(candidates)
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
