"""AttentionSeq2Seq end to end: it learns to reverse digit sequences, decodes
with greedy and beam search, compiles with XLA, and its decode functions
survive a SavedModel round trip into a Python process that cannot import
this project.

Task: a source of 3 to 6 digits (ids 3..12, 0-padded to 6) maps to the same
digits reversed, then the end token. Ids: 0 pad, 1 start, 2 end.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from export_check import IMPORT_BLOCKER

from training.core.seq2seq import AttentionSeq2Seq, RecurrentTextEncoder, make_decoder_cell

PAD, START, END = 0, 1, 2
VOCAB = 13  # 0, 1, 2 and the digits 3..12
MIN_LEN, MAX_LEN = 3, 6
MAX_DECODE = MAX_LEN + 1  # the digits and the end token
N_TRAIN, N_TEST = 3000, 200
EPOCHS = 4
GREEDY_ACCURACY = 0.9  # exact-match sequence accuracy on held-out sources


# ----------------------------------------------------------------------- data
def random_sources(rng, n):
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n)
    source = np.zeros((n, MAX_LEN), "int32")
    for i, k in enumerate(lengths):
        source[i, :k] = rng.integers(3, VOCAB, size=k)
    return source


def reversal_targets(source):
    """`target_in` (start + reversed) and `target_out` (reversed + end), 0-padded."""
    n = len(source)
    target_in = np.zeros((n, MAX_DECODE), "int32")
    target_out = np.zeros((n, MAX_DECODE), "int32")
    for i, row in enumerate(source):
        digits = row[row != PAD][::-1]
        k = len(digits)
        target_in[i, 0] = START
        target_in[i, 1:k + 1] = digits
        target_out[i, :k] = digits
        target_out[i, k] = END
    return target_in, target_out


def make_dataset():
    test_source = random_sources(np.random.default_rng(1000), N_TEST)
    held_out = {tuple(row) for row in test_source}
    train_source = random_sources(np.random.default_rng(1), N_TRAIN + 1000)
    train_source = np.array([row for row in train_source if tuple(row) not in held_out][:N_TRAIN])
    assert len(train_source) == N_TRAIN
    return train_source, test_source


def exact_match(ids, target_out):
    """Rows whose ids equal the target (end token and padding included)."""
    return np.all(np.asarray(ids) == target_out, axis=-1)


def build_model(units=32, fast_path="auto", timing="luong", input_feeding=False):
    encoder = RecurrentTextEncoder(VOCAB, 16, units // 2)  # memory: 2 x 16 = 32
    cell = make_decoder_cell(units, "general", 16, timing=timing, input_feeding=input_feeding)
    return AttentionSeq2Seq(encoder, VOCAB, 16, cell, fast_path=fast_path)


def teacher_forced_log_probs(model, source, ids, lengths):
    """log P(ids) under the whole-sequence (teacher forcing) path.

    Sums the log-probabilities of the emitted tokens: the `lengths` tokens
    and the end token when there is room for it.
    """
    ids = np.asarray(ids)
    lengths = np.asarray(lengths)
    target_in = np.concatenate([np.full((len(ids), 1), START, "int32"), ids[:, :-1]], axis=1)
    steps = np.arange(ids.shape[1])[None, :]
    emitted = steps <= np.minimum(lengths, ids.shape[1] - 1)[:, None]
    target_in = np.where(steps <= lengths[:, None], target_in, PAD)  # decoder mask
    logits = model({"source": source, "target_in": target_in})
    log_probs = np.asarray(ops.log_softmax(logits, axis=-1))
    chosen = np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]
    return np.sum(np.where(emitted, chosen, 0.0), axis=1), log_probs


# ------------------------------------------------------ untrained model (fast)
@pytest.fixture(scope="module")
def untrained():
    keras.utils.set_random_seed(7)
    model = build_model()
    source = random_sources(np.random.default_rng(5), 8)
    model({"source": source, "target_in": reversal_targets(source)[0]})  # build
    # Like a trained model, never emit pad or start: teacher forcing reads an
    # emitted 0 as padding (state carried over), decoding as a token. Larger
    # logits than at initialization, so that decisions are clear-cut.
    projection = model.output_projection
    projection.kernel.assign(10.0 * np.asarray(projection.kernel))
    bias = np.zeros(VOCAB, "float32")
    bias[[PAD, START]] = -30.0
    projection.bias.assign(bias)
    return model, source


def test_greedy_decode_matches_teacher_forcing(untrained):
    """The step function (decoding) and the fast whole-sequence path agree:
    each greedy token is the arg-max of the teacher-forced logits given the
    previous greedy tokens, and the log-probabilities add up."""
    model, source = untrained
    assert model.decoder.uses_fast_path
    result = model.generate(source, START, END, MAX_DECODE, method="greedy")
    ids, lengths = np.asarray(result.ids), np.asarray(result.lengths)
    assert not np.any(ids[np.arange(MAX_DECODE)[None, :] < lengths[:, None]] < 3)
    assert lengths.min() < MAX_DECODE and lengths.max() == MAX_DECODE  # ended and not
    expected, log_probs = teacher_forced_log_probs(model, source, ids, lengths)
    np.testing.assert_allclose(np.asarray(result.log_probs), expected, atol=1e-4)
    for row in range(len(ids)):
        n = min(lengths[row] + 1, MAX_DECODE)
        np.testing.assert_array_equal(ids[row, :n], np.argmax(log_probs[row, :n], axis=-1))


def test_decoding_projects_the_memory_once(untrained, monkeypatch):
    model, source = untrained
    attention = model.decoder_cell.attention
    calls, project_keys = [], attention.project_keys
    monkeypatch.setattr(attention, "project_keys",
                        lambda key: calls.append(1) or project_keys(key))
    result = model.generate(source, START, END, MAX_DECODE, method="greedy")  # eager loop
    assert len(calls) == 1, f"{len(calls)} projections for {result.ids.shape[1]} steps"
    model.generate(source, START, END, MAX_DECODE, method="beam", beam_width=3)
    assert len(calls) == 2


def test_step_under_xla_equals_eager(untrained):
    model, source = untrained
    state, constants = model.decoding_inputs(source)
    tokens = tf.constant([START, 3, 7, 12, 2, 5, 9, 10], tf.int32)
    eager = model.step(tokens, state, constants)
    compiled = tf.function(model.step, jit_compile=True)(tokens, state, constants)
    for a, b in zip(keras.tree.flatten(compiled), keras.tree.flatten(eager)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


# ------------------------------------------------------------- trained model
@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    train_source, test_source = make_dataset()
    target_in, target_out = reversal_targets(train_source)
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD),
    )
    history = model.fit({"source": train_source, "target_in": target_in}, target_out,
                        batch_size=64, epochs=EPOCHS, verbose=0, shuffle=True)
    greedy = model.generate(test_source, START, END, MAX_DECODE, method="greedy")
    beam = model.generate(test_source, START, END, MAX_DECODE, method="beam", beam_width=4)
    return {"model": model, "test_source": test_source, "greedy": greedy, "beam": beam,
            "history": history.history,
            "test_target": reversal_targets(test_source)[1]}


@pytest.mark.slow
def test_learns_to_reverse_with_greedy_decoding(trained):
    losses = trained["history"]["loss"]
    assert losses[-1] < losses[0] / 10
    accuracy = exact_match(trained["greedy"].ids, trained["test_target"]).mean()
    print(f"greedy exact match {accuracy:.3f}")
    assert accuracy >= GREEDY_ACCURACY
    # Lengths count the digits, the end token excluded.
    correct = exact_match(trained["greedy"].ids, trained["test_target"])
    digits = np.sum(trained["test_source"] != PAD, axis=1)
    np.testing.assert_array_equal(np.asarray(trained["greedy"].lengths)[correct], digits[correct])


@pytest.mark.slow
def test_beam_search_at_least_as_good_as_greedy(trained):
    greedy, beam = trained["greedy"], trained["beam"]
    assert tuple(beam.ids.shape) == (N_TEST, 1, MAX_DECODE)
    greedy_accuracy = exact_match(greedy.ids, trained["test_target"]).mean()
    beam_accuracy = exact_match(np.asarray(beam.ids)[:, 0], trained["test_target"]).mean()
    print(f"greedy {greedy_accuracy:.3f}, beam 4 {beam_accuracy:.3f}")
    assert beam_accuracy >= greedy_accuracy
    # Beam search finds sequences at least as likely as greedy's, on average,
    # and its log-probabilities are those of the teacher-forced model.
    beam_log_probs = np.asarray(beam.log_probs)[:, 0]
    assert beam_log_probs.mean() >= np.asarray(greedy.log_probs).mean() - 1e-4
    expected, _ = teacher_forced_log_probs(trained["model"], trained["test_source"],
                                           np.asarray(beam.ids)[:, 0],
                                           np.asarray(beam.lengths)[:, 0])
    np.testing.assert_allclose(beam_log_probs, expected, atol=1e-3)


@pytest.mark.slow
def test_attention_of_reversal_is_anti_diagonal(trained):
    """Emitting the i-th reversed digit, the model attends most to source
    position k-1-i: an independent check that the attention is meaningful."""
    result = trained["greedy"]
    attention = np.asarray(result.attention)  # [B, T, S]
    correct = exact_match(result.ids, trained["test_target"])
    hits = total = 0
    for row in np.flatnonzero(correct):
        k = int(np.sum(trained["test_source"][row] != PAD))
        np.testing.assert_allclose(attention[row, :k + 1].sum(-1), 1.0, atol=1e-5)
        assert np.all(attention[row, :, k:] < 1e-6)  # padding gets nothing
        hits += np.sum(np.argmax(attention[row, :k], axis=-1) == np.arange(k)[::-1])
        total += k
    assert hits / total >= 0.8


@pytest.mark.slow
def test_greedy_under_xla_equals_eager(trained):
    model, source = trained["model"], trained["test_source"][:32]
    eager = model.generate(source, START, END, MAX_DECODE, method="greedy")

    @tf.function(jit_compile=True)
    def compiled(source):
        return model.generate(source, START, END, MAX_DECODE, method="greedy")

    xla = compiled(tf.constant(source))
    np.testing.assert_array_equal(np.asarray(xla.ids), np.asarray(eager.ids))
    np.testing.assert_array_equal(np.asarray(xla.lengths), np.asarray(eager.lengths))
    np.testing.assert_allclose(np.asarray(xla.log_probs), np.asarray(eager.log_probs), atol=1e-4)
    np.testing.assert_allclose(np.asarray(xla.attention), np.asarray(eager.attention), atol=1e-4)
    state, constants = model.decoding_inputs(source)
    tokens = tf.constant(np.asarray(eager.ids)[:, 0])
    step_eager = model.step(tokens, state, constants)
    step_xla = tf.function(model.step, jit_compile=True)(tokens, state, constants)
    for a, b in zip(keras.tree.flatten(step_xla), keras.tree.flatten(step_eager)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


class DecodeModule(tf.Module):
    """The decode functions of a trained model: int32 source `[None, None]`."""

    def __init__(self, model):
        super().__init__(name="reverser")
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source")])
    def greedy(self, source):
        r = self.model.generate(source, START, END, MAX_DECODE, method="greedy")
        return {"ids": r.ids, "lengths": r.lengths, "scores": r.scores, "attention": r.attention}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source")])
    def beam(self, source):
        r = self.model.generate(source, START, END, MAX_DECODE, method="beam", beam_width=4,
                                num_hypotheses=2)
        return {"ids": r.ids, "lengths": r.lengths, "scores": r.scores, "attention": r.attention}


# Runs in a fresh interpreter (-I: no PYTHONPATH, no cwd on sys.path) where
# importing this project fails, so the SavedModel must stand on its own.
_CHILD = IMPORT_BLOCKER + textwrap.dedent("""
    blocked = not project_importable()

    import numpy as np
    import tensorflow as tf

    export_dir, source_files = sys.argv[1], sys.argv[2:]
    loaded = tf.saved_model.load(export_dir)
    out = {"blocked": blocked, "batches": []}
    for source_file in source_files:
        source = tf.constant(np.load(source_file), tf.int32)
        batch = {}
        for name in ("greedy", "beam"):
            result = loaded.signatures[name](source=source)
            batch[name] = {key: value.numpy().tolist() for key, value in result.items()}
        batch["direct_greedy_ids"] = loaded.greedy(source)["ids"].numpy().tolist()
        out["batches"].append(batch)
    out["leaked"] = sorted(m for m in sys.modules
                           if m.split(".")[0] in ("keras_attention", "training"))
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_decode_savedmodel_in_a_fresh_process(trained, tmp_path):
    model = trained["model"]
    module = DecodeModule(model)
    export_dir = str(tmp_path / "reverser")
    tf.saved_model.save(module, export_dir, signatures={
        "greedy": module.greedy.get_concrete_function(),
        "beam": module.beam.get_concrete_function(),
    })
    source = trained["test_source"][:40]
    # A batch whose longest source is shorter than the training width.
    short = np.ascontiguousarray(source[:8, :4])
    expected = {}
    for name, batch in (("full", source), ("short", short)):
        greedy = model.generate(batch, START, END, MAX_DECODE, method="greedy")
        beam = model.generate(batch, START, END, MAX_DECODE, method="beam", beam_width=4,
                              num_hypotheses=2)
        in_process = {"greedy": module.greedy(tf.constant(batch)),
                      "beam": module.beam(tf.constant(batch))}
        np.testing.assert_array_equal(in_process["greedy"]["ids"].numpy(), np.asarray(greedy.ids))
        np.testing.assert_array_equal(in_process["beam"]["ids"].numpy(), np.asarray(beam.ids))
        expected[name] = (batch, in_process)

    source_files = []
    for name, (batch, _) in expected.items():
        source_files.append(str(tmp_path / f"source_{name}.npy"))
        np.save(source_files[-1], batch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, export_dir, *source_files],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    child = json.loads(line[len("RESULT"):])
    assert child["blocked"], "the child process could import keras_attention"
    assert child["leaked"] == []
    children = dict(zip(expected, child["batches"]))
    for name, (batch, in_process) in expected.items():
        for strategy in ("greedy", "beam"):
            theirs, ours = children[name][strategy], in_process[strategy]
            np.testing.assert_array_equal(np.array(theirs["ids"]), ours["ids"].numpy())
            np.testing.assert_array_equal(np.array(theirs["lengths"]), ours["lengths"].numpy())
            np.testing.assert_allclose(np.array(theirs["scores"]), ours["scores"].numpy(),
                                       atol=1e-4)
            np.testing.assert_allclose(np.array(theirs["attention"]),
                                       ours["attention"].numpy(), atol=1e-4)
        np.testing.assert_array_equal(np.array(children[name]["direct_greedy_ids"]),
                                      in_process["greedy"]["ids"].numpy())
    # The reloaded model still reverses.
    assert exact_match(np.array(children["full"]["greedy"]["ids"]),
                       reversal_targets(source)[1]).mean() >= GREEDY_ACCURACY


