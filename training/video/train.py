"""Train, evaluate and export a video captioner: `train_and_evaluate`."""

import os

import numpy as np
import tensorflow as tf

from training.core import batching, caption_training, job
from training.core import fitting
from training.core.decoding_options import DecodingOptions
from training.core.text import normalize
from training.video import data as data_lib
from training.video import evaluation, metrics
from training.video.export import VideoCaptioner
from training.video.model import build_model


def load_corpus(config):
    """The corpus the config names, as a `VideoCorpus`."""
    if config.data == "generated":
        corpus = data_lib.load_generated(
            config.train_clips, config.dev_clips, config.test_clips, config.data_seed,
            frame_size=config.frame_size,
            frame_count=(config.min_clip_frames, config.max_clip_frames),
            max_events=config.max_events, noise=config.clip_noise,
            reorder_fraction=config.reorder_fraction)
    else:
        corpus = data_lib.load_folder(config.clips_dir, config.captions_file, config.frame_size,
                                      max_frames=config.max_frames,
                                      skip_bad_lines=config.skip_bad_lines)
    kinds = {"frames" if example.frames is not None else "features"
             for split in (corpus.train, corpus.dev, corpus.test) for example in split}
    if kinds - {config.source}:
        raise data_lib.VideoDataError(
            f"{corpus.description}: the clips are {', '.join(sorted(kinds))}, the config says "
            f"source={config.source}; set source={next(iter(kinds - {config.source}))}")
    if config.max_train_examples:
        corpus.train = corpus.train[: config.max_train_examples]
    return corpus


def clip_array(example):
    """The clip's frames `[T, S, S, 3]` or features `[T, D]`."""
    return example.frames if example.frames is not None else example.features


def source_spec(config, feature_dim=None):
    """The `tf.TensorSpec`s of one training source: the clip and its length."""
    if config.source == "frames":
        clip = tf.TensorSpec([None, config.frame_size, config.frame_size, 3], tf.uint8)
    else:
        clip = tf.TensorSpec([None, feature_dim], tf.float32)
    return {config.source: clip, "lengths": tf.TensorSpec([], tf.int32)}


def encode_examples(examples, vocabulary, source):
    """One training example per (clip, caption): `(sources, targets_in, targets_out)`,
    each source `{source: clip, "lengths": T}`."""
    sources, captions = [], []
    for example in examples:
        clip = clip_array(example)
        for caption in example.captions:
            sources.append({source: clip, "lengths": np.int32(len(clip))})
            captions.append(caption)
    targets_in, targets_out = batching.encode_targets(captions, vocabulary)
    return sources, targets_in, targets_out


def feature_dim_of(corpus):
    """D of a features corpus (None for frames)."""
    example = corpus.train[0]
    return None if example.features is None else int(example.features.shape[-1])


def train(config, workdir, corpus=None, log=print, model_builder=build_model,
          optimizer_builder=fitting.default_optimizer, callbacks=()):
    """Trains the video captioner on the clips of `corpus` (None:
    `load_corpus(config)`), resuming where a run stopped; `model_builder(config,
    vocab_size, feature_dim)` lets benchmarks swap the model.

    Returns `(fit_result, vocabulary)`.
    """
    corpus = job.prepare_training(config, workdir, corpus, load_corpus, log)
    feature_dim = feature_dim_of(corpus)
    return caption_training.fit_captioner(
        config, workdir, corpus,
        encode_examples=lambda examples, vocabulary: encode_examples(examples, vocabulary,
                                                                     config.source),
        source_spec=source_spec(config, feature_dim),
        build_model=lambda vocab_size: model_builder(config, vocab_size, feature_dim),
        log=log, optimizer_builder=optimizer_builder, callbacks=callbacks)


def make_captioner(config, model, corpus, vocabulary):
    """The `VideoCaptioner` export module of a trained model (`corpus`: unused)."""
    return VideoCaptioner(model, vocabulary, config.max_caption_tokens,
                          frame_size=config.frame_size, max_frames=config.max_frames,
                          decoding=DecodingOptions.from_config(config))


