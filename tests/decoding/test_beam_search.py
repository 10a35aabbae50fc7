"""Beam search against an exhaustive numpy search over scripted step functions."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.decoding import beam_search, greedy_search

from stub_models import (
    END,
    MAX_LENGTH,
    PAD,
    VOCAB,
    PrefixModel,
    ScriptedModel,
    count_sequences,
    enumerate_sequences,
    evaluate_ids,
    exhaustive_ranking,
    gnmt_score,
    random_scripted_model,
    to_numpy,
)

ROWS = np.arange(4)
STARTS = np.array([0, 1, 2, 0])
ALL = count_sequences()  # 121 sequences for V=4 (end included), T=4
SCORE_GAP = 2e-4  # reference scores closer than this would make the order float-dependent


def test_count_sequences_matches_enumeration():
    model = random_scripted_model(seed=0)
    sequences = enumerate_sequences(model, 0, 0)
    assert len(sequences) == ALL == 1 + 3 + 9 + 27 + 81
    assert len({h.tokens for h in sequences}) == ALL
    np.testing.assert_allclose(sum(np.exp(h.log_prob) for h in sequences), 1.0, rtol=1e-5)


def assert_hypothesis(out, b, n, hypothesis, score, max_length=MAX_LENGTH):
    """Hypothesis n of batch row b of a beam result equals the reference one."""
    np.testing.assert_array_equal(out["ids"][b, n], hypothesis.padded_ids(max_length),
                                  err_msg=f"row {b}, hypothesis {n}")
    assert out["lengths"][b, n] == hypothesis.length
    np.testing.assert_allclose(out["log_probs"][b, n], hypothesis.log_prob, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(out["scores"][b, n], score, rtol=1e-5, atol=2e-5)
    if hypothesis.attention is not None:
        np.testing.assert_allclose(out["attention"][b, n], hypothesis.padded_attention(max_length),
                                   atol=1e-6)


def assert_clear_order(ranking, count):
    scores = [score for score, _ in ranking[: count + 1]]
    gaps = -np.diff(scores)
    assert np.all(gaps > SCORE_GAP), f"near-tied reference scores {scores}: pick another seed"


def run_beam(model, rows, starts, **kwargs):
    kwargs.setdefault("end_token", END)
    kwargs.setdefault("max_length", MAX_LENGTH)
    return to_numpy(beam_search(model.step_fn, model.initial_state(rows), starts, **kwargs))


# --------------------------------------------------------------------------- exhaustive


@pytest.fixture(scope="module")
def exhaustive_model():
    return random_scripted_model(seed=2024, num_rows=4)


@pytest.mark.parametrize("coverage_penalty", [0.0, 0.5])
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 2.0])
def test_full_width_beam_equals_exhaustive_search(exhaustive_model, length_penalty,
                                                  coverage_penalty):
    """With a beam as wide as the number of sequences nothing is pruned: the
    n-best list is the exhaustive top-N, best first."""
    model, n_best = exhaustive_model, 6
    out = run_beam(model, ROWS, STARTS, beam_width=ALL, num_hypotheses=n_best,
                   length_penalty=length_penalty, coverage_penalty=coverage_penalty)
    assert out["ids"].shape == (4, n_best, MAX_LENGTH)
    assert out["attention"].shape == (4, n_best, MAX_LENGTH, model.memory_length)
    for b, (row, start) in enumerate(zip(ROWS, STARTS)):
        ranking = exhaustive_ranking(model, row, start, length_penalty, coverage_penalty)
        assert_clear_order(ranking, n_best)
        for n in range(n_best):
            score, hypothesis = ranking[n]
            assert_hypothesis(out, b, n, hypothesis, score)


def test_exhaustive_set_exercises_both_penalties(exhaustive_model):
    """The parameter grid above is informative: the penalties change winners,
    ended and cut sequences both win somewhere, and the coverage penalty
    depends on skipping never-attended (padding) positions."""
    model = exhaustive_model
    winners = {}
    for alpha in (0.0, 0.6, 2.0):
        for beta in (0.0, 0.5):
            winners[alpha, beta] = [exhaustive_ranking(model, r, s, alpha, beta)[0][1]
                                    for r, s in zip(ROWS, STARTS)]
    as_tokens = {key: [h.tokens for h in hyps] for key, hyps in winners.items()}
    assert as_tokens[0.0, 0.0] != as_tokens[2.0, 0.0]
    assert as_tokens[0.0, 0.0] != as_tokens[0.0, 0.5]
    lengths = {h.length for hyps in winners.values() for h in hyps}
    assert len(lengths) >= 3, lengths
    # Rows 1 and 3 have memory positions that are never attended.
    assert np.all(model.attention[1, ..., -1] == 0.0)
    assert np.all(model.attention[3, ..., [0, 3]] == 0.0)


def test_beam_results_are_consistent_for_narrow_beams(exhaustive_model):
    """With pruning, every returned hypothesis is still scored exactly as its
    ids say, and the list is sorted by score."""
    model = exhaustive_model
    for width, alpha, beta in ((2, 0.0, 0.0), (3, 0.6, 0.5), (5, 2.0, 0.5)):
        out = run_beam(model, ROWS, STARTS, beam_width=width, num_hypotheses=width,
                       length_penalty=alpha, coverage_penalty=beta)
        for b, (row, start) in enumerate(zip(ROWS, STARTS)):
            assert np.all(np.diff(out["scores"][b]) <= 1e-6)
            assert len({tuple(ids) for ids in out["ids"][b]}) == width
            for n in range(width):
                hypothesis = evaluate_ids(model, row, start, out["ids"][b, n])
                assert_hypothesis(out, b, n, hypothesis, gnmt_score(hypothesis, alpha, beta))


# --------------------------------------------------------------------------- special cases


@pytest.mark.parametrize("seed", [1, 9])
def test_beam_width_one_equals_greedy(seed):
    model = random_scripted_model(seed=seed, end_at={2: 1})
    state = model.initial_state(ROWS)
    greedy = to_numpy(greedy_search(model.step_fn, state, STARTS, END, MAX_LENGTH))
    beam = run_beam(model, ROWS, STARTS, beam_width=1)
    for name in ("ids", "lengths", "log_probs", "scores", "attention"):
        np.testing.assert_allclose(beam[name][:, 0], greedy[name], atol=1e-6, err_msg=name)


def length_penalty_model():
    """From the start token: P(a)=.53, P(end)=.45; after a: P(end)=.70, P(a)=.28.

    [end] has log P = -0.80 and [a, end] -0.99: the short one wins on plain
    log-probability, but with alpha=2 lp([a, end]) = (7/6)^2 and the long one
    scores -0.73 > -0.80.
    """
    a = 0
    probs = np.full((1, MAX_LENGTH, VOCAB, VOCAB), 0.25)
    probs[0, 0, a] = [0.53, 0.01, 0.01, 0.45]  # first step (start token a)
    probs[0, 1:, a] = [0.28, 0.01, 0.01, 0.70]
    assert np.allclose(probs.sum(-1), 1.0)
    return ScriptedModel(np.log(probs))


@pytest.mark.parametrize("beam_width", [2, 4, ALL])
def test_length_penalty_changes_the_winner(beam_width):
    model = length_penalty_model()
    short = run_beam(model, [0], [0], beam_width=beam_width, length_penalty=0.0)
    long = run_beam(model, [0], [0], beam_width=beam_width, length_penalty=2.0)
    np.testing.assert_array_equal(short["ids"][0, 0], [END, PAD, PAD, PAD])
    assert short["lengths"][0, 0] == 0
    np.testing.assert_allclose(short["scores"][0, 0], np.log(0.45), rtol=1e-5)
    np.testing.assert_array_equal(long["ids"][0, 0], [0, END, PAD, PAD])
    assert long["lengths"][0, 0] == 1
    np.testing.assert_allclose(long["log_probs"][0, 0], np.log(0.53 * 0.70), rtol=1e-5)
    np.testing.assert_allclose(long["scores"][0, 0], np.log(0.53 * 0.70) / (7 / 6) ** 2, rtol=1e-5)
    # And the exhaustive reference agrees.
    for alpha, out in ((0.0, short), (2.0, long)):
        assert exhaustive_ranking(model, 0, 0, alpha, 0.0)[0][1].padded_ids(MAX_LENGTH).tolist() \
            == out["ids"][0, 0].tolist()


def test_end_token_handling_and_max_length():
    # Row 0: the end token is certain at step 0; row 1: the end token is never
    # likely (the best hypotheses run to max_length); rows 2, 3: end at step 2.
    model = random_scripted_model(seed=31, end_at={0: 0, 1: None, 2: 2, 3: 2})
    model.log_probs[0, 0, :, :] = np.log([1e-6, 1e-6, 1e-6, 1 - 3e-6])
    model = ScriptedModel(model.log_probs, model.attention)
    out = run_beam(model, ROWS, STARTS, beam_width=ALL, num_hypotheses=4, length_penalty=0.6)
    np.testing.assert_array_equal(out["ids"][0, 0], [END, PAD, PAD, PAD])
    assert out["lengths"][0, 0] == 0
    np.testing.assert_array_equal(out["attention"][0, 0, 1:], 0.0)
    assert np.all(out["lengths"][1] == MAX_LENGTH)
    assert not np.any(out["ids"][1] == END)
    assert np.all(out["attention"][1].sum(-1) > 0.99)  # attention of every step
    assert out["lengths"][2, 0] == 2 and out["ids"][2, 0, 2] == END
    for b, (row, start) in enumerate(zip(ROWS, STARTS)):
        ranking = exhaustive_ranking(model, row, start, 0.6, 0.0)
        for n in range(2):
            assert_hypothesis(out, b, n, ranking[n][1], ranking[n][0])
    # A shorter max_length cuts every hypothesis.
    out = run_beam(model, ROWS, STARTS, beam_width=8, num_hypotheses=3, max_length=2)
    assert out["ids"].shape == (4, 3, 2)
    for b, (row, start) in enumerate(zip(ROWS, STARTS)):
        ranking = exhaustive_ranking(model, row, start, 0.0, 0.0, max_length=2)
        for n in range(3):
            assert_hypothesis(out, b, n, ranking[n][1], ranking[n][0], max_length=2)


def test_pad_token_is_written_after_the_end():
    model = random_scripted_model(seed=31, end_at={0: 0, 1: 1, 2: 2, 3: None})
    out = run_beam(model, ROWS, STARTS, beam_width=3, pad_token=2)
    np.testing.assert_array_equal(out["ids"][0, 0], [END, 2, 2, 2])
    np.testing.assert_array_equal(out["ids"][1, 0, 2:], [2, 2])
    assert out["ids"][1, 0, 1] == END


def test_constants_are_tiled_by_the_search(exhaustive_model):
    model, width = exhaustive_model, ALL
    out = to_numpy(beam_search(
        model.constants_step_fn(expected_rows=len(ROWS) * width),
        {"step": np.zeros(len(ROWS), np.int32)}, STARTS, END, MAX_LENGTH, beam_width=width,
        num_hypotheses=3, length_penalty=0.6, coverage_penalty=0.5,
        constants=model.constants_for(ROWS),
    ))
    for b, (row, start) in enumerate(zip(ROWS, STARTS)):
        ranking = exhaustive_ranking(model, row, start, 0.6, 0.5)
        assert_clear_order(ranking, 3)
        for n in range(3):
            assert_hypothesis(out, b, n, ranking[n][1], ranking[n][0])
    # The check in the step function does fire on untiled constants.
    with pytest.raises(AssertionError, match="rows"):
        beam_search(model.constants_step_fn(expected_rows=len(ROWS)),
                    {"step": np.zeros(len(ROWS), np.int32)}, STARTS, END, MAX_LENGTH,
                    beam_width=3, constants=model.constants_for(ROWS))


def assert_history_matches_prefixes(out):
    """PrefixModel's "attention" at step t encodes its state: history[:t] + 1
    and t + 1. For every hypothesis and emitted step it must be the emitted
    prefix ids[:t]."""
    batch, n_best, max_length = out["ids"].shape
    for b in range(batch):
        for n in range(n_best):
            ids, length = out["ids"][b, n], out["lengths"][b, n]
            emitted = min(length + 1, max_length)
            for t in range(emitted):
                row = out["attention"][b, n, t]
                np.testing.assert_array_equal(row[:t] - 1, ids[:t], err_msg=f"{b} {n} {t}")
                np.testing.assert_array_equal(row[t:max_length], 0.0)
                assert row[-1] == t + 1
            np.testing.assert_array_equal(out["attention"][b, n, emitted:], 0.0)


def test_nested_state_is_reordered_with_the_beams():
    """A dict state with a tuple inside holding the token history: the
    next-token distribution depends on the whole prefix read from the state,
    so mis-reordered state would change the scores, and the history seen at
    every step is checked against the hypothesis' prefix."""
    model = PrefixModel(seed=5, num_rows=3)
    rows, starts = np.arange(3), np.array([0, 1, 2])
    out = run_beam(model, rows, starts, beam_width=ALL, num_hypotheses=5, length_penalty=0.6)
    assert_history_matches_prefixes(out)
    for b, (row, start) in enumerate(zip(rows, starts)):
        ranking = exhaustive_ranking(model, row, start, 0.6, 0.0)
        assert_clear_order(ranking, 5)
        for n in range(5):
            assert_hypothesis(out, b, n, ranking[n][1], ranking[n][0])
    # Narrow beams reorder (and drop) hypotheses at every step.
    out = run_beam(model, rows, starts, beam_width=3, num_hypotheses=3)
    assert_history_matches_prefixes(out)
    for b, (row, start) in enumerate(zip(rows, starts)):
        for n in range(3):
            hypothesis = evaluate_ids(model, row, start, out["ids"][b, n])
            assert_hypothesis(out, b, n, hypothesis, hypothesis.log_prob)


