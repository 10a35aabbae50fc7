"""Train, evaluate and export an image captioner: `train_and_evaluate`."""

import functools
import os

import numpy as np
import tensorflow as tf

from training.captioning import data as data_lib
from training.captioning import evaluation, metrics
from training.captioning.export import Captioner
from training.captioning.model import build_encoder, build_model
from training.core import batching, caption_training, job
from training.core import evaluation as core_evaluation
from training.core import fitting
from training.core.decoding_options import DecodingOptions
from training.core.images import encode_png


def load_corpus(config):
    """The corpus the config names, as a `CaptionCorpus`."""
    if config.data == "generated":
        corpus = data_lib.load_generated(
            config.train_scenes, config.dev_scenes, config.test_scenes, config.data_seed,
            config.image_size, noise=config.scene_noise, clutter=config.scene_clutter,
            max_objects=config.scene_max_objects)
    elif config.data == "folder":
        corpus = data_lib.load_folder(config.images_dir, config.captions_file,
                                      config.image_size, skip_bad_lines=config.skip_bad_lines)
    else:
        corpus = data_lib.load_coco(config.image_size, data_dir=config.tfds_data_dir)
    if config.max_train_examples:
        corpus.train = corpus.train[: config.max_train_examples]
    return corpus


def encode_examples(examples, vocabulary, attention_grid=None, image_size=None):
    """One training example per (image, caption): `(images, targets_in, targets_out)`.

    With `attention_grid` `(h, w)` (attention supervision; generated scenes,
    whose examples know which object each caption word names), a fourth
    list: per caption `{"attention_target": [T, h*w]}`, the label row of each
    word that names an object each grid cell's share of its area inside
    that object's box (`metrics.box_cells`), zeros for the other words and
    the end token.
    """
    images, captions, named = [], [], []
    for example in examples:
        for caption in example.captions:
            images.append(example.image)
            captions.append(caption)
            named.append((example.objects, example.word_objects))
    targets_in, targets_out = batching.encode_targets(captions, vocabulary)
    if attention_grid is None:
        return images, targets_in, targets_out
    cells = attention_grid[0] * attention_grid[1]
    targets = []
    for labels, caption, (objects, word_objects) in zip(targets_out, captions, named):
        if word_objects is None or len(word_objects) != len(labels) - 1:
            raise ValueError(f"attention supervision needs each caption word's object: "
                             f"{caption!r} has {len(labels) - 1} tokens and "
                             f"{word_objects and len(word_objects)} named objects")
        target = np.zeros((len(labels), cells), "float32")  # --> [T, h*w]
        for t, k in enumerate(word_objects):
            if k >= 0:
                target[t] = metrics.box_cells(objects[k].box, attention_grid, image_size)[0]
        targets.append({"attention_target": target})
    return images, targets_in, targets_out, targets


def source_spec(config):
    """The `tf.TensorSpec` of one training source: an RGB image."""
    return tf.TensorSpec([config.image_size, config.image_size, 3], tf.uint8)


def train(config, workdir, corpus=None, log=print, model_builder=build_model,
          optimizer_builder=fitting.default_optimizer, callbacks=()):
    """Trains the captioner on `corpus` (None: `load_corpus(config)`),
    resuming at the step where a run stopped; `model_builder(config,
    vocab_size)` and `optimizer_builder` let benchmarks swap the model.

    Returns `(fit_result, vocabulary)`.
    """
    corpus = job.prepare_training(config, workdir, corpus, load_corpus, log)
    encode, extras_spec = encode_examples, None
    if config.attention_supervision:
        grid = build_encoder(config).grid_shape(config.image_size)
        encode = functools.partial(encode_examples, attention_grid=grid,
                                   image_size=config.image_size)
        extras_spec = {"attention_target": tf.TensorSpec([None, grid[0] * grid[1]], tf.float32)}
    return caption_training.fit_captioner(
        config, workdir, corpus, encode_examples=encode, source_spec=source_spec(config),
        build_model=lambda vocab_size: model_builder(config, vocab_size),
        log=log, optimizer_builder=optimizer_builder, callbacks=callbacks,
        extras_spec=extras_spec)


def evaluate(config, captioner, corpus, workdir, log=print):
    """Caption metrics (greedy and beam), localization, plots, hypotheses."""
    test = corpus.test[: config.max_eval_examples] if config.max_eval_examples else corpus.test
    inputs = encode_png([example.image for example in test])
    references = [example.captions for example in test]

    def describe_greedy(results, hypotheses):
        described = {}
        if test and test[0].objects is not None:
            described["localization"] = localization(results, test, captioner)
        described["plots"] = evaluation.draw_examples(
            results, [example.image for example in test], os.path.join(workdir, "plots"),
            config.plot_examples)
        described["examples"] = caption_training.caption_examples(
            config, references, hypotheses,
            [result["attention"][: int(result["length"])] for result in results],
            evaluation.attention_text_view)
        return described

    report = {"test_images": len(test)}
    report.update(caption_training.evaluate_greedy_and_beam(
        config, captioner, references,
        run=lambda signature: core_evaluation.run_in_batches(
            signature, inputs, config.eval_batch_size, progress=log is print,
            unit_name="image"),
        hypothesis=core_evaluation.best_text, workdir=workdir, log=log, unit="image",
        describe_greedy=describe_greedy))
    return report


def localization(results, test, captioner):
    """Attention mass in the named object's box, argmax hits, chance."""
    records = []
    for result, example in zip(results, test):
        length = int(result["length"])
        words = [w.decode("utf-8") for w in result["tokens"][:length]]
        attention = np.asarray(result["attention"])[:length]  # --> [T, h, w]
        records += metrics.localization(
            attention.reshape(length, -1), evaluation.word_referents(words, example.objects),
            [o.box for o in example.objects], captioner.grid_shape, captioner.image_size)
    return metrics.summarize_localization(records)


def make_captioner(config, model, corpus, vocabulary):
    """The `Captioner` export module of a trained model (`corpus`: unused)."""
    return Captioner(model, vocabulary, config.image_size,
                     model.encoder.grid_shape(config.image_size), config.max_caption_tokens,
                     DecodingOptions.from_config(config))


train_and_evaluate = job.whole_job(
    "captioning", load_corpus=load_corpus, train=train, make_exporter=make_captioner,
    evaluate=evaluate)

export_workdir = caption_training.workdir_export(
    build_model=build_model, source_spec=source_spec, make_exporter=make_captioner)
