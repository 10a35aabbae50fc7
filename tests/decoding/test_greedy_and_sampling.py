"""Greedy search and sampling against numpy references over scripted step functions."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.decoding import greedy_search, sampling_search

from stub_models import (
    END,
    MAX_LENGTH,
    PAD,
    VOCAB,
    ScriptedModel,
    evaluate_ids,
    greedy_reference,
    random_scripted_model,
    softmax,
    to_numpy,
)

ROWS = np.arange(4)
STARTS = np.array([0, 1, 2, 0])


def assert_matches_hypotheses(out, hypotheses, max_length=MAX_LENGTH, pad_token=PAD):
    """A single-path result (ids [B, T] ...) equals the reference hypotheses row by row."""
    for b, h in enumerate(hypotheses):
        np.testing.assert_array_equal(out["ids"][b], h.padded_ids(max_length, pad_token))
        assert out["lengths"][b] == h.length
        np.testing.assert_allclose(out["log_probs"][b], h.log_prob, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["scores"][b], h.log_prob, rtol=1e-5, atol=1e-5)
        if h.attention is not None:
            np.testing.assert_allclose(out["attention"][b], h.padded_attention(max_length),
                                       atol=1e-6)


# --------------------------------------------------------------------------- greedy


def test_greedy_matches_numpy_argmax_loop_with_different_finishing_times():
    # Row 0 ends at step 0, row 1 at step 2, row 2 never (cut at max_length),
    # row 3 at step 1.
    end_at = {0: 0, 1: 2, 2: None, 3: 1}
    model = random_scripted_model(seed=11, end_at=end_at)
    result = to_numpy(greedy_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                    MAX_LENGTH))
    reference = greedy_reference(model, ROWS, STARTS)
    assert [h.length for h in reference] == [0, 2, MAX_LENGTH, 1]  # the script worked
    assert result["ids"].shape == (4, MAX_LENGTH)
    assert result["attention"].shape == (4, MAX_LENGTH, model.memory_length)
    assert_matches_hypotheses(result, reference)
    # Spelled out: end token then padding; attention rows are the table rows
    # of the emitted steps and zero after the end.
    np.testing.assert_array_equal(result["ids"][0], [END, PAD, PAD, PAD])
    assert END not in result["ids"][2]
    np.testing.assert_array_equal(result["attention"][0, 1:], 0.0)
    np.testing.assert_array_equal(result["attention"][3, 2:], 0.0)
    np.testing.assert_allclose(result["attention"][0, 0], model.attention[0, 0, STARTS[0]])
    ids = result["ids"][2]
    previous = np.concatenate([[STARTS[2]], ids[:-1]])
    for step in range(MAX_LENGTH):
        np.testing.assert_allclose(result["attention"][2, step],
                                   model.attention[2, step, previous[step]])
    assert np.all(result["attention"][2].sum(-1) > 0.99)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_on_random_tables(seed):
    model = random_scripted_model(seed=seed)
    result = to_numpy(greedy_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                    MAX_LENGTH))
    assert_matches_hypotheses(result, greedy_reference(model, ROWS, STARTS))


def test_greedy_pad_token_and_no_attention():
    model = random_scripted_model(seed=5, end_at={0: 1, 1: 0, 2: None, 3: 2},
                                  with_attention=False)
    result = to_numpy(greedy_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                    MAX_LENGTH, pad_token=2))
    assert result["attention"] is None
    assert_matches_hypotheses(result, greedy_reference(model, ROWS, STARTS), pad_token=2)
    np.testing.assert_array_equal(result["ids"][1], [END, 2, 2, 2])


def test_greedy_max_length_cuts_without_end():
    model = random_scripted_model(seed=3, end_at={r: None for r in ROWS})
    result = to_numpy(greedy_search(model.step_fn, model.initial_state(ROWS), STARTS, END, 2))
    reference = greedy_reference(model, ROWS, STARTS, max_length=2)
    assert all(h.length == 2 and not h.ended for h in reference)
    assert_matches_hypotheses(result, reference, max_length=2)


def test_greedy_with_constants():
    model = random_scripted_model(seed=4)
    state = {"step": np.zeros(4, np.int32)}
    result = to_numpy(greedy_search(model.constants_step_fn(4), state, STARTS, END, MAX_LENGTH,
                                    constants=model.constants_for(ROWS)))
    assert_matches_hypotheses(result, greedy_reference(model, ROWS, STARTS))


# --------------------------------------------------------------------------- sampling


def uniform_model(num_rows=1, max_steps=8):
    log_probs = np.full((num_rows, max_steps, VOCAB, VOCAB), -np.log(VOCAB), np.float32)
    return ScriptedModel(log_probs)


def test_sampling_same_seed_same_ids_different_seed_different_ids():
    model = uniform_model()
    rows = np.zeros(16, np.int32)

    def run(seed):
        return to_numpy(sampling_search(model.step_fn, model.initial_state(rows),
                                        np.zeros(16, np.int32), END, 8, seed=seed))

    a, b, c = run(7), run(7), run(8)
    for name in ("ids", "lengths", "log_probs"):
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["ids"], c["ids"])
    # The rows of one batch are independent draws, not copies.
    assert len({tuple(r) for r in a["ids"]}) > 8
    # A seed given as a tensor draws the same as the Python int.
    d = to_numpy(sampling_search(model.step_fn, model.initial_state(rows),
                                 np.zeros(16, np.int32), END, 8, seed=tf.constant(7)))
    np.testing.assert_array_equal(a["ids"], d["ids"])


def test_sampled_sequences_are_scored_under_the_untempered_model():
    model = random_scripted_model(seed=21, logit_scale=0.7)
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 3)):
        result = to_numpy(sampling_search(
            model.step_fn, model.initial_state(ROWS), STARTS, END, MAX_LENGTH,
            temperature=temperature, top_k=top_k, seed=3,
        ))
        reference = [evaluate_ids(model, r, s, ids)
                     for r, s, ids in zip(ROWS, STARTS, result["ids"])]
        assert_matches_hypotheses(result, reference)


@pytest.mark.parametrize(
    "kwargs", [{"top_k": 1}, {"temperature": 1e-3}, {"top_k": 1, "temperature": 5.0}]
)
def test_sampling_degenerates_to_greedy(kwargs):
    model = random_scripted_model(seed=9)
    greedy = to_numpy(greedy_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                    MAX_LENGTH))
    for seed in (0, 1):
        sampled = to_numpy(sampling_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                           MAX_LENGTH, seed=seed, **kwargs))
        for name in ("ids", "lengths"):
            np.testing.assert_array_equal(sampled[name], greedy[name])
        for name in ("log_probs", "scores", "attention"):
            np.testing.assert_allclose(sampled[name], greedy[name], atol=1e-6)


FIRST_STEP_PROBS = np.array([0.1, 0.2, 0.3, 0.4])


def first_token_counts(batch, seed, **kwargs):
    log_probs = np.zeros((1, 1, VOCAB, VOCAB), np.float32)
    log_probs[0, 0, :] = np.log(FIRST_STEP_PROBS)
    model = ScriptedModel(log_probs)
    rows = np.zeros(batch, np.int32)
    result = to_numpy(sampling_search(model.step_fn, model.initial_state(rows), rows, END, 1,
                                      seed=seed, **kwargs))
    return np.bincount(result["ids"][:, 0], minlength=VOCAB)


def assert_frequencies(counts, probs, sigmas=4.5):
    n = counts.sum()
    standard_errors = np.sqrt(probs * (1 - probs) / n)
    deviation = np.abs(counts / n - probs)
    assert np.all(deviation <= sigmas * standard_errors + 1e-12), (counts / n, probs)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_sampling_frequencies_match_tempered_softmax(temperature):
    counts = first_token_counts(4000, seed=1, temperature=temperature)
    probs = softmax(np.log(FIRST_STEP_PROBS) / temperature)
    assert_frequencies(counts, probs)


def test_sampling_top_k_only_draws_the_k_best():
    counts = first_token_counts(4000, seed=2, top_k=2)
    assert counts[0] == 0 and counts[1] == 0
    assert_frequencies(counts, np.array([0.0, 0.0, 3 / 7, 4 / 7]))  # renormalized 0.3, 0.4


def test_sampling_with_constants_equals_state_rows():
    model = random_scripted_model(seed=4, logit_scale=0.5)
    plain = to_numpy(sampling_search(model.step_fn, model.initial_state(ROWS), STARTS, END,
                                     MAX_LENGTH, seed=5))
    with_constants = to_numpy(sampling_search(
        model.constants_step_fn(4), {"step": np.zeros(4, np.int32)}, STARTS, END, MAX_LENGTH,
        seed=5, constants=model.constants_for(ROWS),
    ))
    for name in plain:
        np.testing.assert_allclose(with_constants[name], plain[name], atol=1e-6)


# --------------------------------------------------------------------------- arguments


def test_bad_arguments_raise_helpful_errors():
    model = random_scripted_model(seed=0)
    state = model.initial_state(ROWS)
    for search in (greedy_search, sampling_search):
        with pytest.raises(ValueError, match="max_length"):
            search(model.step_fn, state, STARTS, END, 0)
        with pytest.raises(ValueError, match="end_token"):
            search(model.step_fn, state, STARTS, -1, MAX_LENGTH)
    for temperature in (0, 0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            sampling_search(model.step_fn, state, STARTS, END, MAX_LENGTH, temperature=temperature)
    with pytest.raises(ValueError, match="top_k"):
        sampling_search(model.step_fn, state, STARTS, END, MAX_LENGTH, top_k=0)
    # (beam search arguments: tests/decoding/test_beam_search.py)


# --------------------------------------------------------------------------- graph modes


def graph_variants(fn):
    """fn() run eagerly, in tf.function and in tf.function(jit_compile=True)."""
    return {
        "eager": to_numpy(fn()),
        "tf.function": to_numpy(tf.function(fn)()),
        "xla": to_numpy(tf.function(fn, jit_compile=True)()),
    }


def assert_results_equal(a, b, what):
    for name in ("ids", "lengths"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{what}: {name}")
    for name in ("log_probs", "scores", "attention"):
        if a[name] is None or b[name] is None:
            assert a[name] is None and b[name] is None, f"{what}: {name}"
            continue
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("method", ["greedy", "sampling"])
def test_graph_modes_agree(method):
    model = random_scripted_model(seed=13, logit_scale=0.8, end_at={1: 1})
    rows, starts = ROWS, STARTS

    def fn():
        state = model.initial_state(rows)
        if method == "greedy":
            return greedy_search(model.step_fn, state, starts, END, MAX_LENGTH)
        return sampling_search(model.step_fn, state, starts, END, MAX_LENGTH, temperature=1.5,
                               top_k=3, seed=42)

    results = graph_variants(fn)
    if method == "greedy":
        assert_matches_hypotheses(results["eager"], greedy_reference(model, rows, starts))
    for mode in ("tf.function", "xla"):
        assert_results_equal(results[mode], results["eager"], mode)


def test_sampling_graph_modes_agree_on_many_draws():
    """Same seed, same draws eagerly and under XLA, over many rows and steps."""
    model = uniform_model(max_steps=8)
    rows = np.zeros(64, np.int32)

    def fn():
        return sampling_search(model.step_fn, model.initial_state(rows), np.zeros(64, np.int32),
                               END, 8, seed=123)

    results = graph_variants(fn)
    for mode in ("tf.function", "xla"):
        assert_results_equal(results[mode], results["eager"], mode)


@pytest.mark.parametrize("method", ["greedy", "sampling"])
def test_tensor_max_length_in_tf_function(method):
    model = random_scripted_model(seed=17, logit_scale=0.8)

    def search(max_length):
        state = model.initial_state(ROWS)
        if method == "greedy":
            return greedy_search(model.step_fn, state, STARTS, END, max_length)
        return sampling_search(model.step_fn, state, STARTS, END, max_length, seed=4)

    graph = tf.function(search, input_signature=[tf.TensorSpec([], tf.int32)])
    for max_length in (MAX_LENGTH, 2):
        assert_results_equal(to_numpy(graph(tf.constant(max_length))),
                             to_numpy(search(max_length)), f"max_length={max_length}")
    assert graph.experimental_get_tracing_count() == 1
