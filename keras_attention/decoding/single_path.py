"""One sequence per input, one token chosen per step: greedy and sampling."""

from keras import ops

from keras_attention.decoding.result import DecodingResult
from keras_attention.decoding.search_loop import (
    attention_buffer,
    attention_or_zeros,
    call_step,
    loop_until_finished,
    validate_arguments,
    write_at,
)


def single_path_search(
    step_fn, initial_state, start_tokens, end_token, max_length, choose_token,
    pad_token=0, constants=None,
):
    """Shared loop of greedy search and sampling.

    `choose_token(log_probs [B, V], step) -> tokens [B]` picks the next
    token from float32 log-probabilities.

    Example:

    >>> import numpy as np
    >>> def step_fn(tokens, state):   # B=1, uniform over V=4 tokens, no attention
    ...     return ops.zeros((1, 4)), state, None
    >>> def choose_token(log_probs, step):   # token step + 1: 1, 2, then 3 (the end)
    ...     return ops.full((1,), step + 1, "int32")
    >>> result = single_path_search(step_fn, (), np.array([0]), end_token=3, max_length=5,
    ...                             choose_token=choose_token)
    >>> ops.convert_to_numpy(result.ids).tolist(), ops.convert_to_numpy(result.lengths).tolist()
    ([[1, 2, 3, 0, 0]], [2])
    >>> round(float(result.log_probs[0]), 4), result.attention is None   # 3 log(1/4)
    (-4.1589, True)
    """
    validate_arguments(max_length, end_token)
    start_tokens = ops.cast(start_tokens, "int32")
    batch_size = ops.shape(start_tokens)[0]
    end_token = ops.cast(end_token, "int32")
    pad = ops.cast(pad_token, "int32")

    def record(step, finished, logits, attention, ids, lengths, log_probs, history):
        step_log_probs = ops.log_softmax(logits, axis=-1)  # --> [B, V]
        chosen = ops.cast(choose_token(step_log_probs, step), "int32")
        chosen_log_prob = ops.take_along_axis(step_log_probs, chosen[:, None], axis=-1)[:, 0]
        chosen = ops.where(finished, pad, chosen)
        log_probs = log_probs + ops.where(finished, 0.0, chosen_log_prob)
        ended_now = ops.logical_and(ops.logical_not(finished), ops.equal(chosen, end_token))
        still_going = ops.logical_not(ops.logical_or(finished, ended_now))
        lengths = lengths + ops.cast(still_going, "int32")
        ids = write_at(ids, step, chosen)
        live = ops.cast(ops.logical_not(finished), "float32")[:, None]
        history = write_at(history, step, attention * live)
        finished = ops.logical_or(finished, ended_now)
        return step + 1, finished, chosen, ids, lengths, log_probs, history

    def body(step, finished, tokens, state, ids, lengths, log_probs, history):
        logits, state, attention = call_step(step_fn, tokens, state, constants)
        attention = attention_or_zeros(attention, batch_size)
        step, finished, tokens, ids, lengths, log_probs, history = record(
            step, finished, logits, attention, ids, lengths, log_probs, history
        )
        return step, finished, tokens, state, ids, lengths, log_probs, history

    # The first step runs outside the loop: it tells the memory length S.
    logits, state, attention = call_step(step_fn, start_tokens, initial_state, constants)
    has_attention = attention is not None
    attention = attention_or_zeros(attention, batch_size)
    step, finished, tokens, ids, lengths, log_probs, history = record(
        ops.convert_to_tensor(0, "int32"),
        ops.zeros((batch_size,), "bool"),
        logits,
        attention,
        ops.full((batch_size, max_length), pad_token, "int32"),
        ops.zeros((batch_size,), "int32"),
        ops.zeros((batch_size,), "float32"),
        attention_buffer(attention, batch_size, max_length),
    )
    loop_vars = (step, finished, tokens, state, ids, lengths, log_probs, history)
    _, _, _, _, ids, lengths, log_probs, history = loop_until_finished(body, loop_vars, max_length)
    return DecodingResult(ids, lengths, log_probs, log_probs, history if has_attention else None)
