"""Resume exact to the step: a run stopped by its time budget continues
where it stopped with the data order and dropout draws it would have had,
and ends with the weights of an uninterrupted run of the same seed (a run
killed by SIGKILL: test_resume_sigkill.py).
Checkpoint files that are corrupt are skipped; checkpoints and vocabularies
of another config are refused with the difference named."""

import dataclasses
import json
import os
import random

import numpy as np
import pytest

pytestmark = pytest.mark.slow

WORDS = {"cat": "gato", "dog": "perro", "house": "casa", "red": "rojo", "sees": "ve",
         "big": "grande"}


def toy_corpus(count=400, seed=3):
    from training.translation import data as data_lib

    rng = random.Random(seed)
    sources = set()
    while len(sources) < count:
        sources.add(" ".join(rng.choice(sorted(WORDS)) for _ in range(rng.randint(2, 6))))
    pairs = [(s, " ".join(WORDS[w] for w in s.split())) for s in sorted(sources)]
    corpus = data_lib.split_by_hash(pairs, 0.1, 0.1)
    corpus.description = "toy"
    return corpus


def small_config(**changes):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    config = config_lib.load(TranslationConfig, PRESETS, "tiny")
    values = dict(units=16, embedding_dim=16, attention_units=16, epochs=4, steps_per_epoch=6,
                  checkpoint_steps=4, dropout=0.2, batch_size=16, learning_rate=0.01,
                  early_stopping_patience=1, max_train_seconds=0.0)
    values.update(changes)
    return dataclasses.replace(config, **values)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from training.translation import train as train_lib

    corpus = toy_corpus()
    result, _, _ = train_lib.train(small_config(), str(tmp_path_factory.mktemp("straight")),
                                   corpus, log=lambda *a: None)
    return corpus, result


def assert_same_run(result, reference):
    assert result.steps == reference.steps
    assert result.stopped_by == reference.stopped_by
    for got, want in zip(result.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.history["val_loss"],
                               reference.history["val_loss"], rtol=1e-5)


def test_time_budget_stop_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    from training.translation import train as train_lib

    corpus, reference = uninterrupted
    workdir = str(tmp_path / "run")
    # A budget of a few milliseconds stops after the first step, mid-epoch.
    first, _, _ = train_lib.train(small_config(max_train_seconds=0.001), workdir, corpus,
                                  log=lambda *a: None)
    assert first.stopped_by == "time budget" and 0 < first.steps < 6
    state = json.loads(open(os.path.join(workdir, "checkpoints", "latest.json")).read())
    assert state["step"] == first.steps  # saved where it stopped, not at an epoch's end
    # The same command again: the budget is spent, nothing more is trained.
    again, _, _ = train_lib.train(small_config(max_train_seconds=0.001), workdir, corpus,
                                  log=lambda *a: None)
    assert again.steps == first.steps and again.stopped_by == "time budget"
    # Without a budget it goes on, and ends where an uninterrupted run ends.
    result, _, _ = train_lib.train(small_config(), workdir, corpus, log=lambda *a: None)
    assert_same_run(result, reference)


def test_another_config_is_refused_naming_the_difference(uninterrupted, tmp_path):
    from training.core.checkpoints import CheckpointMismatch
    from training.core.text import VocabularyMismatch
    from training.translation import train as train_lib

    corpus, _ = uninterrupted
    workdir = str(tmp_path / "run")
    train_lib.train(small_config(epochs=1), workdir, corpus, log=lambda *a: None)
    with pytest.raises(CheckpointMismatch) as error:
        train_lib.train(small_config(epochs=1, units=24, attention_units=24), workdir, corpus,
                        log=lambda *a: None)
    assert "shape" in str(error.value) and "--restart" in str(error.value)
    with pytest.raises(VocabularyMismatch) as error:
        train_lib.train(small_config(epochs=1, target_vocab_size=300), workdir, corpus,
                        log=lambda *a: None)
    assert "max_size=500" in str(error.value) and "300" in str(error.value)


