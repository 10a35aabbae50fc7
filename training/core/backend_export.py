"""A model trained on another backend (JAX) exported by TensorFlow.

The SavedModel stays TensorFlow's, with stock ops, whatever backend trained
the weights: process 0 saves `model.keras` and runs

    KERAS_BACKEND=tensorflow python -m training.TASK --workdir W --export-only

in a subprocess, which rebuilds the model from the workdir's config.json and
vocabularies, loads the weights and exports them (`rebuild_model`). The job
then evaluates that export (`LoadedExport`), so the figures it reports are
the served model's.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from training.core import devices, distribution
from training.core.export import LoadedExport


class UnfinishedWorkdir(ValueError):
    """`--export-only` was given a workdir without a trained model."""


def export_trained(config, task_name, model, steps, workdir, make_exporter, log=print):
    """Exports a just-trained model and saves `workdir/model.keras`.

    On TensorFlow, `make_exporter()` (a `SequenceExporter` of `model`) is
    saved in-process to `workdir/export/<export_name>/<export_version>`; on
    another backend, `export_after_training` exports in TensorFlow.

    Returns `(export_path, exporter)`, the exporter or the loaded export
    (either evaluates); `(None, None)` on a data-parallel process other
    than 0.
    """
    if keras.backend.backend() != "tensorflow":
        return export_after_training(task_name, model, steps, workdir, log)
    exporter = make_exporter()
    export_path = exporter.save(os.path.join(workdir, "export"), config.export_name,
                                config.export_version)
    model.save(os.path.join(workdir, "model.keras"))
    return export_path, exporter


def export_after_training(task_name, model, steps, workdir, log=print):
    """Ends a run on a backend other than TensorFlow: process 0 saves
    `workdir/model.keras`, the cluster (if any) ends, and process 0 exports
    in a TensorFlow subprocess.

    Returns `(export_path, LoadedExport)` on process 0; `(None, None)` on the
    other processes of a data-parallel cluster, which write nothing.
    """
    if distribution.is_chief():
        with distribution.local_only():
            model.save(os.path.join(workdir, "model.keras"))
    distribution.finish()
    if not distribution.is_chief():
        log(f"process {distribution.process_id()}: trained {steps} steps; process 0 exports "
            f"and evaluates")
        return None, None
    export_path = export_in_tensorflow(task_name, workdir, log)
    return export_path, LoadedExport(export_path)


def export_in_tensorflow(task_name, workdir, log=print, timeout=1800):
    """Runs `python -m training.<task_name> --workdir W --export-only` with
    KERAS_BACKEND=tensorflow and no cluster variables. Returns the exported
    version's path."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    for name in distribution.CLUSTER_VARIABLES:
        env.pop(name, None)
    log("exporting the trained model with TensorFlow (a subprocess)")
    done = subprocess.run(
        [sys.executable, "-m", f"training.{task_name}", "--workdir", workdir, "--export-only"],
        env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the TensorFlow export failed (exit {done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-4000:]}")
    return done.stdout.strip().splitlines()[-1]


def check_finished(workdir, needed=()):
    """Raises `UnfinishedWorkdir` naming what `workdir` lacks of a trained
    model: `model.keras` and the files `needed` (vocabularies)."""
    missing = [path for path in (os.path.join(workdir, "model.keras"),
                                 *(os.path.join(workdir, name) for name in needed))
               if not os.path.exists(path)]
    if missing:
        raise UnfinishedWorkdir(f"{workdir} is not a finished workdir: no {', '.join(missing)} "
                                f"(train it first)")


def rebuild_model(config, workdir, build_model, source_spec):
    """The model of a finished workdir: `build_model()` under the config's
    precision, called once on a one-row batch shaped by `source_spec` (so
    every weight exists), then `workdir/model.keras`'s weights loaded
    (written by any backend).

    Args:
        build_model: `() -> keras.Model` taking `{"source", "target_in"}`.
        source_spec: A `tf.TensorSpec`, or a nest of them, of one source.

    Raises:
        UnfinishedWorkdir: the workdir has no `model.keras`.
    """
    check_finished(workdir)
    devices.apply_precision(config)

    def one_row(spec):  # every unknown dimension 2, every value 1 (a length of 1)
        shape = [1] + [2 if dim is None else dim for dim in spec.shape.as_list()]
        return np.ones(shape, spec.dtype.as_numpy_dtype)

    model = build_model()
    model({"source": tf.nest.map_structure(one_row, source_spec),
           "target_in": keras.ops.ones((1, 2), "int32")})
    model.load_weights(os.path.join(workdir, "model.keras"))
    return model