def pad_clips(arrays):
    """Clips of different lengths -> one zero-padded batch `[B, T, ...]` and lengths `[B]`."""
    longest = max(len(array) for array in arrays)
    batch = np.zeros((len(arrays), longest, *arrays[0].shape[1:]), arrays[0].dtype)
    for row, array in enumerate(arrays):
        batch[row, :len(array)] = array
    return batch, np.array([len(array) for array in arrays], np.int32)


def run_clips(signature, arrays, batch_size, progress=True):
    """Runs a frames or features signature over clips, `batch_size` at a time.

    Returns one dict of numpy values per clip.
    """
    import keras

    bar = keras.utils.Progbar(len(arrays), unit_name="clip") if progress else None
    results = []
    for start in range(0, len(arrays), batch_size):
        clips, lengths = pad_clips(arrays[start:start + batch_size])
        output = {key: value.numpy() for key, value in signature(tf.constant(clips),
                                                                  tf.constant(lengths)).items()}
        results += [{key: value[row] for key, value in output.items()}
                    for row in range(len(clips))]
        if bar:
            bar.add(len(clips))
    return results


def caption_words(result):
    """The best caption of one output row as the words it decoded, space-separated."""
    tokens, length = result["tokens"], result["length"]
    if np.ndim(length):  # beam: the best hypothesis first
        tokens, length = tokens[0], length[0]
    return " ".join(token.decode("utf-8") for token in tokens[: int(length)])


def normalized_references(references):
    """Reference captions in the model's tokenization (`training.core.text.normalize`:
    lowercase, punctuation split off), so scores compare words with words."""
    flat = [reference for row in references for reference in row]
    normalized = [text.decode("utf-8") for text in normalize(tf.constant(flat)).numpy()]
    out, start = [], 0
    for row in references:
        out.append(normalized[start:start + len(row)])
        start += len(row)
    return out


def evaluate(config, captioner, corpus, workdir, log=print):
    """Caption metrics (greedy and beam), temporal localization, plots, hypotheses."""
    test = corpus.test[: config.max_eval_examples] if config.max_eval_examples else corpus.test
    arrays = [clip_array(example) for example in test]
    references = normalized_references([example.captions for example in test])

    def describe_greedy(results, hypotheses):
        described = {}
        if test and test[0].events is not None:
            described["localization"] = localization(results, test)
        described["plots"] = evaluation.draw_examples(
            results, arrays, os.path.join(workdir, "plots"), config.plot_examples)
        described["examples"] = caption_training.caption_examples(
            config, references, hypotheses,
            [result["attention"][: int(result["length"]), : int(result["frame_count"])]
             for result in results],
            evaluation.attention_text_view)
        return described

    report = {"test_clips": len(test), "model": config.model}
    report.update(caption_training.evaluate_greedy_and_beam(
        config, captioner, references,
        run=lambda signature: run_clips(signature, arrays, config.eval_batch_size,
                                        progress=log is print),
        hypothesis=caption_words, workdir=workdir, log=log, unit="clip",
        describe_greedy=describe_greedy))
    return report


def localization(results, test):
    """Temporal localization of greedy captions on generated clips: each event
    word's attention mass in its event's frame span, argmax hits, chance."""
    records = []
    for result, example in zip(results, test):
        length, frames = int(result["length"]), int(result["frame_count"])
        words = [word.decode("utf-8") for word in result["tokens"][:length]]
        attention = np.asarray(result["attention"])[:length, :frames]  # --> [T_out, T]
        records += metrics.temporal_localization(
            attention, metrics.word_events(words, example.events), example.events, frames,
            words=words)
    return metrics.summarize_localization(records)


train_and_evaluate = job.whole_job(
    "video", load_corpus=load_corpus, train=train, make_exporter=make_captioner,
    evaluate=evaluate)


def export_workdir(config, workdir):
    """`--export-only`: the finished workdir's model (trained on any backend)
    exported by TensorFlow. Returns the exported version's path."""
    # Features clips: their width D comes from the data (frames: none).
    feature_dim = feature_dim_of(load_corpus(config)) if config.source == "features" else None
    export = caption_training.workdir_export(
        build_model=lambda config, vocab_size: build_model(config, vocab_size, feature_dim),
        source_spec=lambda config: source_spec(config, feature_dim),
        make_exporter=make_captioner)
    return export(config, workdir)
