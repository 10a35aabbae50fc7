"""The layers use `keras.ops` only: they must also run under the JAX backend.

The backend is fixed when Keras is first imported, so the check runs in a
subprocess (jax_backend_script.py) with KERAS_BACKEND=jax.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax_backend_script.py")
SKIP_STATUS = 77


def skip_outside_ci(reason):
    """CI installs the `jax` extra: there a missing backend is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs keras-attention[jax])")
    pytest.skip(reason)


@pytest.mark.jax
def test_layers_match_numpy_reference_under_jax():
    if importlib.util.find_spec("jax") is None:
        skip_outside_ci("jax is not installed (pip install keras-attention[jax])")
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
    if result.returncode == SKIP_STATUS:
        skip_outside_ci(f"`import jax` fails: {result.stdout.strip()}")
    assert result.returncode == 0, f"JAX backend check failed:\n{output[-6000:]}"
    assert "jax backend OK" in result.stdout, output[-6000:]
