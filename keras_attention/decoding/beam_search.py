"""Beam search with GNMT length and coverage penalties and n-best output.

Shapes: B inputs, K beams per input, V tokens, T steps (`max_length`), S
memory positions. The model state and the per-token buffers are kept
"flat", `[B*K, ...]` with the K beams of an input in adjacent rows (what
`step_fn` sees); the per-hypothesis scalars are `[B, K]` (what `top_k`
ranks).
"""

from typing import Any, NamedTuple

import keras
from keras import ops

from keras_attention.decoding.result import DecodingResult
from keras_attention.decoding.search_loop import (
    attention_buffer,
    attention_or_zeros,
    call_step,
    keep_going,
    validate_arguments,
    write_at,
)

_IMPOSSIBLE = -1e9  # finite, so sums of impossible scores never make NaN


class BeamState(NamedTuple):
    """The K hypotheses per input that the search carries from step to step.

    A NamedTuple, so it is a nested structure that `while_loop` carries
    (the model state travels beside it, reordered with the same rows).
    """

    step: Any  # [] int32, the position the next token is written at
    finished: Any  # [B, K] bool, emitted the end token
    tokens: Any  # [B*K] int32, the last emitted token: the next step's input
    log_probs: Any  # [B, K] float32, log P(Y) summed over emitted tokens
    generated: Any  # [B, K] int32, tokens emitted, the end token included (|Y|)
    scores: Any  # [B, K] float32, GNMT scores, best first
    ids: Any  # [B*K, T] int32, emitted tokens, then pad
    history: Any  # [B*K, T, S] float32, attention of each emitted token (S = 1 without)
    coverage: Any  # [B*K, S] float32, attention summed over the emitted tokens


def tile_beams(x, width):
    """`[B, ...]` --> `[B*K, ...]`, the K copies of row b in rows b*K .. b*K+K-1."""
    return ops.repeat(x, width, axis=0)