# --------------------------------------------------------------------------- graph modes


def test_graph_modes_agree(exhaustive_model):
    model = exhaustive_model

    def fn():
        return beam_search(model.step_fn, model.initial_state(ROWS), STARTS, END, MAX_LENGTH,
                           beam_width=5, num_hypotheses=3, length_penalty=0.6,
                           coverage_penalty=0.5)

    eager = to_numpy(fn())
    for mode, graph in (("tf.function", tf.function(fn)),
                        ("xla", tf.function(fn, jit_compile=True))):
        got = to_numpy(graph())
        for name in ("ids", "lengths"):
            np.testing.assert_array_equal(got[name], eager[name], err_msg=f"{mode}: {name}")
        for name in ("log_probs", "scores", "attention"):
            np.testing.assert_allclose(got[name], eager[name], atol=1e-5, err_msg=f"{mode}: {name}")
    for b, (row, start) in enumerate(zip(ROWS, STARTS)):
        for n in range(3):
            hypothesis = evaluate_ids(model, row, start, eager["ids"][b, n])
            assert_hypothesis(eager, b, n, hypothesis, gnmt_score(hypothesis, 0.6, 0.5))


def test_nested_state_under_xla():
    model = PrefixModel(seed=5, num_rows=3)
    rows, starts = np.arange(3), np.array([0, 1, 2])

    def fn():
        return beam_search(model.step_fn, model.initial_state(rows), starts, END, MAX_LENGTH,
                           beam_width=3, num_hypotheses=3)

    eager, xla = to_numpy(fn()), to_numpy(tf.function(fn, jit_compile=True)())
    for name in eager:
        np.testing.assert_allclose(xla[name], eager[name], atol=1e-5, err_msg=name)
    assert_history_matches_prefixes(xla)


