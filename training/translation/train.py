"""Train, evaluate and export a translation model: `train_and_evaluate`."""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from training.core import config as config_lib
from training.core import fitting
from training.translation import data as data_lib
from training.translation import evaluation
from training.translation.export import Translator
from training.translation.model import build_model
from training.translation.pipeline import drop_long_pairs, encode_pairs, make_dataset
from training.translation.text_processing import Vocabulary, build_vocabulary


def load_corpus(config):
    """The corpus the config names, as a `ParallelCorpus`."""
    if config.data == "bundled":
        corpus = data_lib.load_bundled(config.direction)
    elif config.data == "files":
        paths = [p for p in config.data_files.split(",") if p]
        if not paths:
            raise config_lib.ConfigError("data=files needs data_files=FILE or SOURCE,TARGET")
        corpus = data_lib.load_user_corpus(paths, skip_bad_lines=config.skip_bad_lines)
    elif config.data == "tfds":
        corpus = data_lib.load_tfds(config.tfds_name, data_dir=config.tfds_data_dir)
    else:
        raise config_lib.ConfigError(
            f"data must be bundled, files or tfds, received {config.data!r}")
    if config.max_train_pairs:
        corpus.train = corpus.train[: config.max_train_pairs]
    return corpus


def vocabularies(config, corpus, workdir):
    """Builds (or, on resume, reloads) the source and target vocabularies."""
    vocabularies = []
    for side, size, max_tokens in (
        ("source", config.source_vocab_size, config.max_source_tokens),
        ("target", config.target_vocab_size, config.max_target_tokens),
    ):
        path = os.path.join(workdir, f"vocabulary.{side}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                vocabularies.append(Vocabulary.from_json(handle.read(), name=f"{side}_vocabulary"))
            continue
        texts = [pair[0 if side == "source" else 1] for pair in corpus.train]
        words = build_vocabulary(texts, size, config.min_word_count)
        vocabulary = Vocabulary(words, max_tokens, name=f"{side}_vocabulary")
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(vocabulary.to_json())
        os.replace(path + ".tmp", path)
        vocabularies.append(vocabulary)
    return vocabularies


def default_optimizer(config, total_steps):
    """Adam with warm-up and cosine decay, gradient norm clipping."""
    return keras.optimizers.Adam(
        fitting.learning_rate_schedule(config.learning_rate, total_steps, config.warmup_steps),
        clipnorm=config.clipnorm or None,
    )


def train(config, workdir, corpus=None, log=print, model_builder=build_model,
          optimizer_builder=default_optimizer):
    """Trains (resuming from `workdir/checkpoints` when present).

    `model_builder(config, source_vocab_size, target_vocab_size)` and
    `optimizer_builder(config, total_steps)` let benchmarks train other
    architectures through the same pipeline.

    Returns `(model, source_vocabulary, target_vocabulary, history)`.
    """
    os.makedirs(workdir, exist_ok=True)
    config_lib.save(config, os.path.join(workdir, "config.json"))
    keras.utils.set_random_seed(config.seed)
    corpus = corpus or load_corpus(config)
    log(corpus.summary())
    source_vocabulary, target_vocabulary = vocabularies(config, corpus, workdir)
    log(f"vocabularies: source {source_vocabulary.size}, target {target_vocabulary.size} words")

    train_encoded = drop_long_pairs(
        encode_pairs(corpus.train, source_vocabulary, target_vocabulary), config.max_train_tokens)
    dev_encoded = encode_pairs(corpus.dev, source_vocabulary, target_vocabulary)
    log(f"training pairs of <= {config.max_train_tokens} words: {len(train_encoded[0])}")

    strategy = fitting.make_strategy(config.strategy)
    total_steps = config.epochs * config.steps_per_epoch
    with strategy.scope():
        model = model_builder(config, source_vocabulary.size, target_vocabulary.size)
        model.compile(optimizer_builder(config, total_steps),
                      fitting.MaskedSequenceLoss(config.label_smoothing),
                      metrics=[fitting.masked_token_accuracy])
        model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})

    checkpoint_dir = os.path.join(workdir, "checkpoints")
    initial_epoch = fitting.restore(model, checkpoint_dir, log=log)
    train_data = make_dataset(train_encoded, config.batch_size, shuffle=True, seed=config.seed,
                              repeat=True)
    # Continue the same stream of batches after an interruption.
    train_data = train_data.skip(initial_epoch * config.steps_per_epoch)
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        dev_data = make_dataset(dev_encoded, config.eval_batch_size, shuffle=False)
    else:
        # Keras' evaluate cannot split a batch unevenly over replicas: full
        # batches of a multiple of the replica count, no length buckets.
        dev_batch = max(replicas, min(config.eval_batch_size, len(dev_encoded[0]))
                        // replicas * replicas)
        dev_data = make_dataset(dev_encoded, dev_batch, shuffle=False, drop_remainder=True,
                                bucket_boundaries=())

    budget = fitting.TimeBudget(config.max_train_seconds)
    callbacks = [
        fitting.ResumableCheckpoint(checkpoint_dir),
        keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), update_freq=50),
        keras.callbacks.TerminateOnNaN(),
        budget,
    ]
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            "val_loss", patience=config.early_stopping_patience, restore_best_weights=True))
    history = None
    if initial_epoch < config.epochs:
        start = time.monotonic()
        history = model.fit(
            train_data, validation_data=dev_data, epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch, initial_epoch=initial_epoch,
            callbacks=callbacks, verbose=1 if log is print else 2, shuffle=False,
        )
        log(f"trained for {time.monotonic() - start:.0f} s"
            + (" (time budget reached)" if budget.exhausted else ""))
    else:
        log(f"all {config.epochs} epochs already done")
    return model, source_vocabulary, target_vocabulary, history


