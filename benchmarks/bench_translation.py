"""Translation benchmarks on the bundled corpus, ours beside the reference.

    python -m benchmarks.bench_translation quality --seconds 390
    python -m benchmarks.bench_translation quality --seconds 390 --large-seconds 1800
    python -m benchmarks.bench_translation speed
    python -m benchmarks.bench_translation latency --workdir runs/translation-main-en-es

quality: trains the main preset and the reference (TensorFlow's
  nmt_with_attention architecture, benchmarks/reference_nmt.py: bidirectional
  GRU encoder, GRU decoder, attention after the RNN, 8,000 words, 256 units,
  batch 64, Adam) for the same wall-clock time on the same corpus and split,
  then scores both on the test split with the same decoding and sacrebleu.
speed: training target tokens/s of our fast path, our cell path (Bahdanau)
  and the reference at equal sizes, interleaved in one run.
latency: exported SavedModel, batch 1 and 64, greedy and beam.
"""

import argparse
import dataclasses
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import describe_machine, markdown_table  # noqa: E402

from benchmarks.reference_nmt import ReferenceNMT  # noqa: E402
from training.core import fitting  # noqa: E402
from training.translation import train as train_lib  # noqa: E402
from training.translation.config import PRESETS, TranslationConfig  # noqa: E402
from training.translation.export import Translator  # noqa: E402
from training.translation.pipeline import (  # noqa: E402
    drop_long_pairs, encode_pairs, make_dataset,
)

def dict_table(rows):
    return markdown_table(list(rows[0]), [list(row.values()) for row in rows])


def machine():
    return "\n".join(describe_machine())


REFERENCE_SIZES = dict(source_vocab_size=8000, target_vocab_size=8000, units=256,
                       embedding_dim=256, batch_size=64)


def preset(name, **changes):
    return dataclasses.replace(TranslationConfig(), **{**PRESETS[name], **changes})


def reference_builder(config, source_vocab_size, target_vocab_size):
    return ReferenceNMT(source_vocab_size, target_vocab_size, units=config.units)


def reference_optimizer(config, total_steps):
    return keras.optimizers.Adam()  # the tutorial's optimizer="adam"


def train_and_score(name, config, corpus, workdir, model_builder=train_lib.build_model,
                    optimizer_builder=fitting.default_optimizer):
    start = time.monotonic()
    fit_result, source_vocabulary, target_vocabulary = train_lib.train(
        config, workdir, corpus, log=print, model_builder=model_builder,
        optimizer_builder=optimizer_builder)
    model = fit_result.model
    seconds = time.monotonic() - start
    translator = Translator(model, source_vocabulary, target_vocabulary, config.max_target_tokens,
                            config.beam_width, config.length_penalty, config.num_hypotheses)
    report = train_lib.evaluate(config, translator, corpus, workdir, log=print)
    steps = int(model.optimizer.iterations.numpy())
    return {"model": name, "train s": round(seconds), "steps": steps,
            "BLEU greedy": report["greedy"]["bleu"],
            f"BLEU beam{config.beam_width}": report[f"beam{config.beam_width}"]["bleu"],
            "chrF greedy": report["greedy"]["chrf"],
            "signature": report["greedy"]["bleu_signature"]}


def quality(args):
    corpus = train_lib.load_corpus(TranslationConfig())
    rows = []
    root = args.workdir or tempfile.mkdtemp(prefix="bench_translation_")
    main = preset("main", max_train_seconds=args.seconds)
    rows.append(train_and_score("ours, preset main", main, corpus, os.path.join(root, "main")))
    reference = dataclasses.replace(
        main, **REFERENCE_SIZES, label_smoothing=0.0, dropout=0.0, early_stopping_patience=0)
    rows.append(train_and_score("reference (nmt_with_attention)", reference, corpus,
                                os.path.join(root, "reference"), reference_builder,
                                reference_optimizer))
    if args.large_seconds:
        large = preset("large", max_train_seconds=args.large_seconds)
        rows.append(train_and_score("ours, preset large", large, corpus,
                                    os.path.join(root, "large")))
    print(f"\n{machine()}\n")
    print(f"test pairs: {len(corpus.test)}; {rows[0]['signature']}\n")
    print(dict_table([{k: v for k, v in row.items() if k != "signature"} for row in rows]))


def speed(args):
    config = dataclasses.replace(preset("main"), **REFERENCE_SIZES)
    corpus = train_lib.load_corpus(config)
    workdir = tempfile.mkdtemp(prefix="bench_speed_")
    source_vocabulary, target_vocabulary = train_lib.vocabularies(config, corpus, workdir)
    encoded = drop_long_pairs(
        encode_pairs(corpus.train, source_vocabulary, target_vocabulary),
        config.max_train_tokens)
    dataset = make_dataset(encoded, config.batch_size, shuffle=True, seed=0, repeat=True)
    batches = list(dataset.take(args.steps))
    tokens = sum(int(np.sum(y.numpy() != 0)) for _, y in batches)
    models = {
        "ours fast path (additive)": train_lib.build_model(config, source_vocabulary.size,
                                                           target_vocabulary.size),
        "ours fast path (general)": train_lib.build_model(
            dataclasses.replace(config, attention="general"), source_vocabulary.size,
            target_vocabulary.size),
        "ours cell path (bahdanau)": train_lib.build_model(
            dataclasses.replace(config, decoder="bahdanau"), source_vocabulary.size,
            target_vocabulary.size),
        "reference": ReferenceNMT(source_vocabulary.size, target_vocabulary.size, config.units),
    }
    from training.core.fitting import MaskedSequenceLoss

    for model in models.values():
        model.compile(keras.optimizers.Adam(), MaskedSequenceLoss())
        model.fit(batches[0][0], batches[0][1], epochs=1, verbose=0)  # trace
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            for x, y in batches:
                model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    reference = tokens / np.median(times["reference"])
    rows = []
    for name in models:
        per_second = tokens / np.median(times[name])
        rows.append({"model": name, "target tokens/s": round(per_second),
                     "vs reference": f"{per_second / reference:.2f}x"})
    print(f"\n{machine()}\n")
    print(f"units 256, embeddings 256, vocab 8000, batch 64, {args.steps} batches "
          f"({tokens} target tokens) x {args.repeats} interleaved repeats, median\n")
    print(dict_table(rows))


def latency(args):
    path = os.path.join(args.workdir, "export", "translator", "1")
    translator = tf.saved_model.load(path)
    corpus = train_lib.load_corpus(TranslationConfig())
    sources = [s for s, _ in corpus.test]
    rows = []
    for batch in (1, 64):
        texts = tf.constant(sources[:batch])
        for name in ("serving_default", "beam_search"):
            function = translator.signatures[name]
            function(source_text=texts)  # warm up
            samples = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                function(source_text=texts)
                samples.append(time.perf_counter() - start)
            rows.append({"signature": name, "batch": batch,
                         "median ms": round(1000 * float(np.median(samples)), 1),
                         "ms per sentence": round(1000 * float(np.median(samples)) / batch, 1)})
    print(f"\n{machine()}\n\nSavedModel {path}\n")
    print(dict_table(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("quality", "speed", "latency"))
    parser.add_argument("--seconds", type=float, default=390.0, help="training time, quality")
    parser.add_argument("--large-seconds", type=float, default=0.0,
                        help="also train the large preset this long (quality)")
    parser.add_argument("--steps", type=int, default=20, help="batches per repeat (speed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", help="quality: where to train; latency: a trained workdir")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    {"quality": quality, "speed": speed, "latency": latency}[args.mode](args)


if __name__ == "__main__":
    main()