@pytest.mark.slow
def test_cell_path_and_fast_path_train_the_same_model():
    """One optimizer step on the step path and on the fast path gives the
    same loss and the same updated weights (same initial weights)."""
    source = random_sources(np.random.default_rng(3), 32)
    target_in, target_out = reversal_targets(source)
    models = []
    for fast_path in ("never", "auto"):
        keras.utils.set_random_seed(11)
        model = build_model(fast_path=fast_path)
        model({"source": source, "target_in": target_in})
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      ignore_class=PAD))
        models.append(model)
    slow, fast = models
    assert not slow.decoder.uses_fast_path and fast.decoder.uses_fast_path
    fast.set_weights(slow.get_weights())
    losses = [m.train_on_batch({"source": source, "target_in": target_in}, target_out)
              for m in models]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(slow.get_weights(), fast.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_fit_on_batches_of_different_lengths():
    """Keras retraces the train step with a None time axis when batch
    shapes change (as with length-bucketed data). Both decoder paths are
    checked with a None time axis in tests/layers/test_attention_decoder_cell.py."""
    keras.utils.set_random_seed(2)
    model = build_model(fast_path="auto")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=PAD))
    rng = np.random.default_rng(8)
    batches = []
    for width in (3, 5, 6):
        source = random_sources(rng, 16)[:, :width]
        source[:, 0] = np.where(source[:, 0] == PAD, 3, source[:, 0])
        target_in, target_out = reversal_targets(source)
        steps = width + 1
        batches.append(({"source": source, "target_in": target_in[:, :steps]},
                        target_out[:, :steps]))
    losses = [model.train_on_batch(x, y) for x, y in batches + batches]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[3:]) < np.mean(losses[:3])


