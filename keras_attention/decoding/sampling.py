"""Sampling with temperature and top-k, reproducible by seed."""

import keras
from keras import ops

from keras_attention.decoding.single_path import single_path_search


def sampling_search(
    step_fn, initial_state, start_tokens, end_token, max_length, temperature=1.0, top_k=None,
    seed=0, pad_token=0, constants=None,
):
    """Decodes by sampling each token from the (tempered, top-k) softmax.

    Randomness is stateless: step t draws with the seed pair
    `(seed, t)`, so the same seed gives the same sequences, inside or
    outside `tf.function`, under XLA and in an exported SavedModel.

    Args:
        step_fn: As in `greedy_search`.
        initial_state: As in `greedy_search`.
        start_tokens: As in `greedy_search`.
        end_token: As in `greedy_search`.
        max_length: As in `greedy_search`.
        temperature: float > 0; below 1 sharpens, above 1 flattens.
        top_k: Optional int, sample among the k most likely tokens only.
        seed: int or int32 scalar tensor.
        pad_token: As in `greedy_search`.
        constants: As in `greedy_search`.

    Returns:
        A `DecodingResult` (ids `[B, T]`, lengths `[B]`, log_probs `[B]` under
        the untempered model, scores = log_probs, attention `[B, T, S]`).

    Example:

    >>> import numpy as np
    >>> def step_fn(tokens, state):
    ...     return ops.zeros((1, 4)), state, None      # uniform over 4 tokens
    >>> a = sampling_search(step_fn, (), np.array([0]), 3, 6, seed=7)
    >>> b = sampling_search(step_fn, (), np.array([0]), 3, 6, seed=7)
    >>> bool(ops.all(a.ids == b.ids))
    True
    """
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"`temperature` must be > 0, received {temperature}")
    if top_k is not None and top_k <= 0:
        raise ValueError(f"`top_k` must be a positive integer or None, received {top_k}")

    def choose_token(log_probs, step):
        logits = log_probs / ops.cast(temperature, "float32")
        if top_k is not None:
            kth_best = ops.top_k(logits, top_k)[0][:, -1:]
            logits = ops.where(logits < kth_best, -1e9, logits)
        return stateless_categorical(logits, seed, step)

    return single_path_search(
        step_fn, initial_state, start_tokens, end_token, max_length, choose_token,
        pad_token=pad_token, constants=constants,
    )


def stateless_categorical(logits, seed, step):
    """One draw per row of `logits [B, V]`, a pure function of (seed, step)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # Gumbel-max over Philox bits, not tf.random.stateless_categorical:
        # XLA compiles that op (and, inside a while loop, the float
        # stateless_uniform) to other draws than the CPU/GPU kernels for the
        # same seed. The raw uint32 Philox bits agree with and without XLA,
        # so the uniforms are made from them here.
        pair = tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])
        bits = tf.random.stateless_uniform(
            tf.shape(logits), seed=pair, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
        )
        uniform = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) / 2.0**24  # (0, 1)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        return tf.argmax(tf.cast(logits, tf.float32) + gumbel, axis=-1, output_type=tf.int32)
    if backend == "jax":
        import jax

        key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
        return jax.random.categorical(key, logits, axis=-1).astype("int32")
    raise NotImplementedError(f"sampling_search supports the tensorflow and jax backends, not {backend}")
