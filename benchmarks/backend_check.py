"""Runs the backend-agnostic parts on another Keras backend (JAX, PyTorch),
on whatever accelerator it finds, and checks them against numpy.

    KERAS_BACKEND=jax   python -m benchmarks.backend_check
    KERAS_BACKEND=torch python -m benchmarks.backend_check

Checks: both attention layers against the numpy reference of the tests
(masks, causal, single step, precomputed keys); the AttentionDecoder's step
path against its fast path; greedy and beam search (beam width 1 = greedy)
on a small random seq2seq decoder; mixed_bfloat16 stays finite. Then times
one AdditiveAttention forward at B=64, T=100, units=256 (median of 20).
"""

import time

import keras
import numpy as np
from keras import ops

from keras_attention.testing.numpy_reference import reference_for

from keras_attention import (  # noqa: E402
    AdditiveAttention, AttentionDecoder, AttentionDecoderCell, DotAttention, decoding,
)


def check_layers(rng):
    query = rng.normal(size=(3, 4, 6)).astype("float32")
    value = rng.normal(size=(3, 5, 6)).astype("float32")
    value_mask = np.ones((3, 5), bool)
    value_mask[0, -2:] = False
    value_mask[1] = False
    for layer in (AdditiveAttention(7, bias_initializer="random_normal"),
                  DotAttention("general", use_scale=True), DotAttention("scaled_dot")):
        for causal in (False, True):
            context, weights = layer(query, value, value_mask=value_mask, use_causal_mask=causal,
                                     return_attention_scores=True)
            ref_context, ref_weights = reference_for(layer, query, value, value_mask=value_mask,
                                                     causal=causal)
            np.testing.assert_allclose(ops.convert_to_numpy(weights), ref_weights, atol=1e-4)
            np.testing.assert_allclose(ops.convert_to_numpy(context), ref_context, atol=1e-4)
        keys = layer.project_keys(value)
        context = layer(query[:, 0], value, projected_keys=keys, value_mask=value_mask)
        ref_context, _ = reference_for(layer, query[:, 0], value, value_mask=value_mask)
        np.testing.assert_allclose(ops.convert_to_numpy(context), ref_context, atol=1e-4)
    return "layers vs numpy: OK"


def check_decoder(rng):
    cell = AttentionDecoderCell(keras.layers.GRUCell(16), DotAttention("general"),
                                attention_layer_size=16, input_feeding=False)
    inputs = rng.normal(size=(2, 6, 8)).astype("float32")
    memory = rng.normal(size=(2, 7, 12)).astype("float32")
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], bool)
    fast = AttentionDecoder(cell)(inputs, memory, memory_mask=mask)
    steps = AttentionDecoder(cell, fast_path="never")(inputs, memory, memory_mask=mask)
    np.testing.assert_allclose(ops.convert_to_numpy(fast), ops.convert_to_numpy(steps), atol=1e-5)
    return "decoder fast path == step path: OK"


def check_decoding(rng):
    vocab, batch = 11, 3
    cell = AttentionDecoderCell(keras.layers.GRUCell(16), AdditiveAttention(8),
                                attention_layer_size=16, timing="bahdanau")
    embedding = keras.layers.Embedding(vocab, 8)
    projection = keras.layers.Dense(vocab)
    memory = rng.normal(size=(batch, 5, 12)).astype("float32")
    cell.build((None, 8), memory.shape)
    keys = cell.attention.project_keys(memory)

    def step(tokens, state, constants):
        memory, keys = constants
        out, state, weights = cell.step(embedding(tokens), state, memory, projected_keys=keys)
        return projection(out), state, weights

    state = cell.get_initial_state(memory)
    start = np.zeros((batch,), "int32")
    greedy = decoding.greedy_search(step, state, start, 1, 9, constants=(memory, keys))
    beam = decoding.beam_search(step, state, start, 1, 9, beam_width=1, constants=(memory, keys))
    np.testing.assert_array_equal(ops.convert_to_numpy(greedy.ids),
                                  ops.convert_to_numpy(beam.ids[:, 0]))
    wide = decoding.beam_search(step, state, start, 1, 9, beam_width=4, num_hypotheses=2,
                                constants=(memory, keys))
    best = ops.convert_to_numpy(wide.log_probs[:, 0])
    assert np.all(best >= ops.convert_to_numpy(greedy.log_probs) - 1e-4), (best, greedy.log_probs)
    return "greedy == beam(1), beam(4) >= greedy: OK"


def check_bfloat16(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = AdditiveAttention(32)
        query = rng.normal(size=(4, 10, 32)).astype("float32") * 30
        value = rng.normal(size=(4, 12, 32)).astype("float32") * 30
        mask = np.ones((4, 12), bool)
        mask[0] = False
        context, weights = layer(query, value, value_mask=mask, return_attention_scores=True)
        context = ops.convert_to_numpy(ops.cast(context, "float32"))
        weights = ops.convert_to_numpy(ops.cast(weights, "float32"))
        assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
        np.testing.assert_allclose(weights[1:].sum(-1), 1.0, atol=2e-2)
    finally:
        keras.config.set_dtype_policy("float32")
    return "mixed_bfloat16 finite: OK"


def time_additive(rng):
    layer = AdditiveAttention(256)
    query = ops.convert_to_tensor(rng.normal(size=(64, 100, 256)).astype("float32"))
    value = ops.convert_to_tensor(rng.normal(size=(64, 100, 256)).astype("float32"))
    layer(query, value)
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        ops.convert_to_numpy(layer(query, value)[0, 0, 0])  # waits for the device
        samples.append(time.perf_counter() - start)
    return f"AdditiveAttention fwd B=64 T=100 U=256: {1000 * np.median(samples):.2f} ms (eager)"


def main():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    backend = keras.backend.backend()
    device = "cpu"
    if backend == "jax":
        import jax

        device = str(jax.devices()[0])
    elif backend == "torch":
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"backend {backend}, keras {keras.__version__}, device {device}")
    for check in (check_layers, check_decoder, check_decoding, check_bfloat16, time_additive):
        print(check(rng), flush=True)


if __name__ == "__main__":
    main()
