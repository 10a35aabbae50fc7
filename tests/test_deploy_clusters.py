"""The several-machines files in `deploy/` (a Kubernetes indexed Job, a
Slurm batch script), checked without a cluster: the environment variables
are the ones Keras' `distribution.initialize()` reads, the process count
and the coordinator's address agree with what the scheduler gives, and
the training command's options load as a valid config."""

import importlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from training.core import config as config_lib

REPO = Path(__file__).resolve().parent.parent
KUBERNETES_JOB = REPO / "deploy" / "kubernetes" / "translation-job.yaml"
SLURM_SCRIPT = REPO / "deploy" / "slurm" / "translation.sbatch"
CLUSTER_VARIABLES = {"KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID"}
# Set on each pod of an indexed Job (Kubernetes' batch API).
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def keras_reads(variable):
    """Whether Keras' `distribution.initialize()` reads `variable`."""
    source = Path(importlib.import_module(
        "keras.src.distribution.distribution_lib").__file__).read_text()
    return f'os.environ["{variable}"]' in source


def load_training_command(argv, backend, monkeypatch):
    """`["python", "-m", "training.TASK", ...]` -> the config it would run."""
    assert argv[:2] == ["python", "-m"] and argv[2].startswith("training."), argv
    task = importlib.import_module(f"{argv[2]}.__main__").TASK
    options = argv[3:]
    sets = [options[i + 1] for i, option in enumerate(options) if option == "--set"]
    preset = options[options.index("--preset") + 1] if "--preset" in options else None
    assert "--workdir" in options, "a cluster run needs a workdir all processes see"
    # The check of the config asks for the backend of the process it runs in.
    monkeypatch.setattr(config_lib, "keras_backend", lambda: backend)
    return config_lib.load(task.config_class, task.presets, preset, None, sets)


def test_keras_reads_the_variables_the_files_set():
    assert all(keras_reads(variable) for variable in CLUSTER_VARIABLES)
    assert not keras_reads("KERAS_DISTRIBUTION_RANK")  # the check can fail


def test_the_kubernetes_job_gives_each_pod_its_place_in_the_cluster(monkeypatch):
    service, job = yaml.safe_load_all(KUBERNETES_JOB.read_text())
    assert (service["kind"], job["kind"]) == ("Service", "Job")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert CLUSTER_VARIABLES <= set(env)

    processes = int(env["KERAS_DISTRIBUTION_NUM_PROCESSES"]["value"])
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == processes
    assert env["KERAS_DISTRIBUTION_PROCESS_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        COMPLETION_INDEX
    # Pod 0 of Job J in subdomain S is reachable as J-0.S through the
    # headless Service S, which selects the Job's pods.
    host, port = env["KERAS_DISTRIBUTION_JOB_ADDRESSES"]["value"].split(":")
    name = job["metadata"]["name"]
    assert host == f"{name}-0.{pod['subdomain']}" and int(port) > 0
    assert service["metadata"]["name"] == pod["subdomain"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"job-name": name}
    assert pod["restartPolicy"] == "Never" and spec["backoffLimit"] >= 1  # reruns resume

    config = load_training_command(container["command"], env["KERAS_BACKEND"]["value"],
                                   monkeypatch)
    assert config.distribution == "data_parallel"
    workdir = container["command"][container["command"].index("--workdir") + 1]
    mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
    assert any(workdir.startswith(mount.rstrip("/") + "/") for mount in mounts), (workdir, mounts)


def slurm_command():
    """The `KEY=VALUE ... python -m ...` command srun runs on every node."""
    text = SLURM_SCRIPT.read_text()
    quoted = re.search(r"srun bash -c (.+)$", text, re.DOTALL).group(1)
    # The script splices "$head" between two single-quoted halves.
    words = shlex.split(quoted.replace('\'"$head"\'', "HEAD").replace("\\\n", " "))
    return shlex.split(words[0])


def test_the_slurm_script_runs_one_process_per_node(monkeypatch):
    text = SLURM_SCRIPT.read_text()
    assert subprocess.run(["bash", "-n", str(SLURM_SCRIPT)]).returncode == 0
    directives = dict(re.findall(r"--([\w-]+)=(\d+)", " ".join(
        line for line in text.splitlines() if line.startswith("#SBATCH"))))
    assert int(directives["nodes"]) >= 2 and directives["ntasks-per-node"] == "1"

    words = slurm_command()
    env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    assert CLUSTER_VARIABLES <= set(env)
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "$SLURM_NTASKS"
    assert env["KERAS_DISTRIBUTION_PROCESS_ID"] == "$SLURM_PROCID"
    assert env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] == "HEAD:1234"  # the first node
    argv = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
    config = load_training_command(argv, env["KERAS_BACKEND"], monkeypatch)
    assert config.distribution == "data_parallel"


@pytest.mark.parametrize("option, message", [("distribution=none_such", "distribution"),
                                             ("batch_size=0", "batch_size")])
def test_a_bad_option_in_a_cluster_command_would_be_caught(option, message, monkeypatch):
    words = slurm_command()
    argv = [word for word in words if not re.match(r"^[A-Z_]+=", word)] + ["--set", option]
    with pytest.raises(config_lib.ConfigError, match=message):
        load_training_command(argv, "jax", monkeypatch)
