"""The layers use `keras.ops` only: they must also run under the JAX backend.

The backend is fixed when Keras is first imported, so the check runs in a
subprocess (jax_backend_script.py) with KERAS_BACKEND=jax.
"""

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax_backend_script.py")


@pytest.mark.jax
def test_layers_match_numpy_reference_under_jax():
    # jax is a dependency of the `test` extra: a missing or broken jax fails.
    env = dict(os.environ)
    env.update({
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    })
    result = subprocess.run(
        [sys.executable, SCRIPT], env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"JAX backend check failed:\n{output[-6000:]}"
    assert "jax backend OK" in result.stdout, output[-6000:]
