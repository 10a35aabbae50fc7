"""Training on the JAX backend, alone and as two data-parallel processes on
loopback (CPU, gloo collectives), each run in subprocesses bounded by
timeouts (jax_training_script.py).

- A JAX-trained translation model exported by TensorFlow (`--export-only`
  in a subprocess) gives the greedy token ids the JAX model gives
  in-process (the caption tasks: test_jax_caption_jobs.py).
- Two processes (`distribution=data_parallel`, batch split in halves,
  JAX_PLATFORMS unset as on a GPU cluster) end translation's training with
  the weights and optimizer state of one process on the same global
  batches; only process 0 writes.
- Processes that see different checkpoints refuse to resume.
- A killed peer makes the other process exit with an error.
"""

import os
import signal
import time

import numpy as np
import pytest
from jax_runs import assert_same_checkpoint, finish, result_of, run_single, start_cluster
from jax_runs import LOSS_RTOL, translation_command

pytestmark = [pytest.mark.slow, pytest.mark.jax]


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