def test_sampled_softmax_trains_on_candidates_and_predicts_with_every_word():
    """In training the model hands the output layer's inputs to
    `compute_loss`, which scores them on the sampled candidates
    (`sampled_softmax_loss`, numpy-checked in test_fitting.py); outside
    training it gives the exact logits; the candidate draws' seed state is
    checkpointed with dropout's; steps on the sampled loss lower the exact one."""
    from training.core import losses
    from training.core.checkpoints import random_state_variables

    source = random_sources(np.random.default_rng(4), 32)
    target_in, target_out = reversal_targets(source)
    inputs = {"source": source, "target_in": target_in}
    keras.utils.set_random_seed(5)
    encoder = RecurrentTextEncoder(VOCAB, 16, 16)
    model = AttentionSeq2Seq(encoder, VOCAB, 16, make_decoder_cell(32, "general", 16),
                             sampled_softmax=6, label_smoothing=0.1)
    exact = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=exact)
    logits = model(inputs)
    assert tuple(logits.shape) == (32, MAX_DECODE, VOCAB)
    features = model(inputs, training=True)["features"]
    assert tuple(features.shape) == (32, MAX_DECODE, 32)
    assert model.candidate_seed.state in random_state_variables(model)

    # compute_loss draws K candidates from the model's seed: the same draw by hand.
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(model.candidate_seed.state.numpy())
    candidates = losses.log_uniform_candidates(6, VOCAB, twin)
    by_hand = losses.sampled_softmax_loss(features, target_out, model.output_projection.kernel,
                                          model.output_projection.bias, candidates, 0.1)
    loss = model.compute_loss(inputs, target_out, {"features": features}, training=True)
    np.testing.assert_allclose(float(loss), float(by_hand), rtol=1e-6)
    # Both seeds drew once: the loss's draw came from the model's seed.
    np.testing.assert_array_equal(model.candidate_seed.state.numpy(), twin.state.numpy())

    before = float(exact(target_out, model(inputs)))
    for _ in range(30):
        model.train_on_batch(inputs, target_out)
    assert float(exact(target_out, model(inputs))) < 0.8 * before

    clone = AttentionSeq2Seq.from_config(model.get_config())
    assert (clone.sampled_softmax, clone.label_smoothing) == (6, 0.1)
    clone(inputs)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(inputs), model(inputs), atol=1e-6)
    with pytest.raises(ValueError, match="sampled_softmax` must be in \\[0, target_vocab_size"):
        AttentionSeq2Seq(encoder, VOCAB, 16, make_decoder_cell(32, "general", 16),
                         sampled_softmax=VOCAB)