def test_tensor_max_length_in_tf_function(exhaustive_model):
    model = exhaustive_model

    def search(max_length):
        return beam_search(model.step_fn, model.initial_state(ROWS), STARTS, END, max_length,
                           beam_width=4, num_hypotheses=2, length_penalty=0.6,
                           coverage_penalty=0.5)

    graph = tf.function(search, input_signature=[tf.TensorSpec([], tf.int32)])
    for max_length in (MAX_LENGTH, 2):
        got, want = to_numpy(graph(tf.constant(max_length))), to_numpy(search(max_length))
        assert got["ids"].shape == (4, 2, max_length)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-5, err_msg=name)
    assert graph.experimental_get_tracing_count() == 1


# --------------------------------------------------------------------------- arguments


def test_bad_arguments_raise_helpful_errors():
    model = random_scripted_model(seed=0)
    no_attention = random_scripted_model(seed=0, with_attention=False)

    def call(m=model, **kwargs):
        args = {"end_token": END, "max_length": MAX_LENGTH, "beam_width": 2, **kwargs}
        return beam_search(m.step_fn, m.initial_state(ROWS), STARTS, **args)

    with pytest.raises(ValueError, match="beam_width"):
        call(beam_width=0)
    with pytest.raises(ValueError, match="beam_width"):
        call(beam_width=2.0)
    with pytest.raises(ValueError, match="num_hypotheses"):
        call(beam_width=2, num_hypotheses=3)
    with pytest.raises(ValueError, match="num_hypotheses"):
        call(num_hypotheses=0)
    with pytest.raises(ValueError, match="max_length"):
        call(max_length=0)
    with pytest.raises(ValueError, match="length_penalty"):
        call(length_penalty=-0.5)
    with pytest.raises(ValueError, match="coverage_penalty"):
        call(coverage_penalty=-0.5)
    with pytest.raises(ValueError, match="coverage_penalty.*attention"):
        call(m=no_attention, coverage_penalty=0.5)
    # Without the coverage penalty a step function without attention is fine.
    out = to_numpy(call(m=no_attention))
    assert out["attention"] is None


