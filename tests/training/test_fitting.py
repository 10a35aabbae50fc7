"""The shared training pieces: loss and accuracy against numpy, the schedule."""

import numpy as np
import pytest

from training.core import fitting, losses


def numpy_loss(labels, logits, smoothing):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    vocab = logits.shape[-1]
    targets = np.eye(vocab)[labels] * (1 - smoothing) + smoothing / vocab
    token_losses = -(targets * log_probs).sum(-1)
    mask = labels != 0
    return (token_losses * mask).sum() / mask.sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_masked_sequence_loss_equals_numpy(smoothing):
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 7, size=(3, 5))
    labels[0, 3:] = 0
    labels[2, 1:] = 0
    logits = rng.normal(size=(3, 5, 7)).astype("float32") * 3
    loss = losses.MaskedSequenceLoss(smoothing)(labels, logits)
    np.testing.assert_allclose(float(loss), numpy_loss(labels, logits, smoothing), rtol=1e-5)


def test_padding_positions_do_not_change_the_loss():
    rng = np.random.default_rng(1)
    labels = np.array([[3, 4, 0, 0]])
    logits = rng.normal(size=(1, 4, 6)).astype("float32")
    changed = logits.copy()
    changed[0, 2:] += 100.0
    loss = losses.MaskedSequenceLoss(0.1)
    assert float(loss(labels, logits)) == pytest.approx(float(loss(labels, changed)), rel=1e-6)


def test_masked_token_accuracy_counts_real_tokens_only():
    labels = np.array([[1, 2, 0], [3, 0, 0]])
    logits = np.zeros((2, 3, 4), "float32")
    logits[0, 0, 1] = logits[0, 1, 3] = logits[1, 0, 3] = 1.0  # right, wrong, right
    logits[0, 2, 0] = logits[1, 1, 0] = 5.0  # padding "predicted" right: ignored
    assert float(losses.masked_token_accuracy(labels, logits)) == pytest.approx(2 / 3)


def numpy_sampled_loss(features, labels, kernel, bias, ids, smoothing):
    """Token by token: the true word's and the candidates' logits, each less
    log(K Q(word)), candidates equal to the true word left out."""
    vocab, k = kernel.shape[1], len(ids)

    def log_expected(word):
        return np.log(k * np.log((word + 2) / (word + 1)) / np.log(vocab + 1))

    total, count = 0.0, 0
    for b, t in np.ndindex(labels.shape):
        label = labels[b, t]
        if label == 0:
            continue
        words = [label] + [w for w in ids if w != label]
        logits = np.array([features[b, t] @ kernel[:, w] + bias[w] - log_expected(w)
                           for w in words], np.float64)
        log_probs = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        total += -(1 - smoothing) * log_probs[0] - smoothing * log_probs.mean()
        count += 1
    return total / count


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_sampled_softmax_loss_equals_numpy(smoothing):
    rng = np.random.default_rng(2)
    vocab, depth = 40, 6
    labels = rng.integers(1, vocab, size=(2, 4))
    labels[1, 2:] = 0
    features = rng.normal(size=(2, 4, depth)).astype("float32")
    kernel = rng.normal(size=(depth, vocab)).astype("float32")
    bias = rng.normal(size=vocab).astype("float32")
    ids = np.array([1, 5, labels[0, 0], 33, 5, 17], "int32")  # a repeat and a true word
    candidates = (ids, losses.log_expected_count(ids, len(ids), vocab))
    loss = losses.sampled_softmax_loss(features, labels, kernel, bias, candidates, smoothing)
    np.testing.assert_allclose(
        float(loss), numpy_sampled_loss(features, labels, kernel, bias, ids, smoothing),
        rtol=1e-5)


def test_log_uniform_candidates_follow_zipf():
    import keras

    vocab, draws = 50, 20000
    ids, log_expected = losses.log_uniform_candidates(draws, vocab,
                                                      keras.random.SeedGenerator(3))
    ids, log_expected = np.asarray(ids), np.asarray(log_expected)
    assert ids.min() >= 0 and ids.max() < vocab
    words = np.arange(vocab)
    expected = draws * np.log((words + 2) / (words + 1)) / np.log(vocab + 1)
    counts = np.bincount(ids, minlength=vocab)
    # Binomial spread: 5 standard deviations on every word.
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 1), (counts, expected)
    np.testing.assert_allclose(log_expected, np.log(expected[ids]), rtol=1e-5)


def test_schedule_warms_up_then_decays_to_a_tenth():
    schedule = fitting.learning_rate_schedule(1e-3, total_steps=1000, warmup_steps=100)
    values = [float(schedule(step)) for step in (0, 50, 100, 550, 1000)]
    assert values[0] == pytest.approx(1e-5, rel=1e-3)
    assert values[1] < values[2] == pytest.approx(1e-3, rel=1e-3)
    assert values[2] > values[3] > values[4]
    assert values[4] == pytest.approx(1e-4, rel=1e-2)


@pytest.mark.parametrize("decay_steps, tenth_at", [(0, 1000), (400, 400)])
def test_decay_steps_ends_the_decay_early_then_holds_a_tenth(decay_steps, tenth_at,
                                                             monkeypatch):
    import math
    from types import SimpleNamespace

    schedules = []
    build = fitting.learning_rate_schedule
    monkeypatch.setattr(fitting, "learning_rate_schedule",
                        lambda *args: schedules.append(build(*args)) or schedules[-1])
    config = SimpleNamespace(learning_rate=1e-3, warmup_steps=100, clipnorm=0.0,
                             decay_steps=decay_steps)
    fitting.default_optimizer(config, total_steps=1000)
    schedule, = schedules
    # Cosine from the end of the warm-up (step 100) to `tenth_at`, then 10%.
    middle = (100 + tenth_at) // 2
    want_middle = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert float(schedule(middle)) == pytest.approx(want_middle, rel=1e-3)
    for step in (tenth_at, tenth_at + 1, 1000):
        assert float(schedule(step)) == pytest.approx(1e-4, rel=1e-3)


def test_fit_traces_the_train_step_once_and_keeps_the_loss(tmp_path, monkeypatch):
    """The compiled loss and metrics are built before the first trace: a
    variable created inside the traced step made tf.function trace the
    whole step a second time."""
    import dataclasses

    import keras
    from test_resume import small_config, toy_corpus
    from training.core.seq2seq import AttentionSeq2Seq
    from training.translation import train as train_lib

    traces, batches = [], []
    original = AttentionSeq2Seq.train_step

    def counted(self, data):
        traces.append(data)
        return original(self, data)

    class FirstSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(float(logs["loss"]))

    monkeypatch.setattr(AttentionSeq2Seq, "train_step", counted)
    config = dataclasses.replace(small_config(), epochs=1, steps_per_epoch=3, dropout=0.0,
                                 early_stopping_patience=0)
    result, _, _ = train_lib.train(config, str(tmp_path), toy_corpus(), log=lambda *a: None,
                                   callbacks=[FirstSteps()])
    assert result.steps == 3
    assert len(traces) == 1, f"the train step was traced {len(traces)} times"
    # The epoch's loss is the running mean the last step reported.
    assert len(batches) == 3 and all(np.isfinite(batches))
    assert result.history["loss"] == [pytest.approx(batches[-1])]
