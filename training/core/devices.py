"""Where training runs: tf.distribute strategies, logical CPUs, the dtype
policy, and whether an accelerator is at hand."""

import keras
import tensorflow as tf

from training.core import distribution

_STRATEGIES = {}


def replicas_in_sync():
    """tf.distribute replicas whose gradients are summed; 1 on other backends
    (JAX's data parallelism computes the global batch's loss as one)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync


class _NoStrategy:
    """What `make_strategy` gives on a backend without tf.distribute."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def apply_precision(config):
    """Sets Keras' global dtype policy to `config.precision` (before a model
    is built: a layer takes the policy of its construction)."""
    keras.config.set_dtype_policy(getattr(config, "precision", "float32"))


def has_accelerator():
    """Whether the backend sees a GPU or TPU (not only the CPU)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(device.platform != "cpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def precision_warning(precision, accelerator):
    """What to tell a user who trains in 16 bits on CPUs alone (None: nothing)."""
    if precision == "float32" or accelerator:
        return None
    return (f"note: precision={precision} on CPUs alone is slower than float32 for these "
            f"models: a training step ran 0.40x as fast in mixed_bfloat16 even on a Xeon with "
            f"AMX (JAX; the backward pass loses 3x what the forward pass gains). See the "
            f"README's 'Precision'; --set precision=float32 is the default.")


def data_replicas(config):
    """How many ways a batch splits: tf.distribute replicas, or every device
    of every process under `distribution=data_parallel`."""
    if distribution.active():
        return distribution.device_count()
    return make_strategy(config.strategy).num_replicas_in_sync


def make_strategy(name):
    """`"default"`, `"mirrored"` (all local GPUs, or CPUs given as logical
    devices) or `"multi_worker"` (several machines, described by TF_CONFIG).

    The strategy is made once per process and reused: a multi-worker
    strategy must exist before TensorFlow runs its first operation, so the
    training script asks for it first thing.
    """
    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise ValueError(f"strategy {name} is tf.distribute, for the TensorFlow backend; "
                             f"on {keras.backend.backend()} use distribution=data_parallel")
        return _NoStrategy()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _new_strategy(name)
    return _STRATEGIES[name]


def _new_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        from training.core.config import MULTI_WORKER_REFUSED

        raise ValueError(MULTI_WORKER_REFUSED)
    raise ValueError(f"`strategy` must be default, mirrored or multi_worker, received {name!r}")


def split_cpu(devices):
    """Expose the CPU as `devices` logical devices (call before TF starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )
