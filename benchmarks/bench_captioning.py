"""Image captioning benchmarks, each printing a markdown table.

    python -m benchmarks.bench_captioning speed --steps 10 --repeats 5
    python -m benchmarks.bench_captioning latency --workdir runs/captioning-main --repeats 5
    python -m benchmarks.bench_captioning quality --seeds 1 2 3 [--attention-supervision 1]
    python -m benchmarks.bench_captioning quality --seeds 1 2 3 --set decay_steps=550

speed: training images per second of ours (Show, Attend and Tell decoder:
keys projected once per image) against the TensorFlow tutorial's design
(`benchmarks/reference_captioner.py`: the feature projection recomputed at
every step), on the same CNN, sizes, optimizer, loss and batches, steps
interleaved; each model's parameter count is printed.
latency: the exported SavedModel at batch 1 and 32, greedy and beam.
quality: the main preset over several seeds (model and data order; the
generated data set is fixed), mean and spread of exact match, BLEU-4,
CIDEr-D and localization beside chance; `--set FIELD=VALUE` changes the
preset, as on `python -m training.captioning`.
"""

import argparse
import dataclasses
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import (  # noqa: E402
    describe_machine, main_preset_over_seeds, markdown_table, median_ms, spread,
    time_interleaved)
from benchmarks.reference_captioner import TutorialCaptioner  # noqa: E402
from training.captioning import train as train_lib  # noqa: E402
from training.captioning.config import PRESETS, CaptioningConfig  # noqa: E402
from training.captioning.model import build_encoder, build_model  # noqa: E402
from training.core import batching, losses  # noqa: E402
from training.core.text import load_or_build_vocabulary  # noqa: E402


def preset(name, **changes):
    return dataclasses.replace(CaptioningConfig(), **{**PRESETS[name], **changes})


def speed(args):
    config = preset("main", train_scenes=2000, dev_scenes=8, test_scenes=8)
    corpus = train_lib.load_corpus(config)
    workdir = tempfile.mkdtemp(prefix="bench_captioning_")
    vocabulary = load_or_build_vocabulary(
        os.path.join(workdir, "vocabulary.json"), [e.captions[0] for e in corpus.train],
        config.vocab_size, config.max_caption_tokens)
    examples = train_lib.encode_examples(corpus.train, vocabulary)
    spec = tf.TensorSpec([config.image_size] * 2 + [3], tf.uint8)
    batches = list(batching.make_dataset(examples, config.batch_size, shuffle=True, seed=0,
                                         repeat=True, source_spec=spec).take(args.steps))
    keras.utils.set_random_seed(0)
    models = {
        "ours (Show, Attend and Tell cell)": build_model(config, vocabulary.size),
        "ours, no gate": build_model(dataclasses.replace(config, context_gate=False),
                                     vocabulary.size),
        "reference (tutorial design)": TutorialCaptioner(
            build_encoder(config), vocabulary.size, config.embedding_dim, config.units),
    }
    steps = {}
    for name, model in models.items():
        model.compile(keras.optimizers.Adam(1e-3), losses.MaskedSequenceLoss(0.1))
        model(batches[0][0])

        def run(model=model):
            for x, y in batches:
                model.train_on_batch(x, y)

        steps[name] = run
    times = time_interleaved(steps, repeats=args.repeats, warmup=1)
    images = args.steps * config.batch_size
    reference = median_ms(times["reference (tutorial design)"])
    rows = [[name, f"{models[name].count_params():,}", f"{images / median_ms(t) * 1000:.1f}",
             f"{reference / median_ms(t):.2f}x"] for name, t in times.items()]
    print("\n".join(describe_machine()))
    print(f"\n{args.steps} steps of batch {config.batch_size}, {config.image_size}px images, "
          f"units {config.units}, embeddings {config.embedding_dim}, vocabulary "
          f"{vocabulary.size}; median of {args.repeats} interleaved repeats\n")
    print(markdown_table(["model", "parameters", "images/s", "vs reference"], rows))


def latency(args):
    config = CaptioningConfig(**json.load(open(os.path.join(args.workdir, "config.json"))))
    path = os.path.join(args.workdir, "export", config.export_name, str(config.export_version))
    captioner = tf.saved_model.load(path)
    test = train_lib.load_corpus(dataclasses.replace(config, train_scenes=1, dev_scenes=1)).test
    encoded = train_lib.encode_png([example.image for example in test[:32]])
    candidates = {}
    for batch in (1, 32):
        inputs = tf.constant(encoded[:batch])
        for name in ("serving_default", "beam_search"):
            function = captioner.signatures[name]
            candidates[(name, batch)] = lambda f=function, x=inputs: f(image_bytes=x)
    times = time_interleaved(candidates, repeats=args.repeats, warmup=2)
    rows = [[name, batch, f"{median_ms(t):.1f}", f"{median_ms(t) / batch:.1f}"]
            for (name, batch), t in times.items()]
    print("\n".join(describe_machine()))
    print(f"\nSavedModel {path} (beam width {config.beam_width})\n")
    print(markdown_table(["signature", "batch", "median ms", "ms per image"], rows))


def quality(args):
    root = args.workdir or tempfile.mkdtemp(prefix="bench_captioning_quality_")
    runs = main_preset_over_seeds(
        train_lib, CaptioningConfig, PRESETS, args.seeds,
        [*args.set, f"attention_supervision={args.attention_supervision}"], root)
    reports, rows = [report for _, report in runs], []
    for seed, report in zip(args.seeds, reports):
        loc = report["localization"]
        rows.append([seed, report["training"]["steps"], f"{report['greedy']['exact_match']:.1f}",
                     f"{report['greedy']['bleu4']:.1f}", f"{report['greedy']['cider_d']:.1f}",
                     f"{loc['hit_rate']:.3f} ({loc['hit_chance']:.3f})",
                     f"{loc['mass']:.3f} ({loc['chance']:.3f})"])

    greedy = [r["greedy"] for r in reports]
    rows.append(["mean ± sd", "", spread([g["exact_match"] for g in greedy]),
                 spread([g["bleu4"] for g in greedy]), spread([g["cider_d"] for g in greedy]),
                 spread([r["localization"]["hit_rate"] for r in reports]),
                 spread([r["localization"]["mass"] for r in reports])])
    print("\n".join(describe_machine()))
    print(f"\npreset main{''.join(' --set ' + s for s in args.set)}, "
          f"attention_supervision {args.attention_supervision}, "
          f"{reports[0]['test_images']} generated test scenes, greedy\n")
    print(markdown_table(["seed", "steps", "exact match %", "BLEU-4", "CIDEr-D",
                          "argmax in object (chance)", "mass in object (chance)"], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("speed", "latency", "quality"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--workdir", help="latency: a trained workdir; quality: where to train")
    parser.add_argument("--attention-supervision", type=float, default=0.0,
                        help="quality: the config's attention_supervision (0: off)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="quality: a config field of the main preset (repeatable)")
    args = parser.parse_args()
    {"speed": speed, "latency": latency, "quality": quality}[args.mode](args)


if __name__ == "__main__":
    main()
