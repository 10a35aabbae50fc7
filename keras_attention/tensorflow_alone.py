"""Set-up for a process that runs exported models with TensorFlow alone: the
`keras-attention` commands and the REST server, which never use Keras.

TensorFlow's own import also imports Keras (0.8 s of its 3 s on a 2-core
Xeon, matplotlib's pyplot among it), to register Keras' optimizers for
SavedModels that hold them. An export of this package holds none. Pointing
`tf.keras` at the separate `tf_keras` package (`TF_USE_LEGACY_KERAS`), absent
from a Keras 3 install, makes TensorFlow skip that import.

Only a process's entry point may call `prepare()`: a process that uses Keras
after it gets no `tf.keras`. Keras 3 itself never reads the variable.
"""

import os

from keras_attention import native_memory


def prepare(environ=None):
    """Before TensorFlow loads: no Keras behind its import, no C++ start-up
    chatter (`TF_CPP_MIN_LOG_LEVEL=2`), freed memory kept for reuse.

    Args:
        environ: The environment to set, `os.environ` by default (another
            mapping: a subprocess's). A variable it already holds is kept.

    Example:

    >>> environ = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    >>> prepare(environ)
    >>> environ
    {'TF_CPP_MIN_LOG_LEVEL': '3', 'TF_USE_LEGACY_KERAS': '1'}
    """
    environ = os.environ if environ is None else environ
    environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_memory.retain_freed_memory()
