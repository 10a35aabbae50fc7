"""Beam search with GNMT length and coverage penalties and n-best output."""

import keras
from keras import ops

from keras_attention.decoding.result import DecodingResult
from keras_attention.decoding.search_loop import (
    attention_buffer,
    call_step,
    loop_until_finished,
    validate_arguments,
    write_at,
)

_IMPOSSIBLE = -1e9  # finite, so sums of impossible scores never make NaN


def beam_search(
    step_fn, initial_state, start_tokens, end_token, max_length, beam_width, length_penalty=0.0,
    coverage_penalty=0.0, num_hypotheses=1, pad_token=0, constants=None,
):
    """Decodes with a beam of `beam_width` hypotheses per input.

    Hypotheses are ranked by the GNMT score (Wu et al. 2016):

        score = log P(Y) / lp(Y) + cp(Y)
        lp(Y) = ((5 + |Y|) / 6) ** length_penalty        (|Y| counts the end token)
        cp(Y) = coverage_penalty * sum_i log(min(sum_t a_ti, 1))

    where the coverage sum skips memory positions that received no
    attention at all (padding). Finished hypotheses stay in the beam and
    compete with live ones; the loop stops when all are finished or after
    `max_length` steps.

    The search tiles `initial_state` and `constants` to `B * beam_width`
    rows itself and reorders the state (any nested structure of
    batch-first tensors) after every step; the caller never tiles.

    Args:
        step_fn: `(tokens [B*K], state) -> (logits [B*K, V], state,
            attention [B*K, S] or None)`, called with `constants` as a third
            argument when given.
        initial_state: Nested `[B, ...]` tensors.
        start_tokens: int `[B]`.
        end_token: int.
        max_length: int, the most tokens emitted, end token included.
        beam_width: int K >= 1.
        length_penalty: GNMT alpha, >= 0 (0: plain log-probability).
        coverage_penalty: GNMT beta, >= 0; needs attention from `step_fn`.
        num_hypotheses: N <= K best hypotheses returned per input.
        pad_token: int written after the end token.
        constants: Optional nested `[B, ...]` tensors (the memory), tiled
            once and passed to every step unchanged.

    Returns:
        A `DecodingResult`, best first: ids `[B, N, T]`, lengths `[B, N]`,
        log_probs `[B, N]`, scores `[B, N]`, attention `[B, N, T, S]` (or
        None).

    Example:

    >>> import numpy as np
    >>> table = np.log(np.array([[0.1, 0.5, 0.4], [0.1, 0.1, 0.8], [0.0, 0.0, 1.0]]) + 1e-9)
    >>> def step_fn(tokens, state):
    ...     return ops.take(table, tokens, axis=0), state, None
    >>> result = beam_search(step_fn, (), np.array([0]), end_token=2, max_length=4,
    ...                      beam_width=3, num_hypotheses=2)
    >>> ops.convert_to_numpy(result.ids[0]).tolist()
    [[2, 0, 0, 0], [1, 2, 0, 0]]
    """
    validate_arguments(max_length, end_token)
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive integer, received {beam_width!r}")
    if not 1 <= num_hypotheses <= beam_width:
        raise ValueError(
            f"`num_hypotheses` must be in [1, beam_width={beam_width}], received {num_hypotheses}"
        )
    if length_penalty < 0 or coverage_penalty < 0:
        raise ValueError(
            f"penalties must be >= 0, received length_penalty={length_penalty}, "
            f"coverage_penalty={coverage_penalty}"
        )
    width = beam_width
    start_tokens = ops.cast(start_tokens, "int32")
    batch_size = ops.shape(start_tokens)[0]
    end_token = ops.cast(end_token, "int32")
    pad = ops.cast(pad_token, "int32")

    def tile(x):  # [B, ...] --> [B*K, ...], the K copies of a row adjacent
        return ops.repeat(x, width, axis=0)

    state = keras.tree.map_structure(tile, initial_state)
    if constants is not None:
        constants = keras.tree.map_structure(tile, constants)

    def record(step, finished, logits, attention, log_probs, generated, ids, history, coverage):
        """Extends every hypothesis by every token and keeps the best K.

        finished/log_probs/generated: [B, K]; logits: [B*K, V];
        attention, coverage: [B*K, S]; ids: [B*K, T]; history: [B*K, T, S].
        """
        vocab_size = ops.shape(logits)[-1]
        step_log_probs = ops.reshape(ops.log_softmax(logits, axis=-1), (batch_size, width, -1))
        only_end = ops.where(ops.arange(vocab_size) == end_token, 0.0, _IMPOSSIBLE)  # --> [V]
        step_log_probs = ops.where(finished[..., None], only_end, step_log_probs)
        total = log_probs[..., None] + step_log_probs  # --> [B, K, V]
        candidate_lengths = generated + ops.cast(ops.logical_not(finished), "int32")
        penalty = ops.power((5.0 + ops.cast(candidate_lengths, "float32")) / 6.0, length_penalty)
        scores = total / penalty[..., None]
        attention_k = ops.reshape(attention, (batch_size, width, -1))  # --> [B, K, S]
        live = ops.cast(ops.logical_not(finished), "float32")[..., None]
        new_coverage = ops.reshape(coverage, (batch_size, width, -1)) + attention_k * live
        if coverage_penalty:
            covered = ops.log(ops.minimum(ops.maximum(new_coverage, 1e-20), 1.0))
            penalty_sum = ops.sum(ops.where(new_coverage > 0, covered, 0.0), axis=-1)
            scores = scores + coverage_penalty * penalty_sum[..., None]

        top_scores, top_indices = ops.top_k(ops.reshape(scores, (batch_size, -1)), width)
        top_indices = ops.cast(top_indices, "int32")
        parents = top_indices // vocab_size  # --> [B, K]
        tokens = top_indices % vocab_size
        rows = ops.reshape(
            ops.arange(batch_size, dtype="int32")[:, None] * width + parents, (-1,)
        )  # --> [B*K] rows of the parents in the tiled batch

        def pick(x):  # [B, K, ...] --> chosen parents' values
            return ops.take_along_axis(x, ops.reshape(parents, (batch_size, width) + (1,) * (len(x.shape) - 2)), axis=1)

        log_probs = ops.take_along_axis(ops.reshape(total, (batch_size, -1)), top_indices, axis=1)
        parent_finished = pick(finished)
        generated = pick(candidate_lengths)
        finished = ops.logical_or(parent_finished, ops.equal(tokens, end_token))
        emitted = ops.reshape(ops.where(parent_finished, pad, tokens), (-1,))
        ids = write_at(ops.take(ids, rows, axis=0), step, emitted)
        parent_live = ops.reshape(ops.cast(ops.logical_not(parent_finished), "float32"), (-1, 1))
        history = write_at(
            ops.take(history, rows, axis=0), step, ops.take(attention, rows, axis=0) * parent_live
        )
        coverage = ops.take(ops.reshape(new_coverage, (batch_size * width, -1)), rows, axis=0)
        return (step + 1, finished, ops.reshape(tokens, (-1,)), rows, log_probs, generated,
                top_scores, ids, history, coverage)

    def body(step, finished, tokens, state, log_probs, generated, scores, ids, history, coverage):
        logits, state, attention = call_step(step_fn, tokens, state, constants)
        attention = _attention_or_zeros(attention, batch_size * width)
        (step, finished, tokens, rows, log_probs, generated, scores, ids, history,
         coverage) = record(step, finished, logits, attention, log_probs, generated, ids, history,
                            coverage)
        state = keras.tree.map_structure(lambda x: ops.take(x, rows, axis=0), state)
        return step, finished, tokens, state, log_probs, generated, scores, ids, history, coverage

    # The first step runs outside the loop: it tells the memory length S.
    logits, state, attention = call_step(step_fn, tile(start_tokens), state, constants)
    has_attention = attention is not None
    if coverage_penalty and not has_attention:
        raise ValueError("coverage_penalty needs a step_fn that returns attention weights")
    attention = _attention_or_zeros(attention, batch_size * width)
    first_beam_only = ops.where(ops.arange(width) == 0, 0.0, _IMPOSSIBLE)  # identical beams
    (step, finished, tokens, rows, log_probs, generated, scores, ids, history,
     coverage) = record(
        ops.convert_to_tensor(0, "int32"),
        ops.zeros((batch_size, width), "bool"),
        logits,
        attention,
        ops.tile(first_beam_only[None, :], (batch_size, 1)),
        ops.zeros((batch_size, width), "int32"),
        ops.full((batch_size * width, max_length), pad_token, "int32"),
        attention_buffer(attention, batch_size * width, max_length),
        ops.zeros_like(attention),
    )
    state = keras.tree.map_structure(lambda x: ops.take(x, rows, axis=0), state)
    loop_vars = (step, finished, tokens, state, log_probs, generated, scores, ids, history,
                 coverage)
    (_, finished, _, _, log_probs, generated, scores, ids, history,
     _) = loop_until_finished(body, loop_vars, max_length)

    # top_k left the beams sorted by score, best first.
    n = num_hypotheses
    lengths = generated - ops.cast(finished, "int32")
    ids = ops.reshape(ids, (batch_size, width, -1))[:, :n]
    attention_out = None
    if has_attention:
        steps, memory_length = ops.shape(history)[1], ops.shape(history)[2]
        attention_out = ops.reshape(history, (batch_size, width, steps, memory_length))[:, :n]
    return DecodingResult(ids, lengths[:, :n], log_probs[:, :n], scores[:, :n], attention_out)


def _attention_or_zeros(attention, rows):
    return ops.zeros((rows, 1), "float32") if attention is None else attention
