"""Training on several processes (machines) with Keras' distribution API.

`--set distribution=data_parallel` (JAX backend only): every process runs the
same command; the cluster comes from the variables Keras reads,

    KERAS_DISTRIBUTION_JOB_ADDRESSES  host:port of process 0 first (the
                                      coordinator), comma separated
    KERAS_DISTRIBUTION_NUM_PROCESSES  how many processes
    KERAS_DISTRIBUTION_PROCESS_ID     this process, 0 .. N-1

`setup(config)` calls `keras.distribution.initialize()` and sets a
`keras.distribution.DataParallel` over every device of every process. Each
process builds the same stream of global batches (same data, same seed) and
feeds its own slice of rows (`local_rows`); JAX puts the slices together into
one global batch, so a step's loss and gradients are the global batch's.
Process 0 (`is_chief()`) alone writes into the workdir.

A process that dies stops the others: JAX's coordination service misses its
heartbeats and ends every process within about `heartbeat_timeout_seconds`
(KERAS_ATTENTION_HEARTBEAT_SECONDS, default 30), and a collective waiting on
a dead peer fails as its connection closes.
"""

import contextlib
import os

# Seconds without a heartbeat before JAX declares a process dead.
HEARTBEAT_ENV = "KERAS_ATTENTION_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30
# Seconds the processes wait for each other at start-up.
INIT_TIMEOUT_ENV = "KERAS_ATTENTION_INIT_TIMEOUT_SECONDS"
DEFAULT_INIT_TIMEOUT_SECONDS = 300
CLUSTER_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")

_STATE = {"active": False}


class DistributionError(RuntimeError):
    """The cluster settings are missing or wrong."""


def active():
    """True once `setup` made this process one of a data-parallel cluster."""
    return _STATE["active"]


def process_id():
    return _STATE.get("process_id", 0)


def num_processes():
    return _STATE.get("num_processes", 1)


def is_chief():
    """Whether this process writes checkpoints, logs, plots, reports, exports."""
    return process_id() == 0


