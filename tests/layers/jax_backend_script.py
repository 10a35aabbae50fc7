"""Run by test_jax_backend.py in a subprocess with KERAS_BACKEND=jax.

Checks both layers, on fixed numpy inputs with masks, against the same numpy
reference as the TensorFlow tests. Exit status 0: all checks passed; anything
else (jax missing or broken included): failure.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_attention.testing.numpy_reference import reference_for  # noqa: E402

ATOL = 1e-5


def main():
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import keras_attention
    from keras_attention import AdditiveAttention, DotAttention

    rng = np.random.default_rng(2024)
    batch, tq, tv, d, dv = 3, 4, 5, 4, 3
    query = rng.normal(size=(batch, tq, d)).astype("float32")
    value = rng.normal(size=(batch, tv, dv)).astype("float32")
    key = rng.normal(size=(batch, tv, d)).astype("float32")
    value_mask = np.ones((batch, tv), bool)
    value_mask[0, -2:] = False
    value_mask[1, :] = False  # fully masked row
    query_mask = np.ones((batch, tq), bool)
    query_mask[2, 1] = False

    layers = {
        "additive": AdditiveAttention(units=5, bias_initializer="random_normal"),
        "additive_normalized": AdditiveAttention(units=5, normalize=True),
        "dot": DotAttention(score_mode="dot"),
        "general": DotAttention(score_mode="general", use_scale=True),
        "scaled_dot": DotAttention(score_mode="scaled_dot", use_scale=True),
    }
    checks = 0
    for name, layer in layers.items():
        layer(query, value, key=key)
        layer.set_weights([
            np.asarray(rng.uniform(0.5, 1.5), w.dtype) if w.ndim == 0
            else (0.7 * rng.normal(size=w.shape)).astype(w.dtype)
            for w in layer.get_weights()
        ])
        for causal in (False, True):
            context, weights = layer(
                query, value, key=key, value_mask=value_mask, query_mask=query_mask,
                use_causal_mask=causal, return_attention_scores=True,
            )
            ref_context, ref_weights = reference_for(
                layer, query, value, key=key, value_mask=value_mask,
                query_mask=query_mask, causal=causal,
            )
            np.testing.assert_allclose(np.asarray(weights), ref_weights, atol=ATOL,
                                       err_msg=f"{name} weights, causal={causal}")
            np.testing.assert_allclose(np.asarray(context), ref_context, atol=ATOL,
                                       err_msg=f"{name} context, causal={causal}")
            assert np.all(np.asarray(weights)[1] == 0) and np.all(np.asarray(context)[1] == 0)
            checks += 1
        # Single-step query through precomputed keys.
        projected = layer.project_keys(key)
        context, weights = layer(query[:, 0], value, projected_keys=projected,
                                 value_mask=value_mask, return_attention_scores=True)
        ref_context, ref_weights = reference_for(layer, query[:, 0], value, key=key,
                                                 value_mask=value_mask)
        np.testing.assert_allclose(np.asarray(weights), ref_weights, atol=ATOL,
                                   err_msg=f"{name} single step weights")
        np.testing.assert_allclose(np.asarray(context), ref_context, atol=ATOL,
                                   err_msg=f"{name} single step context")
        checks += 1
    print(f"jax backend OK: {checks} checks, keras_attention {keras_attention.__version__}, "
          f"keras {keras.__version__}, jax {jax.__version__}")


if __name__ == "__main__":
    main()
