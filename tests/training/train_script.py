"""Trains a task in this fresh process (test_resume_sigkill.py).

    python train_script.py TASK WORKDIR [--wait-at STEP] [KEY=VALUE ...]

Loads TASK's `tiny` preset with the overrides and runs its `train` (no
export, no evaluation) on the backend of KERAS_BACKEND; under
`distribution=data_parallel` and Keras' cluster variables it is one process
of a cluster. The final checkpoint in WORKDIR/checkpoints holds the weights,
the optimizer's state and the seed states to compare
(`checkpoint_arrays`).
`--wait-at STEP`: once the checkpoint of STEP is written, print
`WAITING AT STEP <STEP>` and block, until the test kills the process.
"""

import importlib
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import keras  # noqa: E402

from training.core import config as config_lib  # noqa: E402


def checkpoint_arrays(workdir):
    """`(arrays, state)`: every array of WORKDIR's final checkpoint (weights and
    optimizer variables) by its path in the file, and its JSON state."""
    import json

    import h5py

    arrays = {}
    with h5py.File(os.path.join(workdir, "checkpoints", "latest.weights.h5"), "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    with open(os.path.join(workdir, "checkpoints", "latest.json"), encoding="utf-8") as handle:
        return arrays, json.load(handle)


class WaitAt(keras.callbacks.Callback):
    """Blocks at the start of the step after `step` (its checkpoint is written:
    StepCheckpoint saves at the end of a step)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            print(f"WAITING AT STEP {self.step}", flush=True)
            threading.Event().wait()


def main(argv):
    task, workdir, *rest = argv
    callbacks = []
    if rest[:1] == ["--wait-at"]:
        callbacks.append(WaitAt(int(rest[1])))
        rest = rest[2:]
    declaration = importlib.import_module(f"training.{task}.__main__").TASK
    config = config_lib.load(declaration.config_class, declaration.presets, "tiny", None, rest)
    train_lib = importlib.import_module(f"training.{task}.train")
    train_lib.train(config, workdir, log=lambda *a: print(*a, flush=True), callbacks=callbacks)


if __name__ == "__main__":
    main(sys.argv[1:])
