"""A run killed by SIGKILL mid-epoch, then rerun with the same command (fresh
processes, train_script.py), ends with the weights, optimizer variables and
dropout seed states of an uninterrupted run: translation and captioning."""

import json
import os
import re

import numpy as np
import pytest
from train_script import checkpoint_arrays

pytestmark = pytest.mark.slow

KILL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_script.py")
# Two epochs of 4 steps, a checkpoint every 2, dropout on (its seed states
# must resume too); the kill comes after step 6's checkpoint, mid-epoch 2.
# Translation trains by the sampled softmax until step 5, then exact: the
# rerun must start exact.
KILL_RUNS = {
    "translation": ["max_train_pairs=2000", "dropout=0.2", "sampled_softmax_steps=5"],
    "captioning": ["train_scenes=160", "dev_scenes=16", "test_scenes=8", "dropout=0.2"],
}
KILL_COMMON = ["epochs=2", "steps_per_epoch=4", "checkpoint_steps=2",
               "early_stopping_patience=0", "max_train_seconds=0"]
KILLED_AT = 6
SUBPROCESS_SECONDS = 300


def _script_env():
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")


def _train_in_subprocess(task, workdir, *extra):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, KILL_SCRIPT, task, str(workdir), *extra,
                           *KILL_COMMON, *KILL_RUNS[task]], env=_script_env(),
                          capture_output=True, text=True, timeout=SUBPROCESS_SECONDS)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def _kill_when_waiting(task, workdir):
    """Starts a run that blocks after step KILLED_AT's checkpoint; SIGKILLs it there."""
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, KILL_SCRIPT, task, str(workdir), "--wait-at", str(KILLED_AT),
         *KILL_COMMON, *KILL_RUNS[task]], env=_script_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:  # ends when the process exits
            lines.append(line)
            if line.startswith(f"WAITING AT STEP {KILLED_AT}"):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        if process.poll() is None and not lines[-1:] == [f"WAITING AT STEP {KILLED_AT}\n"]:
            process.kill()
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL, "".join(lines)[-3000:]


@pytest.mark.parametrize("task", sorted(KILL_RUNS))
def test_sigkill_then_rerun_ends_with_the_uninterrupted_weights(task, tmp_path):
    reference_dir, run_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    reference_output = _train_in_subprocess(task, reference_dir)
    if task == "translation":  # sampled softmax for steps 1 to 5, then the exact one
        epochs = [line for line in reference_output.splitlines() if "val_loss" in line]
        exact = [bool(re.search(r"(?<!val_)masked_token_accuracy", line)) for line in epochs]
        assert exact == [False, True], reference_output[-3000:]
    _kill_when_waiting(task, run_dir)
    killed_state = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert killed_state["step"] == KILLED_AT
    output = _train_in_subprocess(task, run_dir)
    assert f"at step {KILLED_AT}" in output and "resumed from" in output, output[-3000:]
    assert f"resuming at step {KILLED_AT}, 2 steps of it left" in output, output[-3000:]

    want, want_state = checkpoint_arrays(reference_dir)
    got, got_state = checkpoint_arrays(run_dir)
    assert got_state["step"] == want_state["step"] == 8
    assert got_state["random_states"] == want_state["random_states"]
    # Dropout drew once a step: a seed state counts the draws.
    assert max(state[1] for state in want_state["random_states"]) >= 8
    assert sorted(got) == sorted(want) and len(want) > 10
    # The same operations on the same values in a fresh process: equal to
    # float32 rounding (1e-6 relative, for a reduction summed in another order
    # by TensorFlow's thread pool); a wrong dropout mask, batch or optimizer
    # moment moves weights by 1e-3 and more after 2 steps.
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7, err_msg=name)
