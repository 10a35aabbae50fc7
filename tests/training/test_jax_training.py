"""Training on the JAX backend, alone and as two data-parallel processes on
loopback (CPU, gloo collectives), each run in subprocesses bounded by
timeouts (jax_training_script.py).

- A JAX-trained model exported by TensorFlow (`--export-only` in a
  subprocess) gives the greedy token ids the JAX model gives in-process:
  translation, and the whole job of image and video captioning
  evaluated on the export.
- Two processes (`distribution=data_parallel`, batch split in halves,
  JAX_PLATFORMS unset as on a GPU cluster) end translation's training with
  the weights and optimizer state of one process on the same global
  batches; only process 0 writes.
- Processes that see different checkpoints refuse to resume.
- A killed peer makes the other process exit with an error.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from train_script import checkpoint_arrays

pytestmark = [pytest.mark.slow, pytest.mark.jax]

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "jax_training_script.py")
REPO = os.path.dirname(os.path.dirname(HERE))
LOSS_RTOL = 1e-4
TIMEOUT = 900  # seconds a run may take on 2 busy CPU cores (about 5 minutes measured)
CLUSTER_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jax_env(platforms="cpu", **extra):
    """The environment of a JAX subprocess; `platforms=None` leaves
    JAX_PLATFORMS unset, so JAX looks for accelerators as on a GPU machine."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.pop("JAX_PLATFORMS", None)
    if platforms is not None:
        env["JAX_PLATFORMS"] = platforms
    for name in CLUSTER_VARIABLES:
        env.pop(name, None)
    env.update(extra)
    return env


def result_of(output):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def run_single(mode, workdir, *overrides):
    done = subprocess.run([sys.executable, SCRIPT, mode, str(workdir), *overrides], cwd=REPO,
                          env=jax_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return result_of(done.stdout)


def start_cluster(workdirs, command, heartbeat=10, platforms="cpu"):
    """Two processes of one data-parallel cluster running `command + [workdir]
    + overrides`; returns the Popen objects."""
    port = free_port()
    processes = []
    for index, workdir in enumerate(workdirs):
        env = jax_env(platforms, KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                      KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                      KERAS_DISTRIBUTION_PROCESS_ID=str(index),
                      KERAS_ATTENTION_HEARTBEAT_SECONDS=str(heartbeat),
                      KERAS_ATTENTION_INIT_TIMEOUT_SECONDS="120")
        processes.append(subprocess.Popen(command(workdir), cwd=REPO, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    return processes


def translation_command(*overrides):
    return lambda workdir: [sys.executable, SCRIPT, "train", str(workdir),
                            "distribution=data_parallel", *overrides]


def finish(processes, timeout=TIMEOUT):
    outputs = []
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            out, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            outputs.append(out or "")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def assert_same_checkpoint(got_dir, want_dir):
    """The final checkpoints of two runs hold the same weights and optimizer
    variables. Tolerance: the cluster sums the halves' gradients in another
    order (float32, about 1e-7 relative a step), and Adam's first steps
    divide by the gradient's own magnitude, which makes that 1e-5 of a
    weight after a few steps; a wrong half, a gradient counted twice or a
    missed all-reduce moves weights by the learning rate (1e-3 and more)."""
    got, got_state = checkpoint_arrays(got_dir)
    want, want_state = checkpoint_arrays(want_dir)
    assert got_state["step"] == want_state["step"]
    assert sorted(got) == sorted(want) and len(want) > 10
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-5, err_msg=name)


@pytest.mark.parametrize("task", ["captioning", "video"])
def test_caption_tasks_train_on_jax_export_and_evaluate(task, tmp_path):
    out = run_single(task, tmp_path / "run")
    assert out["backend"] == "jax"
    assert out["steps"] == 3
    # The report scores the TensorFlow export of the JAX-trained weights.
    assert {"greedy", "plots", "export", "parameters"} <= set(out["report_keys"])
    assert {"model.keras", "report.json", "export", "plots"} <= set(out["workdir_files"])
    assert out["jax_ids"] == out["export_ids"]
    assert any(out["jax_ids"])


def test_jax_translation_alone_exports_the_same_and_two_processes_match_it(tmp_path):
    # One process: trains, and its TensorFlow export decodes what it decodes.
    single = run_single("greedy", tmp_path / "single")
    assert single["steps"] == 3
    assert all(np.isfinite(single["losses"]))
    assert single["jax_ids"] == single["export_ids"]
    assert any(single["jax_ids"])  # not all empty
    export = tmp_path / "single" / "export" / "translator" / "1"
    assert (export / "saved_model.pb").exists()
    assert (export / "assets.extra" / "metadata.json").exists()

    # Two processes on the same global batches, JAX_PLATFORMS unset (nothing
    # may start JAX's backend before the cluster is joined): the same losses
    # and the same weights.
    workdirs = [tmp_path / "process0", tmp_path / "process1"]
    outputs = finish(start_cluster(workdirs, translation_command(), platforms=None))
    results = [result_of(output) for output in outputs]
    assert [r["process"] for r in results] == [0, 1]
    assert [r["steps"] for r in results] == [3, 3]
    for result in results:
        np.testing.assert_allclose(result["losses"], single["losses"], rtol=LOSS_RTOL)
    assert_same_checkpoint(workdirs[0], tmp_path / "single")
    # Process 0 writes config, vocabularies, checkpoints and logs; process 1,
    # given a workdir of its own, never creates it.
    written = set(os.listdir(workdirs[0]))
    assert {"config.json", "checkpoints", "vocabulary.source.json"} <= written
    assert not workdirs[1].exists()

    # Resuming needs every process to read the same checkpoint: process 1,
    # whose workdir holds none, stops both with a clear error.
    outputs = finish(start_cluster(workdirs, translation_command("epochs=2")))
    assert any("the processes disagree on the checkpoint step to resume" in output
               for output in outputs), outputs[0][-3000:]


def test_a_killed_peer_stops_the_other_process(tmp_path):
    processes = start_cluster(
        [tmp_path / "run", tmp_path / "run"],
        translation_command("steps_per_epoch=400", "epochs=1", "checkpoint_steps=400"),
        heartbeat=10)
    seen = []
    try:
        for line in processes[0].stdout:  # until the cluster has trained two steps
            seen.append(line)
            if line.startswith("step 2 loss"):
                break
        assert processes[0].poll() is None, "".join(seen)[-3000:]
        processes[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # Heartbeat 10 s: process 0 must end long before this timeout.
        rest, _ = processes[0].communicate(timeout=180)
        waited = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    output = "".join(seen) + rest
    assert processes[0].returncode != 0, output[-3000:]
    assert "RESULT" not in output
    print(f"process 0 exited with {processes[0].returncode} {waited:.1f} s after its peer "
          f"was killed")
