"""The server's step-by-step searches (`GreedyRows`, `BeamRows`) against
the library's whole searches (`keras_attention.decoding`) on a toy model
whose next token depends on its state: the same ids, lengths, scores and
attention, row by row, over many random models (ties included). Scores
to the last bit, but beam scores to one float32 step."""

import numpy as np
import pytest
from keras import ops

from keras_attention import decoding
from keras_attention.serving.beam_rows import BeamRows, top_k_indices
from keras_attention.serving.greedy_rows import GreedyRows

V, S, END, START, PAD = 7, 5, 2, 1, 0


def toy_model(seed, ties=False):
    """`step(tokens [R], state [R]) -> (logits [R, V], state, attention [R, S])`
    in numpy, float32; the state is a running hash of the tokens, so a beam
    that reorders its rows wrongly gets other words."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(11, V)).astype("float32") * 2
    if ties:  # whole rows of equal logits: the order of ties decides
        table[rng.integers(0, 11, 4)] = 0.0
    focus = rng.normal(size=(11, S)).astype("float32")

    def step(tokens, state):
        state = (state * 3 + tokens + 1) % 11
        attention = ops.convert_to_numpy(ops.softmax(focus[state], axis=-1))
        return table[state], state, attention.astype("float32")

    return step


def library_search(step, rows, max_length, beam=None):
    initial = np.arange(rows, dtype="int32") % 11

    def step_fn(tokens, state):
        log_probs, state, attention = step(ops.convert_to_numpy(tokens),
                                           ops.convert_to_numpy(state))
        return log_probs, state, attention

    start = np.full([rows], START, "int32")
    if beam is None:
        return decoding.greedy_search(step_fn, initial, start, END, max_length, pad_token=PAD)
    return decoding.beam_search(step_fn, initial, start, END, max_length, pad_token=PAD, **beam)


def stepped_search(search, step, rows, width):
    """Runs `search` on the log-probabilities an export's `decode_step`
    returns: the logits' log-softmax in float32."""
    state = np.repeat(np.arange(rows, dtype="int32") % 11, width)
    while not search.done:
        logits, state, attention = step(search.tokens(), state)
        log_probs = ops.convert_to_numpy(ops.log_softmax(logits, axis=-1))
        parents = search.advance(log_probs, attention)
        if parents is not None:
            state = state[parents]
    return search


@pytest.mark.parametrize("seed", range(6))
def test_greedy_rows_match_the_library_search(seed):
    step = toy_model(seed, ties=seed % 2 == 1)
    want = library_search(step, rows=3, max_length=6)
    got = stepped_search(GreedyRows(6, START, END, PAD, rows=3), step, 3, 1)
    np.testing.assert_array_equal(ops.convert_to_numpy(want.ids)[:, :got.steps], got.ids())
    np.testing.assert_array_equal(ops.convert_to_numpy(want.lengths), got.result_lengths())
    np.testing.assert_array_equal(ops.convert_to_numpy(want.log_probs), got.result_scores())
    np.testing.assert_array_equal(ops.convert_to_numpy(want.attention)[:, :got.steps],
                                  got.attention())


@pytest.mark.parametrize("seed", range(8))
def test_beam_rows_match_the_library_search(seed):
    step = toy_model(seed, ties=seed % 2 == 1)
    beam = dict(beam_width=3, num_hypotheses=2, length_penalty=[0.0, 0.6, 1.0][seed % 3])
    want = library_search(step, rows=2, max_length=7, beam=beam)
    got = stepped_search(BeamRows(7, START, END, PAD, rows=2, **beam), step, 2, 3)
    ids = ops.convert_to_numpy(want.ids).reshape(4, -1)[:, :got.steps]
    np.testing.assert_array_equal(ids, got.ids())
    np.testing.assert_array_equal(ops.convert_to_numpy(want.lengths).reshape(-1),
                                  got.result_lengths())
    # TensorFlow's vectorised float32 pow (the length penalty) may differ
    # from libm's in the last bit.
    np.testing.assert_allclose(ops.convert_to_numpy(want.scores).reshape(-1),
                               got.result_scores(), rtol=3e-7, atol=0)
    attention = ops.convert_to_numpy(want.attention).reshape(4, -1, S)[:, :got.steps]
    np.testing.assert_array_equal(attention, got.attention())


def test_top_k_orders_ties_by_index_as_tensorflow_does():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (50, 12)).astype("float32")  # many ties
    want = tf.math.top_k(scores, 5).indices.numpy()
    np.testing.assert_array_equal(top_k_indices(scores, 5), want)
