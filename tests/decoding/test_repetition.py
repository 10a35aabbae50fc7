"""The n-gram repetition guard against a brute-force reference: greedy
decoding that bans, at each step, every token completing an n-gram the
output already holds (computed on Python lists), on random tables whose
favourite tokens loop."""

import numpy as np
import pytest
from keras import ops

from keras_attention.decoding import beam_search, greedy_search, sampling_search
from keras_attention.decoding.repetition import block_repeated_ngrams, initial_guard_state

VOCAB, END, START, MAX_LENGTH = 7, 1, 2, 9


def random_table(seed, batch):
    """log-probs `[B, MAX_LENGTH, V, V]` by (row, step, previous token),
    with a strong pull towards tokens 3 and 4 so outputs loop."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, MAX_LENGTH, VOCAB, VOCAB))
    logits[..., 3] += 2.5
    logits[..., 4] += 2.0
    logits[..., END] -= 1.0
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def step_fn_of(table):
    flat = ops.convert_to_tensor(table.astype("float32").reshape(-1, VOCAB))

    def step_fn(tokens, state, constants):
        row, step = state
        index = (row * MAX_LENGTH + ops.minimum(step, MAX_LENGTH - 1)) * VOCAB + tokens
        logits = ops.take(flat, index, axis=0)  # table[row, step, token] --> [B, V]
        return logits, (row, step + 1), None

    return step_fn


def completes_repeat(output, token, n):
    candidate = output + [token]
    if len(candidate) < n:
        return False
    last = tuple(candidate[-n:])
    earlier = [tuple(candidate[i:i + n]) for i in range(len(candidate) - n)]
    return last in earlier


def greedy_reference(table, row, n):
    output, previous = [], START
    for step in range(MAX_LENGTH):
        log_probs = table[row, step, previous].copy()
        for token in range(VOCAB):
            if completes_repeat(output, token, n):
                log_probs[token] = -np.inf
        token = int(np.argmax(log_probs))
        output.append(token)
        if token == END:
            break
        previous = token
    return output


def guarded_search(search, table, n, **options):
    batch = table.shape[0]
    state = (ops.arange(batch, dtype="int32"), ops.zeros((batch,), "int32"))
    return search(block_repeated_ngrams(step_fn_of(table), n, MAX_LENGTH),
                  initial_guard_state(state, batch, MAX_LENGTH),
                  np.full((batch,), START, "int32"), END, MAX_LENGTH, constants=(), **options)


def outputs_of(result):
    ids = ops.convert_to_numpy(result.ids)
    lengths = ops.convert_to_numpy(result.lengths)
    return ids, lengths


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_the_brute_force_reference(n, seed):
    table = random_table(seed, batch=5)
    ids, lengths = outputs_of(guarded_search(greedy_search, table, n))
    for row in range(5):
        expected = greedy_reference(table, row, n)
        emitted = ids[row, :len(expected)].tolist()
        assert emitted == expected, (row, emitted, expected)
        # lengths count the words before the end token
        assert lengths[row] == len(expected) - (expected[-1] == END)


def test_without_the_guard_these_tables_loop():
    """The reference is not vacuous: unguarded greedy repeats n-grams here."""
    table = random_table(0, batch=5)
    state = (ops.arange(5, dtype="int32"), ops.zeros((5,), "int32"))
    ids = ops.convert_to_numpy(greedy_search(step_fn_of(table), state,
                                             np.full((5,), START, "int32"), END, MAX_LENGTH,
                                             constants=()).ids)
    assert any(len(set(map(tuple, [r[i:i + 2] for i in range(len(r) - 1)]))) < len(r) - 1
               for r in ids.tolist())


def no_repeated_ngram(tokens, n):
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) == len(set(grams))


@pytest.mark.parametrize("n", [2, 3])
def test_every_beam_hypothesis_and_sample_is_free_of_repeats(n):
    table = random_table(3, batch=4)
    result = guarded_search(beam_search, table, n, beam_width=3, num_hypotheses=3)
    ids, lengths = outputs_of(result)  # [B, N, T], [B, N]
    for row in range(4):
        for hypothesis in range(3):
            words = ids[row, hypothesis, :lengths[row, hypothesis]].tolist()
            assert no_repeated_ngram(words, n), words
    sampled = guarded_search(sampling_search, table, n, seed=5)
    ids, lengths = outputs_of(sampled)
    for row in range(4):
        assert no_repeated_ngram(ids[row, :lengths[row]].tolist(), n)


def test_beam_of_width_one_equals_guarded_greedy():
    table = random_table(4, batch=3)
    greedy_ids, _ = outputs_of(guarded_search(greedy_search, table, 2))
    beam_ids, _ = outputs_of(guarded_search(beam_search, table, 2, beam_width=1,
                                            length_penalty=0.0))
    np.testing.assert_array_equal(beam_ids[:, 0], greedy_ids)


def test_ngram_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        block_repeated_ngrams(lambda *a: a, 0, 5)
