"""Tries MultiWorkerMirroredStrategy with two local worker processes.

    python -m benchmarks.multi_worker_trial [--workdir DIR] [--set key=value ...]

Starts two `python -m training.translation --set strategy=multi_worker`
processes on this machine, each with a TF_CONFIG naming both workers on
loopback ports (127.0.0.1), a workdir of its own, and the tiny preset;
waits for both (bounded in time) and prints each one's exit code, the last
epoch's losses and its test BLEU. Both workers must report the same
training loss: each step's gradients are all-reduced across them.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    root = args.workdir or tempfile.mkdtemp(prefix="multi_worker_")
    os.makedirs(root, exist_ok=True)
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        command = [sys.executable, "-m", "training.translation", "--preset", "tiny",
                   "--set", "strategy=multi_worker", "--workdir",
                   os.path.join(root, f"worker{index}")]
        for item in args.set:
            command += ["--set", item]
        log = open(os.path.join(root, f"worker{index}.log"), "w")
        processes.append((subprocess.Popen(command, env=env, stdout=log,
                                           stderr=subprocess.STDOUT), log))
    deadline = time.monotonic() + args.timeout
    for process, log in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    print(f"cluster {workers}, logs and workdirs in {root}")
    for index, (process, _) in enumerate(processes):
        report_path = os.path.join(root, f"worker{index}", "report.json")
        checkpoint = os.path.join(root, f"worker{index}", "checkpoints", "latest.json")
        summary = {"exit code": process.returncode}
        if os.path.exists(checkpoint):
            with open(checkpoint) as handle:
                summary["last epoch"] = json.load(handle)
        if os.path.exists(report_path):
            with open(report_path) as handle:
                summary["test BLEU greedy"] = json.load(handle)["greedy"]["bleu"]
        print(f"worker {index}: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