def test_checkpointer_skips_corrupt_files(tmp_path):
    import keras

    from training.core import checkpoints

    def make_model():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.01), "mse")
        model.optimizer.build(model.trainable_variables)
        return model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    directory = str(tmp_path / "checkpoints")
    checkpointer = checkpoints.Checkpointer(directory)
    model, snapshots = make_model(), []
    for _ in range(3):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        step = int(model.optimizer.iterations)
        checkpointer.save(model, {"step": step})
        snapshots.append(([w.copy() for w in model.get_weights()], step))
    assert sorted(os.listdir(directory)) == ["latest.json", "latest.weights.h5",
                                             "previous.json", "previous.weights.h5"]

    def restored(expected):
        fresh, messages = make_model(), []
        initial = [w.copy() for w in fresh.get_weights()]
        state = checkpointer.restore(fresh, log=messages.append)
        if expected is None:
            assert state is None, messages
            for got, want in zip(fresh.get_weights(), initial):
                np.testing.assert_array_equal(got, want)
            return messages
        weights, step = snapshots[expected]
        assert state["step"] == step, messages
        for got, want in zip(fresh.get_weights(), weights):
            np.testing.assert_array_equal(got, want)
        assert int(fresh.optimizer.iterations) == step  # the optimizer state too
        return messages

    # A leftover pair of temporary files from a kill mid-write, claiming a
    # later step, is never read.
    with open(os.path.join(directory, "writing.weights.h5"), "wb") as handle:
        handle.write(b"partial")
    with open(os.path.join(directory, "writing.json"), "w") as handle:
        json.dump({"step": 99}, handle)
    assert restored(2) == [f"resumed from {directory}/latest.weights.h5 at step 12"]
    latest = os.path.join(directory, "latest.weights.h5")
    with open(latest, "r+b") as handle:  # a write cut short
        handle.truncate(os.path.getsize(latest) // 2)
    messages = restored(1)
    assert "latest.weights.h5" in messages[0] and "unreadable" in messages[0]
    with open(os.path.join(directory, "previous.json"), "w") as handle:
        handle.write('{"step": ')
    messages = restored(None)
    assert len(messages) == 2 and all("skipping" in m for m in messages)


def test_no_pair_within_the_length_limit_is_a_clear_error(tmp_path):
    from training.translation import train as train_lib
    from training.translation.data import CorpusError

    with pytest.raises(CorpusError, match="max_train_tokens=1"):
        train_lib.train(small_config(max_train_tokens=1), str(tmp_path / "run"), toy_corpus(),
                        log=lambda *a: None)


def test_the_resume_step_is_agreed_from_the_files_before_the_corpus_is_read(tmp_path,
                                                                           monkeypatch):
    """The job runner asks every process for its resume step (the files'
    newest readable pair, a pair cut short by a kill skipped) before any
    corpus is read or model built, so a cluster whose processes disagree
    stops at once."""
    from training.core import checkpoints, distribution, job

    directory = tmp_path / "run" / "checkpoints"
    directory.mkdir(parents=True)
    (directory / "latest.weights.h5").write_bytes(b"never read")
    (directory / "latest.json").write_text('{"step": ')  # cut short
    (directory / "previous.weights.h5").write_bytes(b"never read")
    (directory / "previous.json").write_text('{"step": 6}')
    (directory / "writing.json").write_text('{"step": 8}')

    agreed = []
    monkeypatch.setattr(distribution, "same_on_every_process",
                        lambda value, what: agreed.append((value, what)))
    assert [state["step"] for _, state in
            checkpoints.Checkpointer.of_run(str(tmp_path / "run")).readable(log=agreed.append)
            ] == [6]
    assert "latest.json unreadable" in agreed.pop()

    class Refused(Exception):
        pass

    def refuse(value, what):
        agreed.append((value, what))
        raise Refused(what)

    monkeypatch.setattr(distribution, "same_on_every_process", refuse)
    with pytest.raises(Refused, match="the checkpoint step to resume"):
        job.run(small_config(), str(tmp_path / "run"), None, print, task_name="translation",
                load_corpus=lambda config: pytest.fail("read the corpus before agreeing"),
                train=None, make_exporter=None, evaluate=None)
    assert agreed == [(6, "the checkpoint step to resume")]
    monkeypatch.setattr(distribution, "same_on_every_process",
                        lambda value, what: agreed.append((value, what)))
    checkpoints.Checkpointer(str(tmp_path / "empty")).agree_on_step()
    assert agreed[-1] == (-1, "the checkpoint step to resume")
