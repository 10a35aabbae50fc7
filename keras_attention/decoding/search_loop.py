"""Pieces shared by the decoding methods (keras.ops only)."""

import keras
from keras import ops


def call_step(step_fn, tokens, state, constants):
    """Calls `step_fn(tokens, state[, constants])`; logits in float32."""
    if constants is None:
        logits, state, attention = step_fn(tokens, state)
    else:
        logits, state, attention = step_fn(tokens, state, constants)
    if attention is not None:
        attention = ops.cast(attention, "float32")
    return ops.cast(logits, "float32"), state, attention


def write_at(buffer, step, values):
    """`buffer[:, step] = values` without dynamic-update-slice ops.

    `buffer`: `[B, T, ...]`, `values`: `[B, ...]`. XLA's dynamic update
    slice has no kernel outside XLA (and none in stock TensorFlow Serving),
    so the write is a select against a one-hot time axis.

    Example:

    >>> import numpy as np
    >>> buffer = np.zeros((2, 4), "int32")   # [B, T]
    >>> ops.convert_to_numpy(write_at(buffer, 1, np.array([7, 8]))).tolist()
    [[0, 7, 0, 0], [0, 8, 0, 0]]
    """
    length = ops.shape(buffer)[1]
    hit = ops.equal(ops.arange(length, dtype="int32"), ops.cast(step, "int32"))  # --> [T]
    hit = ops.reshape(hit, (1, -1) + (1,) * (len(buffer.shape) - 2))
    return ops.where(hit, ops.expand_dims(ops.cast(values, buffer.dtype), 1), buffer)


def validate_arguments(max_length, end_token):
    if isinstance(max_length, int) and max_length <= 0:
        raise ValueError(f"`max_length` must be a positive integer, received {max_length}")
    if isinstance(end_token, int) and end_token < 0:
        raise ValueError(f"`end_token` must be a token id >= 0, received {end_token}")


def attention_or_zeros(attention, rows):
    """`attention [rows, S]`, or zeros `[rows, 1]` for a step function without
    attention, so the search loops carry the same tensors either way."""
    return ops.zeros((rows, 1), "float32") if attention is None else attention


def attention_buffer(attention, batch_size, max_length):
    """Zeros `[B, T, S]` for the attention of every step, or None."""
    if attention is None:
        return None
    return ops.zeros((batch_size, max_length, ops.shape(attention)[-1]), dtype="float32")


def keep_going(step, finished, max_length):
    """The loop condition: steps left and some sequence (`finished`: bool) still live."""
    return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))


def loop_until_finished(body, loop_vars, max_length):
    """Runs `body(step, finished, *rest)` until `step == max_length` or
    every sequence finished. Symbolic (`keras.ops.while_loop`), so it
    exports and compiles with XLA."""

    def cond(step, finished, *rest):
        return keep_going(step, finished, max_length)

    return keras.ops.while_loop(cond, body, tuple(loop_vars))
