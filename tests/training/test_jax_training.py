"""Training on the JAX backend, alone and as two data-parallel processes on
loopback (CPU, gloo collectives), each run in subprocesses
(jax_training_script.py) bounded by timeouts.

- A JAX-trained model exported by TensorFlow (`--export-only` in a
  subprocess) gives the greedy token ids the JAX model gives in-process:
  translation, and the whole job of image and video captioning
  evaluated on the export.
- Two processes (`distribution=data_parallel`, batch split in halves) see
  the running losses of one process on the same global batches, within
  rtol 1e-4 (float32 sums in another order); only process 0 writes.
- Processes that see different checkpoints refuse to resume.
- A killed peer makes the other process exit with an error.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.jax]

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax_training_script.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_STATUS = 77
LOSS_RTOL = 1e-4
TIMEOUT = 900  # seconds a run may take on 2 busy CPU cores (about 5 minutes measured)


@pytest.fixture(autouse=True)
def _needs_jax():
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("CI"):
            pytest.fail("jax is not installed (CI installs keras-attention[test])")
        pytest.skip("jax is not installed (pip install keras-attention[jax])")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jax_env(**extra):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                 "KERAS_DISTRIBUTION_PROCESS_ID"):
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
    if done.returncode == SKIP_STATUS:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return result_of(done.stdout)


def start_cluster(workdirs, *overrides, heartbeat=10, logs=None):
    """Two processes of one data-parallel cluster; returns the Popen objects."""
    port = free_port()
    processes = []
    for index, workdir in enumerate(workdirs):
        env = jax_env(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                      KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                      KERAS_DISTRIBUTION_PROCESS_ID=str(index),
                      KERAS_ATTENTION_HEARTBEAT_SECONDS=str(heartbeat),
                      KERAS_ATTENTION_INIT_TIMEOUT_SECONDS="120")
        processes.append(subprocess.Popen(
            [sys.executable, SCRIPT, "train", str(workdir), "distribution=data_parallel",
             *overrides], cwd=REPO, env=env, stdout=logs[index] if logs else subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    return processes


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

    # Two processes on the same global batches: the same losses.
    workdirs = [tmp_path / "process0", tmp_path / "process1"]
    outputs = finish(start_cluster(workdirs))
    results = [result_of(output) for output in outputs]
    assert [r["process"] for r in results] == [0, 1]
    assert [r["steps"] for r in results] == [3, 3]
    for result in results:
        np.testing.assert_allclose(result["losses"], single["losses"], rtol=LOSS_RTOL)
    # Process 0 writes config, vocabularies, checkpoints and logs; process 1,
    # given a workdir of its own, never creates it.
    written = set(os.listdir(workdirs[0]))
    assert {"config.json", "checkpoints", "vocabulary.source.json"} <= written
    assert os.path.exists(workdirs[0] / "checkpoints" / "latest.weights.h5")
    assert not workdirs[1].exists()

    # Resuming needs every process to read the same checkpoint: process 1,
    # whose workdir holds none, stops both with a clear error.
    outputs = finish(start_cluster(workdirs, "epochs=2"))
    assert any("the processes disagree on the checkpoint step to resume" in output
               for output in outputs), outputs[0][-3000:]


def test_a_killed_peer_stops_the_other_process(tmp_path):
    logs = [open(tmp_path / f"process{i}.log", "w+") for i in range(2)]
    processes = start_cluster([tmp_path / "run", tmp_path / "run"], "steps_per_epoch=400",
                              "epochs=1", "checkpoint_steps=400", heartbeat=10, logs=logs)
    try:
        # Wait until the cluster has trained two steps.
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            logs[0].seek(0)
            if "step 2 loss" in logs[0].read() or processes[0].poll() is not None:
                break
            time.sleep(2)
        assert processes[0].poll() is None, "process 0 ended before the kill"
        processes[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code = processes[0].wait(timeout=180)  # heartbeat 10 s: it must end long before
        waited = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    output = open(tmp_path / "process0.log").read()
    assert code != 0, output[-3000:]
    assert "RESULT" not in output
    print(f"process 0 exited with {code} {waited:.1f} s after its peer was killed")
