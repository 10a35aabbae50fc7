"""The training step every captioning task (images, video) shares: a caption
vocabulary, encoded examples, and `fitting.fit` on batches of them."""

import os
import time

import numpy as np

from training.core import backend_export, batching, caption_metrics, devices, fitting
from training.core import evaluation as core_evaluation
from training.core.text import load_or_build_vocabulary


def fit_captioner(config, workdir, corpus, encode_examples, source_spec, build_model, log,
                  optimizer_builder=fitting.default_optimizer, callbacks=(), extras_spec=None,
                  vocabulary=None):
    """Trains a captioner on `corpus.train`, validating on `corpus.dev`
    (resuming at the step where a run stopped).

    Args:
        config: The task's `TrainingConfig` (with `vocab_size`,
            `max_caption_tokens` and `min_word_count`).
        corpus: `.train` and `.dev` lists of examples with `.captions`.
        encode_examples: `(examples, vocabulary) -> (sources, targets_in,
            targets_out)`, one row per caption (and with `extras_spec` a
            fourth list of more inputs, `batching.make_dataset`).
        source_spec: The `tf.TensorSpec` (or nest of them) of one source.
        build_model: `vocab_size -> keras.Model`.
        extras_spec: The `tf.TensorSpec`s of the more inputs, or None.
        vocabulary: The output `Vocabulary`; None: the caption words'
            (`workdir/vocabulary.json`, built from the training captions).

    Returns:
        `(fit_result, vocabulary)`.
    """
    if vocabulary is None:
        vocabulary = load_or_build_vocabulary(
            os.path.join(workdir, "vocabulary.json"),
            [caption for example in corpus.train for caption in example.captions],
            config.vocab_size, config.max_caption_tokens, config.min_word_count,
            name="vocabulary")
        log(f"vocabulary: {vocabulary.size} words")
    train_examples = encode_examples(corpus.train, vocabulary)
    dev_examples = encode_examples(corpus.dev, vocabulary)

    replicas = devices.data_replicas(config)
    # Over several replicas only full batches split evenly: a dev set smaller
    # than eval_batch_size still gives one.
    dev_rows = len(dev_examples[1])
    dev_batch = max(replicas, min(config.eval_batch_size, dev_rows) // replicas * replicas)
    result = fitting.fit(
        config, workdir,
        build_model=lambda: build_model(vocabulary.size),
        train_data=lambda skip: batching.make_dataset(
            train_examples, config.batch_size, shuffle=True, seed=config.seed, repeat=True,
            source_spec=source_spec, extras_spec=extras_spec).skip(skip),
        dev_data=batching.make_dataset(dev_examples, dev_batch, shuffle=False,
                                       drop_remainder=replicas > 1, source_spec=source_spec,
                                       extras_spec=extras_spec),
        log=log, optimizer_builder=optimizer_builder, callbacks=callbacks,
    )
    return result, vocabulary


def workdir_export(*, build_model, source_spec, make_exporter, load_vocabulary=None):
    """A captioning task's `export_workdir(config, workdir)` (`--export-only`):
    the model of a finished workdir (trained on any backend) rebuilt with
    its vocabulary and exported to
    `workdir/export/<export_name>/<export_version>`; it returns the
    exported version's path.

    Args:
        build_model: `(config, vocab_size) -> keras.Model`.
        source_spec: `config -> tf.TensorSpec` (or a nest of them) of one
            source.
        make_exporter: `(config, model, corpus, vocabulary) ->
            SequenceExporter`, called with corpus None.
        load_vocabulary: `(config, workdir) -> Vocabulary` saved in the
            workdir; None: the caption words' `vocabulary.json`.

    Example (a task's `train.py`):

        export_workdir = caption_training.workdir_export(
            build_model=build_model, source_spec=source_spec,
            make_exporter=make_captioner)
    """

    def export_workdir(config, workdir):
        """Exports the finished `workdir`'s model; the version's path."""
        backend_export.check_finished(workdir, ["vocabulary.json"])
        vocabulary = load_vocabulary(config, workdir) if load_vocabulary else \
            load_or_build_vocabulary(
                os.path.join(workdir, "vocabulary.json"), [], config.vocab_size,
                config.max_caption_tokens, config.min_word_count, name="vocabulary")
        model = backend_export.rebuild_model(
            config, workdir, lambda: build_model(config, vocabulary.size), source_spec(config))
        return make_exporter(config, model, None, vocabulary).save(
            os.path.join(workdir, "export"), config.export_name, config.export_version)

    return export_workdir


def evaluate_greedy_and_beam(config, captioner, references, run, hypothesis, workdir, log,
                             unit, describe_greedy, score=None):
    """A captioning task's test-set evaluation: the greedy signature, then the
    beam one, each scored with the caption metrics; the hypotheses and
    references written to `workdir/test.*.txt`.

    Args:
        captioner: The exporter or loaded export (`greedy`, `beam`, `beam_width`).
        references: Per test input, its reference captions.
        run: `signature -> list of per-input output dicts`.
        hypothesis: `output dict -> the best caption, words space-separated`.
        unit: What one input is, for the log ("image").
        describe_greedy: `(results, hypotheses) -> dict` of what the greedy
            answers add to the report (localization, plots, examples).
        score: `(hypotheses, references) -> scores dict`; None: the caption
            metrics (`caption_metrics.caption_scores`).

    Returns the report: `{"greedy": scores, "beam<K>": scores, ...}`.
    """
    report = {}
    for name, signature in (("greedy", captioner.greedy),
                            (f"beam{captioner.beam_width}", captioner.beam)):
        log(f"decoding {len(references)} test {unit}s ({name})")
        start = time.monotonic()
        results = run(signature)
        seconds = time.monotonic() - start
        hypotheses = [hypothesis(result) for result in results]
        core_evaluation.write_lines(os.path.join(workdir, f"test.hypotheses.{name}.txt"),
                                    hypotheses)
        scores = (score(hypotheses, references) if score else
                  caption_metrics.caption_scores(hypotheses, references, meteor=config.meteor))
        scores["seconds"] = round(seconds, 1)
        report[name] = scores
        if name == "greedy":
            report.update(describe_greedy(results, hypotheses))
    core_evaluation.write_lines(os.path.join(workdir, "test.references.txt"),
                                [" | ".join(row) for row in references])
    return report


def caption_examples(config, references, hypotheses, attentions, text_view):
    """The report's first examples (at least 4, `plot_examples` if more):
    reference, caption, and `text_view(words, attention)` of each.

    `attentions[i]` is example i's attention, cut to its caption's length."""
    count = min(max(config.plot_examples, 4), len(references))
    return [{"reference": references[i][0], "caption": hypotheses[i],
             "attention": text_view(hypotheses[i].split(), np.asarray(attentions[i]))}
            for i in range(count)]
