"""Train, evaluate and export a translation model: `train_and_evaluate`."""

import os
import time

import keras

from training.core import backend_export, job
from training.core import evaluation as core_evaluation
from training.core import devices, fitting
from training.core.checkpoints import optimizer_step
from training.core.decoding_options import DecodingOptions
from training.core.recasing import Recaser
from training.core.text import load_or_build_vocabulary
from training.translation import data as data_lib
from training.translation import evaluation, output_checks
from training.translation.export import Translator
from training.translation.model import build_model
from training.translation.pipeline import drop_long_pairs, encode_pairs, make_dataset


def load_corpus(config):
    """The corpus the config names, as a `ParallelCorpus`."""
    if config.data == "bundled":
        corpus = data_lib.load_bundled(config.direction)
    elif config.data == "files":
        paths = [p for p in config.data_files.split(",") if p]
        corpus = data_lib.load_user_corpus(paths, skip_bad_lines=config.skip_bad_lines)
    else:
        corpus = data_lib.load_tfds(config.tfds_name, data_dir=config.tfds_data_dir)
    if config.max_train_pairs:
        corpus.train = corpus.train[: config.max_train_pairs]
    if config.max_dev_pairs:
        corpus.dev = corpus.dev[: config.max_dev_pairs]
    return corpus


def vocabularies(config, corpus, workdir):
    """Builds (or, on resume, reloads) the source and target vocabularies."""
    return [
        load_or_build_vocabulary(
            os.path.join(workdir, f"vocabulary.{side}.json"),
            [pair[index] for pair in corpus.train], size, max_tokens, config.min_word_count,
            name=f"{side}_vocabulary")
        for side, index, size, max_tokens in (
            ("source", 0, config.source_vocab_size, config.max_source_tokens),
            ("target", 1, config.target_vocab_size, config.max_target_tokens))
    ]


