"""The whole job of image and video captioning on the JAX backend, in a
subprocess (jax_training_script.py): training on JAX, the export by
TensorFlow in a subprocess (`--export-only`), the evaluation on that
export, whose greedy token ids equal the JAX model's in-process.

Image captioning also trains as two data-parallel processes on loopback
(train_script.py, the batch split in halves): they end with the weights
and optimizer state of the one-process job on the same global batches."""

import os
import sys

import pytest
from jax_runs import CAPTION_JOB_OVERRIDES, assert_same_checkpoint, finish, run_single
from jax_runs import start_cluster

pytestmark = [pytest.mark.slow, pytest.mark.jax]

TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_script.py")


@pytest.mark.parametrize("task", ["captioning", "video"])
def test_caption_tasks_train_on_jax_export_and_evaluate(task, tmp_path):
    out = run_single(task, tmp_path / "run", *CAPTION_JOB_OVERRIDES[task])
    assert out["backend"] == "jax"
    assert out["steps"] == 3
    # The report scores the TensorFlow export of the JAX-trained weights.
    assert {"greedy", "plots", "export", "parameters"} <= set(out["report_keys"])
    assert {"model.keras", "report.json", "export", "plots"} <= set(out["workdir_files"])
    assert out["jax_ids"] == out["export_ids"]
    assert any(out["jax_ids"])
    if task != "captioning":
        return

    # Two processes, each feeding half of every batch; dropout (0.1) draws
    # its mask over the global batch, as one process does.
    workdirs = [tmp_path / "process0", tmp_path / "process1"]
    outputs = finish(start_cluster(workdirs, lambda workdir: [
        sys.executable, TRAIN_SCRIPT, task, str(workdir), *CAPTION_JOB_OVERRIDES[task],
        "distribution=data_parallel"]))
    assert all("trained 3 of 3 steps" in output for output in outputs), outputs[0][-3000:]
    assert_same_checkpoint(workdirs[0], tmp_path / "run")
    assert not workdirs[1].exists()  # process 1 writes nothing