def flatten_beams(x):
    """`[B, K, ...]` --> `[B*K, ...]`."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0] * shape[1],) + tuple(shape[2:]))


def unflatten_beams(x, batch_size, width):
    """`[B*K, ...]` --> `[B, K, ...]`."""
    return ops.reshape(x, (batch_size, width) + tuple(ops.shape(x)[1:]))


def parent_rows(parents, width):
    """Beam indices `[B, K]` --> their rows `[B*K]` in the flat `[B*K, ...]` layout."""
    batch_size = ops.shape(parents)[0]
    return flatten_beams(ops.arange(batch_size, dtype="int32")[:, None] * width + parents)


def gather_beams(tree, rows):
    """Row `rows[i]` of every flat `[B*K, ...]` tensor in `tree` becomes row i."""
    return keras.tree.map_structure(lambda x: ops.take(x, rows, axis=0), tree)


def gnmt_scores(log_probs, lengths, coverage, length_penalty, coverage_penalty):
    """`log P(Y) / lp(Y) + cp(Y)` of every candidate extension.

    log_probs `[B, K, V]`, lengths `[B, K]` (|Y| after the extension),
    coverage `[B, K, S]` --> scores `[B, K, V]`.
    """
    lp = ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, length_penalty)  # --> [B, K]
    scores = log_probs / lp[..., None]
    if coverage_penalty:
        # Positions that received no attention at all are padding: skipped,
        # not log(0). The 1e-20 floor only keeps the unselected branch finite.
        covered = ops.log(ops.minimum(ops.maximum(coverage, 1e-20), 1.0))
        cp = ops.sum(ops.where(coverage > 0, covered, 0.0), axis=-1)  # --> [B, K]
        scores = scores + coverage_penalty * cp[..., None]
    return scores


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

    state = keras.tree.map_structure(lambda x: tile_beams(x, width), initial_state)
    if constants is not None:
        constants = keras.tree.map_structure(lambda x: tile_beams(x, width), constants)

    def extend_and_prune(beam, logits, attention):
        """Extends every hypothesis by every token and keeps the best K.

        logits `[B*K, V]`, attention `[B*K, S]` (this step's, for the
        hypotheses in `beam`) --> the new `BeamState` and the rows `[B*K]`
        of the kept hypotheses' parents, to reorder the model state with.
        """
        vocab_size = ops.shape(logits)[-1]
        step_log_probs = unflatten_beams(ops.log_softmax(logits, axis=-1), batch_size, width)
        # A finished hypothesis has one extension, the end token at no cost
        # (which is never emitted: it writes pad), so it keeps its log P and
        # stays in the beam to compete with the live ones.
        only_end = ops.where(ops.arange(vocab_size) == end_token, 0.0, _IMPOSSIBLE)  # --> [V]
        step_log_probs = ops.where(beam.finished[..., None], only_end, step_log_probs)
        live = ops.logical_not(beam.finished)  # --> [B, K]
        candidate_log_probs = beam.log_probs[..., None] + step_log_probs  # --> [B, K, V]
        candidate_lengths = beam.generated + ops.cast(live, "int32")  # --> [B, K]
        candidate_coverage = (unflatten_beams(beam.coverage, batch_size, width)
                              + unflatten_beams(attention, batch_size, width)
                              * ops.cast(live, "float32")[..., None])  # --> [B, K, S]
        scores = gnmt_scores(candidate_log_probs, candidate_lengths, candidate_coverage,
                             length_penalty, coverage_penalty)  # --> [B, K, V]

        # The K best of the K*V candidates of each input, best first.
        top_scores, top_indices = ops.top_k(ops.reshape(scores, (batch_size, -1)), width)
        top_indices = ops.cast(top_indices, "int32")  # --> [B, K] into K*V
        parents = top_indices // vocab_size  # --> [B, K] the beam each winner extends
        tokens = top_indices % vocab_size  # --> [B, K]
        rows = parent_rows(parents, width)  # --> [B*K]

        parent_finished = ops.take_along_axis(beam.finished, parents, axis=1)  # --> [B, K]
        parent_live = ops.cast(ops.logical_not(flatten_beams(parent_finished)), "float32")
        ids, history, coverage, attention = gather_beams(
            (beam.ids, beam.history, flatten_beams(candidate_coverage), attention), rows
        )
        emitted = flatten_beams(ops.where(parent_finished, pad, tokens))  # --> [B*K]
        new_beam = BeamState(
            step=beam.step + 1,
            finished=ops.logical_or(parent_finished, ops.equal(tokens, end_token)),
            tokens=flatten_beams(tokens),
            log_probs=ops.take_along_axis(ops.reshape(candidate_log_probs, (batch_size, -1)),
                                          top_indices, axis=1),
            generated=ops.take_along_axis(candidate_lengths, parents, axis=1),
            scores=top_scores,
            ids=write_at(ids, beam.step, emitted),
            history=write_at(history, beam.step, attention * parent_live[:, None]),
            coverage=coverage,
        )
        return new_beam, rows

    def body(beam, state):
        logits, state, attention = call_step(step_fn, beam.tokens, state, constants)
        attention = attention_or_zeros(attention, batch_size * width)
        beam, rows = extend_and_prune(beam, logits, attention)
        return beam, gather_beams(state, rows)

    # The first step runs outside the loop: it tells the memory length S.
    tokens = tile_beams(start_tokens, width)
    logits, state, attention = call_step(step_fn, tokens, state, constants)
    has_attention = attention is not None
    if coverage_penalty and not has_attention:
        raise ValueError("coverage_penalty needs a step_fn that returns attention weights")
    attention = attention_or_zeros(attention, batch_size * width)
    # The K beams start as copies of one hypothesis: only the first may be
    # extended, or the first step would keep K copies of the best token.
    first_beam_only = ops.where(ops.arange(width) == 0, 0.0, _IMPOSSIBLE)  # --> [K]
    start = BeamState(
        step=ops.convert_to_tensor(0, "int32"),
        finished=ops.zeros((batch_size, width), "bool"),
        tokens=tokens,
        log_probs=ops.tile(first_beam_only[None, :], (batch_size, 1)),
        generated=ops.zeros((batch_size, width), "int32"),
        scores=ops.zeros((batch_size, width), "float32"),
        ids=ops.full((batch_size * width, max_length), pad_token, "int32"),
        history=attention_buffer(attention, batch_size * width, max_length),
        coverage=ops.zeros_like(attention),
    )
    beam, rows = extend_and_prune(start, logits, attention)
    state = gather_beams(state, rows)
    beam, _ = ops.while_loop(
        lambda beam, state: keep_going(beam.step, beam.finished, max_length), body, (beam, state)
    )

    # top_k left the beams sorted by score, best first.
    n = num_hypotheses
    lengths = beam.generated - ops.cast(beam.finished, "int32")  # the end token not counted
    attention_out = None
    if has_attention:
        attention_out = unflatten_beams(beam.history, batch_size, width)[:, :n]
    return DecodingResult(unflatten_beams(beam.ids, batch_size, width)[:, :n], lengths[:, :n],
                          beam.log_probs[:, :n], beam.scores[:, :n], attention_out)