def dev_dataset(config, dev_encoded, replicas):
    if replicas == 1 and keras.backend.backend() == "tensorflow":
        return make_dataset(dev_encoded, config.eval_batch_size, shuffle=False)
    if replicas == 1:
        # JAX compiles the step anew for each shape: batches of the longest
        # pair's length (one shape, and one for the last batch).
        return make_dataset(dev_encoded, config.eval_batch_size, shuffle=False,
                            bucket_boundaries=())
    # Keras' evaluate cannot split a batch unevenly over replicas: full
    # batches of a multiple of the replica count, no length buckets.
    dev_batch = max(replicas, min(config.eval_batch_size, len(dev_encoded[0]))
                    // replicas * replicas)
    return make_dataset(dev_encoded, dev_batch, shuffle=False, drop_remainder=True,
                        bucket_boundaries=())


class ExactSoftmaxFrom(keras.callbacks.Callback):
    """Trains by the exact softmax from optimizer step `step` on: the model's
    sampled softmax is turned off and the train step traced again. A run
    resumed past `step` starts exact, so resuming gives the same weights."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def _switch_when_due(self):
        if self.model.sampled_softmax and optimizer_step(self.model) >= self.step:
            self.model.sampled_softmax = 0
            self.model.make_train_function(force=True)

    def on_train_begin(self, logs=None):
        self._switch_when_due()

    def on_train_batch_end(self, batch, logs=None):
        self._switch_when_due()


def train(config, workdir, corpus=None, log=print, model_builder=build_model,
          optimizer_builder=fitting.default_optimizer, callbacks=()):
    """Trains (resuming from `workdir/checkpoints` at the step where it stopped).

    `model_builder(config, source_vocab_size, target_vocab_size)` and
    `optimizer_builder(config, total_steps)` let benchmarks train other
    architectures through the same pipeline; `callbacks` go to `fit`.

    Returns `(fit_result, source_vocabulary, target_vocabulary)`.
    """
    corpus = job.prepare_training(config, workdir, corpus, load_corpus, log)
    source_vocabulary, target_vocabulary = vocabularies(config, corpus, workdir)
    log(f"vocabularies: source {source_vocabulary.size}, target {target_vocabulary.size} words")

    train_encoded = drop_long_pairs(
        encode_pairs(corpus.train, source_vocabulary, target_vocabulary), config.max_train_tokens)
    if not train_encoded[0]:
        raise data_lib.CorpusError(
            f"no training pair has 1 to max_train_tokens={config.max_train_tokens} words on "
            f"both sides; raise max_train_tokens")
    dev_encoded = encode_pairs(corpus.dev, source_vocabulary, target_vocabulary)
    log(f"training pairs of <= {config.max_train_tokens} words: {len(train_encoded[0])}")

    replicas = devices.data_replicas(config)
    result = fitting.fit(
        config, workdir,
        build_model=lambda: model_builder(config, source_vocabulary.size, target_vocabulary.size),
        train_data=lambda skip: make_dataset(
            train_encoded, config.batch_size, shuffle=True, seed=config.seed,
            repeat=True).skip(skip),
        dev_data=dev_dataset(config, dev_encoded, replicas),
        log=log, optimizer_builder=optimizer_builder,
        callbacks=[*callbacks, *([ExactSoftmaxFrom(config.sampled_softmax_steps)]
                                 if config.sampled_softmax and config.sampled_softmax_steps
                                 else [])],
    )
    return result, source_vocabulary, target_vocabulary


def evaluate(config, translator, corpus, workdir, log=print):
    """Test BLEU/chrF, greedy and beam, with the outputs that loop and the
    words copied from the source (`output_checks`); hypotheses files;
    attention plots."""
    test = corpus.test[: config.max_eval_pairs] if config.max_eval_pairs else corpus.test
    sources = [s for s, _ in test]
    references = [t for _, t in test]
    report = {"test_pairs": len(test)}
    for name, signature in (("greedy", translator.greedy),
                            (f"beam{translator.beam_width}", translator.beam)):
        log(f"translating {len(test)} test sentences ({name})")
        start = time.monotonic()
        results = core_evaluation.run_in_batches(
            signature, sources, config.eval_batch_size, progress=log is print,
            unit_name="sentence")
        seconds = time.monotonic() - start
        hypotheses = [core_evaluation.best_text(r) for r in results]
        core_evaluation.write_lines(os.path.join(workdir, f"test.hypotheses.{name}.txt"),
                                    hypotheses)
        scores = core_evaluation.score_text(hypotheses, references)
        scores["looping_outputs"] = output_checks.looping_outputs(hypotheses)
        scores["copied_words"] = output_checks.copied_words(results, references)
        scores["seconds"] = round(seconds, 1)
        report[name] = scores
        if name == "greedy":
            plots, views = evaluation.draw_examples(
                results, sources, os.path.join(workdir, "plots"), config.plot_examples)
            report["plots"] = plots
            report["examples"] = [
                {"source": sources[i], "reference": references[i], "translation": hypotheses[i],
                 "attention": views[i] if i < len(views) else ""}
                for i in range(min(config.plot_examples, len(test)))
            ]
    core_evaluation.write_lines(os.path.join(workdir, "test.references.txt"), references)
    core_evaluation.write_lines(os.path.join(workdir, "test.sources.txt"), sources)
    return report


def make_translator(config, model, corpus, source_vocabulary, target_vocabulary):
    """The `Translator` export module of a trained model, recasing outputs as
    `corpus.train`'s targets are cased (`config.recase`)."""
    recaser = Recaser.from_texts([target for _, target in corpus.train]) if config.recase \
        else None
    return Translator(model, source_vocabulary, target_vocabulary, config.max_target_tokens,
                      DecodingOptions.from_config(config), recaser, config.unknown_words)


def export_workdir(config, workdir, log=print):
    """Exports a finished workdir: the model rebuilt from `config`, its
    vocabularies and `model.keras` weights (written by any backend), saved
    as `workdir/export/<export_name>/<export_version>`. Returns its path."""
    import tensorflow as tf

    needed = [f"vocabulary.{side}.json" for side in ("source", "target")]
    backend_export.check_finished(workdir, needed)
    corpus = load_corpus(config)
    source_vocabulary, target_vocabulary = vocabularies(config, corpus, workdir)
    model = backend_export.rebuild_model(
        config, workdir, lambda: build_model(config, source_vocabulary.size, target_vocabulary.size),
        tf.TensorSpec([None], tf.int32))
    translator = make_translator(config, model, corpus, source_vocabulary, target_vocabulary)
    return translator.save(os.path.join(workdir, "export"), config.export_name,
                           config.export_version)


train_and_evaluate = job.whole_job(
    "translation", load_corpus=load_corpus, train=train, make_exporter=make_translator,
    evaluate=evaluate)