def _int_env(name, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributionError(f"{name} must be an integer, received {value!r}") from None


def cluster_from_environment():
    """`(job_addresses, num_processes, process_id)` from Keras' variables."""
    missing = [name for name in CLUSTER_VARIABLES if not os.environ.get(name)]
    if missing:
        raise DistributionError(
            f"distribution=data_parallel needs {', '.join(missing)} (set on every process: "
            f"{', '.join(CLUSTER_VARIABLES)})")
    addresses = os.environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"]
    count = _int_env("KERAS_DISTRIBUTION_NUM_PROCESSES", None)
    index = _int_env("KERAS_DISTRIBUTION_PROCESS_ID", None)
    if count < 1 or not 0 <= index < count:
        raise DistributionError(f"KERAS_DISTRIBUTION_PROCESS_ID must be in [0, "
                                f"KERAS_DISTRIBUTION_NUM_PROCESSES={count}), received {index}")
    if "," in addresses and len(addresses.split(",")) != count:
        raise DistributionError(
            f"KERAS_DISTRIBUTION_JOB_ADDRESSES names {len(addresses.split(','))} processes, "
            f"KERAS_DISTRIBUTION_NUM_PROCESSES is {count}")
    return addresses, count, index


def setup(config):
    """Joins the cluster (once per process) when `config.distribution` asks.

    Call before the backend's first computation. Returns the number of
    processes (1 without a distribution).
    """
    if config.distribution != "data_parallel":
        return 1
    if _STATE["active"]:
        return num_processes()
    import keras

    if keras.backend.backend() != "jax":
        raise DistributionError("distribution=data_parallel needs KERAS_BACKEND=jax")
    _, count, index = cluster_from_environment()
    import jax

    # Nothing may ask JAX for its devices before the cluster is joined: the
    # first device query starts the backend, and jax.distributed.initialize
    # refuses to run after that. The CPU client's collectives are therefore
    # chosen blind: gloo serves CPU processes and is unused on GPUs (NCCL).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    heartbeat = _int_env(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_SECONDS)
    init_timeout = _int_env(INIT_TIMEOUT_ENV, DEFAULT_INIT_TIMEOUT_SECONDS)
    # keras.distribution.initialize() reads the variables above and calls
    # jax.distributed.initialize without timeouts: add them on the way.
    original = jax.distributed.initialize

    def initialize_with_timeouts(*args, **kwargs):
        kwargs.setdefault("heartbeat_timeout_seconds", heartbeat)
        kwargs.setdefault("initialization_timeout", init_timeout)
        return original(*args, **kwargs)

    jax.distributed.initialize = initialize_with_timeouts
    try:
        keras.distribution.initialize()
    finally:
        jax.distributed.initialize = original
    if jax.process_count() != count or jax.process_index() != index:
        raise DistributionError(f"JAX reports process {jax.process_index()} of "
                                f"{jax.process_count()}, the environment {index} of {count}")
    # Each process feeds its own rows of the global batch (`local_rows`).
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
    _STATE.update(active=True, process_id=index, num_processes=count,
                  devices=jax.device_count(), local_devices=jax.local_device_count())
    return count


def device_count():
    """Devices of all processes (1 without a distribution)."""
    return _STATE.get("devices", 1)


def check_batch_size(batch_size, name="batch_size"):
    """A global batch must split evenly over every device of every process."""
    if active() and batch_size % device_count():
        raise DistributionError(
            f"{name}={batch_size} must be a multiple of the {device_count()} devices of the "
            f"{num_processes()} processes (distribution=data_parallel)")


def local_rows(dataset):
    """This process's rows of each global batch of a `tf.data` dataset of
    `(inputs, targets)`: rows `[i * B/N, (i + 1) * B/N)` of process i of N.

    Every process must see the same global batches (same data and seed): the
    slices then share their padded lengths, as JAX needs.
    """
    if not active():
        return dataset
    import tensorflow as tf

    count, index = num_processes(), process_id()

    def take(*batch):
        rows = tf.shape(tf.nest.flatten(batch)[0])[0]
        tf.debugging.assert_equal(rows % count, 0, message=(
            f"a global batch must split evenly over the {count} processes"))
        size = rows // count
        return tf.nest.map_structure(lambda x: x[index * size:(index + 1) * size],
                                     batch if len(batch) > 1 else batch[0])

    sliced = dataset.map(take)
    cardinality = dataset.cardinality()
    if cardinality >= 0:
        sliced = sliced.apply(tf.data.experimental.assert_cardinality(cardinality))
    return sliced


def any_process(flag):
    """True on every process when `flag` is True on any (a collective: every
    process must call it at the same point)."""
    if not active() or num_processes() == 1:
        return bool(flag)
    import numpy as np
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([1 if flag else 0], np.int32))
    return bool(np.asarray(flags).any())


def same_on_every_process(value, what):
    """Raises when an int differs between processes (e.g. the resumed step:
    every process must read the same checkpoint)."""
    if not active() or num_processes() == 1:
        return
    import numpy as np
    from jax.experimental import multihost_utils

    values = np.asarray(multihost_utils.process_allgather(
        np.asarray([int(value)], np.int64))).reshape(-1).tolist()
    if len(set(values)) > 1:
        raise DistributionError(
            f"the processes disagree on {what}: {values} (process 0 first). Every process "
            f"must see the workdir (a shared file system) to resume from its checkpoints.")


@contextlib.contextmanager
def local_only():
    """Process 0 alone saving a model: under the distribution, a new variable
    (Keras' saving makes a throwaway optimizer) is a collective every process
    must join; without it, the variable stays on this process."""
    if not active():
        yield
        return
    import keras

    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def finish():
    """Ends the cluster after training, every process together: process 0
    then exports and evaluates alone, while the others exit. (A process
    that left without this would make JAX's shutdown barrier, or its
    missed heartbeats, end process 0.)"""
    if not active():
        return
    import jax

    _STATE["active"] = False
    jax.distributed.shutdown()