def evaluate(config, translator, corpus, workdir, log=print):
    """Test BLEU/chrF, greedy and beam; hypotheses files; attention plots."""
    test = corpus.test[: config.max_eval_pairs] if config.max_eval_pairs else corpus.test
    sources = [s for s, _ in test]
    references = [t for _, t in test]
    report = {"test_pairs": len(test)}
    for name, function, beam in (("greedy", translator.translate, False),
                                 (f"beam{translator.beam_width}", translator.translate_beam, True)):
        log(f"translating {len(test)} test sentences ({name})")
        start = time.monotonic()
        results = evaluation.translate_all(function, sources, config.eval_batch_size, beam=beam,
                                           progress=log is print)
        seconds = time.monotonic() - start
        hypotheses = [evaluation.decoded_text(r, beam) for r in results]
        evaluation.write_lines(os.path.join(workdir, f"test.hypotheses.{name}.txt"), hypotheses)
        scores = evaluation.score(hypotheses, references)
        scores["seconds"] = round(seconds, 1)
        report[name] = scores
        if not beam:
            plots, views = evaluation.draw_examples(
                results, sources, os.path.join(workdir, "plots"), config.plot_examples)
            report["plots"] = plots
            report["examples"] = [
                {"source": sources[i], "reference": references[i], "translation": hypotheses[i],
                 "attention": views[i] if i < len(views) else ""}
                for i in range(min(config.plot_examples, len(test)))
            ]
    evaluation.write_lines(os.path.join(workdir, "test.references.txt"), references)
    evaluation.write_lines(os.path.join(workdir, "test.sources.txt"), sources)
    return report


def train_and_evaluate(config, workdir, corpus=None, log=print):
    """The whole job: train (or resume), export, evaluate, report.

    Returns the report dict, also written to `workdir/report.json`.
    """
    started = time.monotonic()
    corpus = corpus or load_corpus(config)
    model, source_vocabulary, target_vocabulary, _ = train(config, workdir, corpus, log)
    translator = Translator(model, source_vocabulary, target_vocabulary, config.max_target_tokens,
                            config.beam_width, config.length_penalty, config.num_hypotheses)
    export_path = translator.save(os.path.join(workdir, "export"), config.export_name,
                                  config.export_version)
    model.save(os.path.join(workdir, "model.keras"))
    report = evaluate(config, translator, corpus, workdir, log)
    report.update({
        "export": export_path,
        "workdir": workdir,
        "config": dataclasses.asdict(config),
        "total_seconds": round(time.monotonic() - started, 1),
    })
    with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
    return report
