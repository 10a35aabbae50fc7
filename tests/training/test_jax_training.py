"""Training on the JAX backend, alone and as two data-parallel processes on
loopback (CPU, gloo collectives), each run in subprocesses bounded by
timeouts (jax_runs.py).

- A JAX-trained translation model exported by TensorFlow (`--export-only`
  in a subprocess) gives the greedy token ids the JAX model gives
  in-process (the caption tasks: test_jax_caption_jobs.py).
- Two processes running docs/several-machines.md's loopback command
  (shortened; JAX_PLATFORMS unset as on a GPU cluster) end translation's
  training with the weights and optimizer state of one process on the same
  global batches; only process 0 writes, exports and evaluates.
- Processes that see different checkpoints refuse to resume.
- A killed peer makes the other process exit with an error.
"""

import os
import signal
import time

import numpy as np
import pytest
from jax_runs import SHORT_TRANSLATION, assert_same_checkpoint, documented_translation_command
from jax_runs import finish, run_single, start_cluster, translation_command

pytestmark = [pytest.mark.slow, pytest.mark.jax]


def test_jax_translation_alone_exports_the_same_and_two_processes_match_it(tmp_path):
    # One process: trains, and its TensorFlow export decodes what it decodes.
    single = run_single("greedy", tmp_path / "single", *SHORT_TRANSLATION)
    assert single["steps"] == 3
    assert all(np.isfinite(single["losses"]))
    assert single["jax_ids"] == single["export_ids"]
    assert any(single["jax_ids"])  # not all empty
    export = tmp_path / "single" / "export" / "translator" / "1"
    assert (export / "saved_model.pb").exists()
    assert (export / "assets.extra" / "metadata.json").exists()

    # The documented two-process command on the same global batches,
    # JAX_PLATFORMS unset (nothing may start JAX's backend before the cluster
    # is joined): the same weights and optimizer state.
    workdirs = [tmp_path / "process0", tmp_path / "process1"]
    outputs = finish(start_cluster(workdirs, documented_translation_command(), platforms=None))
    for output in outputs:
        assert "trained 3 of 3 steps" in output, output[-3000:]
    assert_same_checkpoint(workdirs[0], tmp_path / "single")
    # Process 0 writes config, vocabularies, checkpoints, the export and the
    # report; process 1, given a workdir of its own, never creates it.
    written = set(os.listdir(workdirs[0]))
    assert {"config.json", "checkpoints", "vocabulary.source.json", "export",
            "report.json"} <= written, written
    assert "greedy: BLEU" in outputs[0] and "greedy: BLEU" not in outputs[1]
    assert not workdirs[1].exists()

    # Resuming needs every process to read the same checkpoint: process 1,
    # whose workdir holds none, stops both with a clear error.
    outputs = finish(start_cluster(workdirs, documented_translation_command("epochs=2")))
    assert any("the processes disagree on the checkpoint step to resume" in output
               for output in outputs), outputs[0][-3000:]


def test_a_killed_peer_stops_the_other_process(tmp_path):
    """Process 1 dies once the cluster is joined (process 0 has read its
    data): process 0, which needs it for every later collective, exits with
    an error within the heartbeat timeout instead of waiting forever."""
    processes = start_cluster(
        [tmp_path / "run", tmp_path / "run"],
        translation_command("steps_per_epoch=400", "epochs=1", "checkpoint_steps=400"),
        heartbeat=5)
    seen = []
    try:
        for line in processes[0].stdout:  # until process 0 has joined and read its data
            seen.append(line)
            if line.startswith("training pairs of"):
                break
        assert processes[0].poll() is None, "".join(seen)[-3000:]
        processes[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # Heartbeat 5 s: process 0 must end long before this timeout. (A
        # heartbeat missed under load also ends it with an error.)
        rest, _ = processes[0].communicate(timeout=180)
        waited = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    output = "".join(seen) + rest
    assert processes[0].returncode != 0, output[-3000:]
    assert "RESULT" not in output and "trained" not in output, output[-3000:]
    print(f"process 0 exited with {processes[0].returncode} {waited:.1f} s after its peer "
          f"was killed")
