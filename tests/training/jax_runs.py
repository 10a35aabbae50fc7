"""Running the JAX training scripts in subprocesses bounded by timeouts: one
process (jax_training_script.py), or two of one data-parallel cluster on
loopback (CPU, gloo collectives)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
from loopback import free_port
from train_script import checkpoint_arrays

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "jax_training_script.py")
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 900  # seconds a run may take on 2 busy CPU cores (about 5 minutes measured)
# The caption tasks' whole jobs, shortened: 3 steps, a checkpoint at the last.
# METEOR (a Java process, about 20 s) has tests of its own (test_captioning_metrics.py).
CAPTION_JOB_OVERRIDES = {
    task: [f"train_{unit}=64", f"dev_{unit}=16", f"test_{unit}=8", "steps_per_epoch=3",
           "epochs=1", "checkpoint_steps=3", "plot_examples=1", "meteor=false"]
    for task, unit in (("captioning", "scenes"), ("video", "clips"))}
# Translation shortened: 3 steps of 8 pairs, a checkpoint at step 2, no
# dropout, a 4-pair greedy evaluation. Pairs of at most 6 words fall in one
# length bucket: one batch shape, so JAX compiles the train step once.
SHORT_TRANSLATION = ["dropout=0", "max_train_tokens=6", "max_train_pairs=4000", "batch_size=8",
                     "steps_per_epoch=3", "epochs=1", "checkpoint_steps=2", "max_eval_pairs=4",
                     "beam_width=1", "num_hypotheses=1", "early_stopping_patience=0",
                     "warmup_steps=1"]
CLUSTER_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")


def jax_env(platforms="cpu", **extra):
    """The environment of a JAX subprocess; `platforms=None` leaves
    JAX_PLATFORMS unset, so JAX looks for accelerators as on a GPU machine.

    XLA compiles without LLVM's optimizations: compiling is most of a
    few-step run (the captioning job's training: 48 s, then 18 s), and every
    run a test compares is compiled alike."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
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
    """The script's `train` mode on SHORT_TRANSLATION and `overrides`, as one
    process of a data-parallel cluster."""
    return lambda workdir: [sys.executable, SCRIPT, "train", str(workdir), *SHORT_TRANSLATION,
                            "distribution=data_parallel", *overrides]


def documented_translation_command(*overrides):
    """docs/several-machines.md's loopback command (read from the page), its
    workdir replaced, shortened by SHORT_TRANSLATION and `overrides`."""
    from docs_blocks import loopback_command

    variables, argv = loopback_command("docs/several-machines.md")
    assert set(variables) == {"KERAS_BACKEND", *CLUSTER_VARIABLES}, variables
    assert argv[:3] == ["python", "-m", "training.translation"], argv
    at = argv.index("--workdir") + 1
    settings = [word for setting in [*SHORT_TRANSLATION, *overrides]
                for word in ("--set", setting)]
    return lambda workdir: [sys.executable, *argv[1:at], str(workdir), *argv[at + 1:],
                            *settings]


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
