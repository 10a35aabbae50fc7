"""`fit`, the one training function every task calls: builds and compiles
the model, restores its checkpoint, and trains it epoch by epoch with the
schedule, checkpoints, early stopping and time budget.

The pieces live beside it: the loss and metric in `losses`, strategies,
precision and devices in `devices`, checkpoints and their callbacks in
`checkpoints`."""

import dataclasses
import os

import keras
import numpy as np

from training.core import distribution
from training.core.checkpoints import (
    Checkpointer,
    ResumableEarlyStopping,
    StepCheckpoint,
    TimeBudget,
    optimizer_step,
)
from training.core.devices import apply_precision, data_replicas, has_accelerator
from training.core.devices import make_strategy, precision_warning
from training.core.losses import MaskedSequenceLoss, masked_token_accuracy


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



@dataclasses.dataclass
class FitResult:
    model: object
    history: dict          # metric -> per-epoch values, this run's epochs only
    steps: int             # optimizer steps done in all (across resumes)
    train_seconds: float   # training time in all (across resumes)
    stopped_by: str        # "steps", "time budget", "early stopping" or "nan"


def default_optimizer(config, total_steps):
    """Adam with warm-up and cosine decay over `config.decay_steps` (0: the
    whole run), gradient norm clipping."""
    horizon = config.decay_steps or total_steps
    return keras.optimizers.Adam(
        learning_rate_schedule(config.learning_rate, horizon, config.warmup_steps),
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

    checkpointer = Checkpointer.of_run(workdir)
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
