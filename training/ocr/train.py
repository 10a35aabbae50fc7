"""Train, evaluate and export a text reader: `train_and_evaluate`."""

import functools
import os

import numpy as np
import tensorflow as tf

from training.core import caption_training, job
from training.core import evaluation as core_evaluation
from training.core.decoding_options import DecodingOptions
from training.core.images import encode_png
from training.core.text import END_ID, SPECIAL_TOKENS, UNK_ID
from training.core.text import load_or_build_vocabulary
from training.ocr import data as data_lib
from training.ocr import metrics
from training.ocr.export import TextReader
from training.ocr.model import COLUMN_STRIDE, build_model


def load_corpus(config):
    """The corpus the config names, as an `OcrCorpus`."""
    if config.data == "generated":
        corpus = data_lib.load_generated(config)
    else:
        corpus = data_lib.load_folder(config.images_dir, config.labels_file,
                                      (config.image_height, config.image_width),
                                      skip_bad_lines=config.skip_bad_lines)
    if config.max_train_examples:
        corpus.train = corpus.train[: config.max_train_examples]
    return corpus


def character_vocabulary(config, workdir, texts=()):
    """The characters the model writes: `workdir/vocabulary.json`, or the
    `max_symbols - 4` most frequent characters of `texts` (ties in code
    point order), saved there. Each character is one token; a space too."""
    return load_or_build_vocabulary(os.path.join(workdir, "vocabulary.json"), list(texts),
                                    config.max_symbols, config.max_characters,
                                    name="vocabulary", split=list)


def encode_examples(examples, vocabulary, image_width=None, columns=None):
    """`(images, targets_in, targets_out)`: per line its image, `[START] + ids`
    and `ids + [END]`, the text cut at the vocabulary's `max_tokens`
    characters (unknown ones `[UNK]`).

    With `columns` (attention supervision; generated lines, whose
    characters' boxes are known) a fourth list: per line
    `{"attention_target": [T, columns]}`, each character's row the share
    of each column's pixels inside its box, zeros for spaces and the end.
    """
    ids = {character: index for index, character in enumerate(vocabulary.words)}
    images, targets_in, targets_out, extras = [], [], [], []
    for example in examples:
        text = example.text[: vocabulary.max_tokens]
        row = [ids.get(c, UNK_ID) for c in text] + [END_ID]
        images.append(example.image)
        targets_out.append(np.array(row, "int32"))
        targets_in.append(np.array([SPECIAL_TOKENS.index("[START]")] + row[:-1], "int32"))
        if columns:
            spans = metrics.column_spans(columns, image_width)
            target = np.zeros((len(row), columns), "float32")  # --> [T, columns]
            for t, box in enumerate(example.boxes[: len(text)]):
                if box is not None:
                    overlap = np.minimum(spans[:, 1], box[2]) - np.maximum(spans[:, 0], box[0])
                    target[t] = np.clip(overlap, 0, None) / (spans[:, 1] - spans[:, 0])
            extras.append({"attention_target": target})
    return (images, targets_in, targets_out) + ((extras,) if columns else ())


def source_spec(config):
    """The `tf.TensorSpec` of one training source: an RGB line image."""
    return tf.TensorSpec([config.image_height, config.image_width, 3], tf.uint8)


def train(config, workdir, corpus=None, log=print):
    """Trains the text reader on the lines of `corpus` (None:
    `load_corpus(config)`), resuming at the step where a run stopped.

    Returns `(fit_result, character vocabulary)`.
    """
    corpus = job.prepare_training(config, workdir, corpus, load_corpus, log)
    vocabulary = character_vocabulary(config, workdir, [e.text for e in corpus.train])
    log(f"vocabulary: {vocabulary.size - len(SPECIAL_TOKENS)} characters")
    encode, extras_spec = encode_examples, None
    if config.attention_supervision:
        columns = config.image_width // COLUMN_STRIDE
        encode = functools.partial(encode_examples, image_width=config.image_width,
                                   columns=columns)
        extras_spec = {"attention_target": tf.TensorSpec([None, columns], tf.float32)}
    return caption_training.fit_captioner(
        config, workdir, corpus, encode_examples=encode, source_spec=source_spec(config),
        build_model=lambda size: build_model(config, size), log=log, vocabulary=vocabulary,
        extras_spec=extras_spec)


def attention_text_view(characters, attention, image_width):
    """One line per character: the image columns its attention peaks on.
    Example line: `7  <- x 48-52  0.61 ######`."""
    spans = metrics.column_spans(attention.shape[-1], image_width)
    lines = []
    for character, weights in zip(characters, attention):
        peak = int(np.argmax(weights))
        lines.append(f"{'␣' if character == ' ' else character}  <- x {spans[peak][0]:.0f}-"
                     f"{spans[peak][1]:.0f}  {weights[peak]:.2f} "
                     + "#" * int(round(weights[peak] * 10)))
    return "\n".join(lines)


def evaluate(config, reader, corpus, workdir, log=print):
    """Character error rate, word and line accuracy (greedy and beam),
    localization, plots, hypotheses."""
    from keras_attention.plots import plot_line_attention

    test = corpus.test[: config.max_eval_examples] if config.max_eval_examples else corpus.test
    width = config.image_width

    def describe_greedy(results, hypotheses):
        attentions = [np.asarray(r["attention"])[: int(r["length"]), 0] for r in results]
        described = {}
        if test and test[0].boxes is not None:
            described["localization"] = metrics.summarize_localization(
                [record for example, hypothesis, attention in zip(test, hypotheses, attentions)
                 for record in metrics.localization(attention, hypothesis, example.text,
                                                    example.boxes, width)])
        os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
        described["plots"] = [
            plot_line_attention(example.image, attention, list(hypothesis),
                                os.path.join(workdir, "plots", f"attention_{i}.png"),
                                title=hypothesis)
            for i, (example, hypothesis, attention) in enumerate(
                zip(test[: config.plot_examples], hypotheses, attentions)) if hypothesis]
        described["examples"] = [
            {"reference": example.text, "text": hypothesis,
             "attention": attention_text_view(list(hypothesis), attention, width)}
            for example, hypothesis, attention in list(zip(test, hypotheses, attentions))[
                : max(config.plot_examples, 4)]]
        return described

    report = {"test_lines": len(test)}
    report.update(caption_training.evaluate_greedy_and_beam(
        config, reader, [[example.text] for example in test],
        run=lambda signature: core_evaluation.run_in_batches(
            signature, encode_png([e.image for e in test]), config.eval_batch_size,
            progress=log is print, unit_name="line"),
        hypothesis=core_evaluation.best_text, workdir=workdir, log=log,
        unit="line", describe_greedy=describe_greedy,
        score=lambda hypotheses, references: metrics.text_scores(
            hypotheses, [row[0] for row in references])))
    return report


def make_reader(config, model, corpus, vocabulary):
    """The `TextReader` export module of a trained model (`corpus`: unused)."""
    shape = (config.image_height, config.image_width)
    return TextReader(model, vocabulary, shape, model.encoder.grid_shape(shape),
                      config.max_characters, DecodingOptions.from_config(config))


train_and_evaluate = job.whole_job(
    "ocr", load_corpus=load_corpus, train=train, make_exporter=make_reader, evaluate=evaluate)

export_workdir = caption_training.workdir_export(
    build_model=build_model, source_spec=source_spec, make_exporter=make_reader,
    load_vocabulary=character_vocabulary)