# --------------------------------------------------------------------------- layout helpers


def test_beam_layout_helpers():
    """Row b*K + k of the flat layout is beam k of input b, in every helper."""
    from keras_attention.decoding.beam_search import (
        flatten_beams, gather_beams, parent_rows, tile_beams, unflatten_beams,
    )

    batch, width = 2, 3
    x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 2, 2)  # [B, 2, 2]
    tiled = tile_beams(x, width)  # --> [B*K, 2, 2]
    np.testing.assert_array_equal(unflatten_beams(tiled, batch, width),
                                  np.repeat(x[:, None], width, axis=1))
    beams = np.arange(batch * width * 5).reshape(batch, width, 5)  # [B, K, 5]
    np.testing.assert_array_equal(unflatten_beams(flatten_beams(beams), batch, width), beams)
    parents = np.array([[2, 2, 0], [1, 0, 1]], np.int32)
    rows = parent_rows(parents, width)
    np.testing.assert_array_equal(rows, [2, 2, 0, 4, 3, 4])
    state = {"a": flatten_beams(beams), "b": (np.arange(batch * width),)}
    gathered = gather_beams(state, rows)
    np.testing.assert_array_equal(
        unflatten_beams(gathered["a"], batch, width),
        np.take_along_axis(beams, parents[..., None], axis=1),
    )
    np.testing.assert_array_equal(gathered["b"][0], [2, 2, 0, 4, 3, 4])
