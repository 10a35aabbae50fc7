"""Translation benchmarks on the bundled corpus, ours beside the reference.

    python -m benchmarks.bench_translation quality --seconds 390 --seeds 3
    python -m benchmarks.bench_translation speed --steps 20 --repeats 5
    python -m benchmarks.bench_translation latency --workdir runs/translation-main-en-es
    python -m benchmarks.bench_translation main --seeds 3 --workdir runs/bench-translation-main

The reference is TensorFlow's "nmt_with_attention" tutorial architecture
(benchmarks/reference_nmt.py: bidirectional GRU encoder with summed
directions, GRU decoder, one-head attention after the RNN with residual and
layer norm). As in the tutorial it has 256 units, embeddings of 256 and a
vocabulary of 5,000 words per language (the tutorial's
`TextVectorization(max_tokens=5000)`; special tokens included, as in ours).
Both models read the same tokenization and data pipeline (ours: lowercased
words, punctuation split off, training pairs of at most `max_train_tokens`
= 48 words), not the tutorial's own text preprocessing.

quality: separates what the training recipe gives from what the
  architecture gives. Four rows, each trained `--seeds` times for the same
  wall-clock `--seconds` on the same corpus and split (seeds interleaved:
  seed 1 of every row, then seed 2 ...):

    (a) ours, our recipe
    (b) reference architecture, reference recipe
    (c) reference architecture, our recipe
    (d) ours, reference recipe
    (e) ours, our recipe with the output layer trained by sampled
        softmax over 512 candidates at every step (a: for the first 600
        steps, then exactly, as the main preset)
    (f) ours, our recipe with the cosine decay ending at step 800
        (`decay_steps=800`) instead of the last step
    (g) ours, our recipe with the exact softmax at every step

  "ours" is the main preset (training/translation/config.py): bidirectional
  GRU encoder 2 x 128, GRU decoder 256, general (bilinear) attention,
  embeddings 256, vocabularies of 6,000 words per language; `--set
  FIELD=VALUE` changes the rows of our architecture. "reference" is the
  tutorial's sizes above.
  Our recipe (the main preset's): the output layer trained by sampled
  softmax over 512 candidates for 600 steps, then exactly (our
  architecture; the reference's output layer has no sampled softmax, so
  it trains exactly throughout), Adam 3e-3 with 100 warm-up steps and
  cosine decay over 18 x 100 steps, label smoothing 0.1, gradient norm
  clipping 5, early stopping after 4 validations (every 100 steps) without
  a dev loss gain and the best-dev-loss weights restored at the end.
  The reference recipe (the tutorial's): constant Adam 1e-3, no label
  smoothing, no clipping, last weights kept. The tutorial also stops after
  3 epochs without a dev loss gain (keeping the last weights); `fit` cannot
  stop early without restoring the best weights, so here it trains for the
  whole time budget (at most its 100 x 100 steps) and keeps the last ones.
  The budget is `fit`'s `max_train_seconds`: graph tracing and the dev
  validations (every 100 steps, both recipes) count in it.
  Rerun with the same `--workdir`, an interrupted benchmark reuses the runs
  that finished and starts the unfinished one over.
  Every row decodes through our exporter (`Translator`) with the same
  settings (printed), and is scored by sacrebleu, lowercased and cased,
  greedy and beam, as mean +- std [min..max] over the seeds.
speed: training target tokens/s of our fast path, our cell path (Bahdanau)
  and the reference at one size table (per-direction encoder units,
  decoder units, attention units and embeddings 256, vocabulary 5,000,
  batch 64; ours concatenates the two encoder directions, the reference
  sums them), on the same batches, warm-up then repeats interleaved.
latency: exported SavedModel, batch 1 and 64, greedy and beam.
main: the README's main job (`python -m training.translation`, its whole
  test set, `--set FIELD=VALUE` as there) once per seed, in
  `<workdir>/seed<N>`: steps, lowercased and cased BLEU, the outputs that
  repeat a word pair three times or more, and the words copied from the
  source (those the reference keeps too), with the mean ± sd over seeds.

A quality run under 60 s of training, or a speed run under 10 batches or
3 repeats, is a smoke run: it says so, and its numbers are not results.
"""

import argparse
import dataclasses
import gc
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import (  # noqa: E402
    describe_machine, main_preset_over_seeds, markdown_table, spread, time_interleaved,
    tf_sync,
)
from benchmarks.reference_nmt import ReferenceNMT  # noqa: E402
from training.core import config as config_lib  # noqa: E402
from training.core import fitting, losses  # noqa: E402
from training.core.encoders import RecurrentTextEncoder  # noqa: E402
from training.core.decoding_options import DecodingOptions  # noqa: E402
from training.core.recasing import Recaser  # noqa: E402
from training.core.seq2seq import AttentionSeq2Seq, build_decoder_cell  # noqa: E402
from training.translation import train as train_lib  # noqa: E402
from training.translation.config import PRESETS, TranslationConfig  # noqa: E402
from training.translation.export import Translator  # noqa: E402
from training.translation.pipeline import (  # noqa: E402
    drop_long_pairs, encode_pairs, make_dataset,
)

SMOKE_LINE = "SMOKE RUN: numbers are not results"
MIN_RESULT_SECONDS = 60.0

# The tutorial's model sizes (the reference ignores embedding_dim and
# attention_units: its embeddings and attention key size are `units`).
REFERENCE_SIZES = dict(units=256, embedding_dim=256, attention_units=256,
                       source_vocab_size=5000, target_vocab_size=5000)
# Ours: the main preset's sizes.
OUR_SIZES = {key: PRESETS["main"].get(key, getattr(TranslationConfig(), key)) for key in (
    "units", "embedding_dim", "attention", "attention_units", "source_vocab_size",
    "target_vocab_size")}

OUR_RECIPE_FIELDS = ("learning_rate", "warmup_steps", "epochs", "steps_per_epoch",
                     "early_stopping_patience", "sampled_softmax", "sampled_softmax_steps")
RECIPES = {
    # The main preset's, with TranslationConfig's label smoothing and clipping.
    "ours": dict(**{key: PRESETS["main"].get(key, getattr(TranslationConfig(), key))
                    for key in OUR_RECIPE_FIELDS},
                 label_smoothing=TranslationConfig().label_smoothing,
                 clipnorm=TranslationConfig().clipnorm),
    # The tutorial's: fit(epochs=100, steps_per_epoch=100) with optimizer="adam".
    "reference": dict(learning_rate=1e-3, warmup_steps=0, epochs=100, steps_per_epoch=100,
                      early_stopping_patience=0, label_smoothing=0.0, clipnorm=0.0),
}
# Ours with the output layer trained on each word and 512 sampled candidates
# at every step, or on every word at every step.
RECIPES["sampled"] = dict(RECIPES["ours"], sampled_softmax=512, sampled_softmax_steps=0)
RECIPES["exact"] = dict(RECIPES["ours"], sampled_softmax=0, sampled_softmax_steps=0)
# Ours with the cosine decay ending at step 800 instead of the last of 1,800.
RECIPES["decay800"] = dict(RECIPES["ours"], decay_steps=800)

# Speed: one size table for every model.
SPEED_SIZES = dict(units=256, attention_units=256, embedding_dim=256, batch_size=64,
                   dropout=0.0)


def dict_table(rows):
    return markdown_table(list(rows[0]), [list(row.values()) for row in rows])


def machine():
    return "\n".join(describe_machine())


def command_line():
    return "python -m benchmarks.bench_translation " + shlex.join(sys.argv[1:])


def print_header(smoke):
    """The command, the machine, and the smoke warning when it applies."""
    print(f"\ncommand: {command_line()}\n\n{machine()}\n")
    if smoke:
        print(f"{SMOKE_LINE}\n")


def print_table(rows, smoke):
    if smoke:
        print(SMOKE_LINE)
    print(dict_table(rows) + "\n")


def preset(name, **changes):
    return dataclasses.replace(TranslationConfig(), **{**PRESETS[name], **changes})


def count_parameters(model):
    """Trainable parameters of a built model."""
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


# ------------------------------------------------------------------ builders
def reference_builder(config, source_vocab_size, target_vocab_size):
    return ReferenceNMT(source_vocab_size, target_vocab_size, units=config.units)


def reference_optimizer(config, total_steps):
    """The tutorial's optimizer="adam": constant learning rate, no clipping
    (config.learning_rate 1e-3 and clipnorm 0 in the reference recipe)."""
    return keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm or None)


def ours_per_direction_builder(config, source_vocab_size, target_vocab_size, sampled_softmax=0):
    """Ours with `config.units` per encoder direction (our config's rnn
    encoder has units / 2 per direction), so the encoder matches the
    reference's: the memory is [B, S, 2 units], the decoder `config.units`."""
    encoder = RecurrentTextEncoder(
        source_vocab_size, config.embedding_dim, config.units, rnn_type=config.rnn_type,
        num_layers=config.encoder_layers, dropout=config.dropout, name="encoder")
    return AttentionSeq2Seq(
        encoder, target_vocab_size, config.embedding_dim, build_decoder_cell(config),
        fast_path="auto", dropout=config.dropout,
        attention_regularization=config.attention_regularization,
        sampled_softmax=sampled_softmax, name="translator")


ARCHITECTURES = {
    "ours": (OUR_SIZES, train_lib.build_model),
    "reference": (REFERENCE_SIZES, reference_builder),
}
OPTIMIZERS = {"ours": fitting.default_optimizer, "reference": reference_optimizer,
              "sampled": fitting.default_optimizer, "exact": fitting.default_optimizer,
              "decay800": fitting.default_optimizer}
QUALITY_ROWS = {  # key: (architecture, recipe)
    "a": ("ours", "ours"),
    "b": ("reference", "reference"),
    "c": ("reference", "ours"),
    "d": ("ours", "reference"),
    "e": ("ours", "sampled"),
    "f": ("ours", "decay800"),
    "g": ("ours", "exact"),
}


# ------------------------------------------------------------------ quality
def row_config(architecture, recipe, args, seed):
    """The config of one run; `--set FIELD=VALUE` changes the rows of our
    architecture only (the reference builds from its own sizes)."""
    sizes, _ = ARCHITECTURES[architecture]
    recipe_fields = dict(RECIPES[recipe])
    if architecture == "reference":  # its output layer has no sampled softmax
        recipe_fields["sampled_softmax"] = 0
    config = dataclasses.replace(
        preset("main"), **sizes, **recipe_fields, seed=seed, batch_size=64, dropout=0.0,
        max_train_seconds=args.seconds, max_eval_pairs=args.max_eval_pairs, plot_examples=0,
        no_repeat_ngram_size=args.no_repeat_ngram_size, recase=not args.no_recase)
    if architecture == "ours" and args.set:
        settings = dict(setting.split("=", 1) for setting in args.set)
        config = config_lib.check(config_lib.apply(config, settings, "--set"))
    return config


def train_and_score(config, architecture, recipe, corpus, workdir, recaser):
    _, builder = ARCHITECTURES[architecture]
    start = time.monotonic()
    fit_result, source_vocabulary, target_vocabulary = train_lib.train(
        config, workdir, corpus, log=print, model_builder=builder,
        optimizer_builder=OPTIMIZERS[recipe])
    model = fit_result.model
    wall = time.monotonic() - start
    translator = Translator(model, source_vocabulary, target_vocabulary, config.max_target_tokens,
                            DecodingOptions.from_config(config), recaser)
    start = time.monotonic()
    report = train_lib.evaluate(config, translator, corpus, workdir, log=print)
    beam = f"beam{config.beam_width}"
    return {"params": count_parameters(model), "steps": fit_result.steps,
            "train_s": fit_result.train_seconds, "wall_s": wall,
            "eval_s": time.monotonic() - start, "stopped_by": fit_result.stopped_by,
            "vocab": f"{source_vocabulary.size}/{target_vocabulary.size}",
            "greedy": report["greedy"]["bleu"], "greedy_cased": report["greedy"]["bleu_cased"],
            "beam": report[beam]["bleu"], "beam_cased": report[beam]["bleu_cased"],
            "test_pairs": report["test_pairs"], "signature": report["greedy"]["bleu_signature"]}


RESULT_FILE = "bench_result.json"


def finished_result(workdir, config):
    """The result a finished run of this very config left in `workdir`, else
    None: a rerun of the benchmark picks up where it stopped."""
    path = os.path.join(workdir, RESULT_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    # A field added since the run was saved had its default then.
    defaults = json.loads(json.dumps(dataclasses.asdict(TranslationConfig())))
    if {**defaults, **saved["config"]} != json.loads(json.dumps(dataclasses.asdict(config))):
        return None
    return saved["result"]


def quality(args):
    smoke = args.seconds < MIN_RESULT_SECONDS
    corpus = train_lib.load_corpus(TranslationConfig())
    recaser = Recaser.from_texts([t for _, t in corpus.train]) if not args.no_recase else None
    root = args.workdir or tempfile.mkdtemp(prefix="bench_translation_")
    seeds = [args.first_seed + i for i in range(args.seeds)]
    rows = [key for key in QUALITY_ROWS if key in args.rows]
    results = {key: [] for key in rows}
    for seed in seeds:  # interleaved, so load on the machine falls on every row alike
        for key in rows:
            architecture, recipe = QUALITY_ROWS[key]
            workdir = os.path.join(root, f"{key}-{architecture}-arch-{recipe}-recipe",
                                   f"seed{seed}")
            config = row_config(architecture, recipe, args, seed)
            result = finished_result(workdir, config)
            if result is None:
                if os.path.exists(workdir):
                    # An interrupted run: resuming it would split its time budget
                    # over two processes, so it starts over.
                    print(f"{workdir}: unfinished, starting it over")
                    shutil.rmtree(workdir)
                print(f"\n=== ({key}) {architecture} architecture, {recipe} recipe, "
                      f"seed {seed} ===")
                result = train_and_score(config, architecture, recipe, corpus, workdir,
                                         recaser)
                result["seed"] = seed
                with open(os.path.join(workdir, RESULT_FILE), "w", encoding="utf-8") as handle:
                    json.dump({"config": dataclasses.asdict(config), "result": result}, handle)
            else:
                print(f"({key}) seed {seed}: finished earlier, read from {workdir}")
            results[key].append(result)
            keras.backend.clear_session()
            gc.collect()

    first = results[rows[0]][0]
    decoding_fields = ("beam_width", "length_penalty", "num_hypotheses", "max_target_tokens",
                       "no_repeat_ngram_size", "eval_batch_size")
    settings = {tuple(getattr(row_config(*QUALITY_ROWS[key], args, seed), name)
                      for name in decoding_fields) for key in rows for seed in seeds}
    assert len(settings) == 1, f"rows decode differently: {settings}"
    shared = row_config(*QUALITY_ROWS[rows[0]], args, seeds[0])
    beam = f"beam{shared.beam_width}"
    decoding = (f"greedy and beam {shared.beam_width} (length penalty {shared.length_penalty}),"
                f" max {shared.max_target_tokens} words, "
                f"no_repeat_ngram_size={shared.no_repeat_ngram_size}, "
                f"recaser={'on (from the training targets)' if recaser else 'off'}, unknown "
                f"words copied from the most attended source word")
    print_header(smoke)
    print(f"corpus: {corpus.summary()}; test pairs scored: {first['test_pairs']}; "
          f"training time per run: {args.seconds:g} s; seeds: {seeds}")
    print(f"decoding (every row, our Translator): {decoding}")
    print(f"BLEU: sacrebleu corpus BLEU, lowercased ({first['signature']}) and cased\n")
    print("rows:")
    for key in rows:
        architecture, recipe = QUALITY_ROWS[key]
        print(f"  ({key}) {architecture} architecture ({describe_sizes(architecture)}), "
              f"{recipe} recipe ({describe_recipe(recipe)})")
    if args.set:
        print(f"  our architecture's rows changed by: {' '.join(args.set)}")
    print()

    print("per run:")
    print_table([{"row": key, "seed": r["seed"], "params": f"{r['params']:,}",
                  "vocab src/tgt": r["vocab"], "steps": r["steps"], "train s": r["train_s"],
                  "stopped by": r["stopped_by"], "greedy": r["greedy"],
                  "greedy cased": r["greedy_cased"], beam: r["beam"],
                  f"{beam} cased": r["beam_cased"], "eval s": round(r["eval_s"])}
                 for key in rows for r in results[key]], smoke)

    def seeds_spread(key, metric, digits=2):
        return spread([r[metric] for r in results[key]], digits, with_range=True)

    print(f"setup, over {len(seeds)} seed(s):")
    print_table([{"row": key, "architecture": QUALITY_ROWS[key][0],
                  "recipe": QUALITY_ROWS[key][1],
                  "vocab src/tgt": results[key][0]["vocab"],
                  "params": f"{results[key][0]['params']:,}",
                  "steps": seeds_spread(key, "steps", 0),
                  "train s": seeds_spread(key, "train_s", 0),
                  "stopped by": ", ".join(sorted({r["stopped_by"] for r in results[key]}))}
                 for key in rows], smoke)

    print(f"test BLEU, mean ± std [min..max] over {len(seeds)} seed(s):")
    print_table([{"row": key, "greedy (lc)": seeds_spread(key, "greedy"),
                  "greedy (cased)": seeds_spread(key, "greedy_cased"),
                  f"{beam} (lc)": seeds_spread(key, "beam"),
                  f"{beam} (cased)": seeds_spread(key, "beam_cased")}
                 for key in rows], smoke)

    def mean(key, metric):
        return statistics.fmean(r[metric] for r in results[key])

    differences = [("recipe, on our architecture", "a", "d"),
                   ("recipe, on the reference architecture", "c", "b"),
                   ("architecture, with our recipe", "a", "c"),
                   ("architecture, with the reference recipe", "d", "b"),
                   ("both (ours as trained vs the tutorial as trained)", "a", "b")]
    lines = [{"what changes": name, "rows": f"{x} - {y}",
              "greedy (lc)": f"{mean(x, 'greedy') - mean(y, 'greedy'):+.2f}",
              f"{beam} (lc)": f"{mean(x, 'beam') - mean(y, 'beam'):+.2f}"}
             for name, x, y in differences if x in results and y in results]
    if lines:
        print("differences of the mean BLEU (first row minus second):")
        print_table(lines, smoke)
    print("notes: 'ours' is the main preset's architecture and sizes, 'reference' the "
          "tutorial's, so the architecture rows compare each model at its own sizes "
          "(parameter counts above). The reference recipe has no early stopping: fit() "
          "cannot stop early without restoring the best weights, and the tutorial keeps "
          "the last ones. The time budget is fit()'s: it runs from the start of training, "
          "so graph tracing (about 20 s a model on 2 CPU cores) and the dev validations "
          "every 100 steps are inside it, for every row alike; a run stops at the first "
          "batch end past it and then validates once more ('train s' shows the overshoot).")
    if smoke:
        print(SMOKE_LINE)
    print(f"workdirs: {root}")


def describe_sizes(architecture):
    sizes, _ = ARCHITECTURES[architecture]
    vocab = f"vocab {sizes['source_vocab_size']}/{sizes['target_vocab_size']}"
    if architecture == "reference":
        return (f"encoder bi-GRU {sizes['units']} per direction (summed), decoder GRU "
                f"{sizes['units']}, 1-head attention {sizes['units']}, embeddings "
                f"{sizes['units']}, {vocab}")
    attention = (f"additive attention {sizes['attention_units']}"
                 if sizes["attention"] == "additive" else f"{sizes['attention']} attention")
    return (f"main preset: encoder bi-GRU {sizes['units'] // 2} per direction (concatenated), "
            f"decoder GRU {sizes['units']}, {attention}, embeddings {sizes['embedding_dim']}, "
            f"{vocab}")


def describe_recipe(recipe):
    r = RECIPES[recipe]
    if recipe in ("ours", "sampled", "exact", "decay800"):
        sampled = ", the exact softmax"
        if r.get("sampled_softmax"):
            sampled = (f", sampled softmax over {r['sampled_softmax']} candidates (ours only)"
                       + (f" for {r['sampled_softmax_steps']} steps, then the exact softmax"
                          if r.get("sampled_softmax_steps") else ""))
        horizon = (f"{r['decay_steps']} steps" if r.get("decay_steps")
                   else f"{r['epochs']} x {r['steps_per_epoch']} steps")
        return (f"Adam {r['learning_rate']:g}, {r['warmup_steps']} warm-up steps, cosine "
                f"decay over {horizon}, label smoothing "
                f"{r['label_smoothing']:g}, clipnorm {r['clipnorm']:g}, early stopping "
                f"(patience {r['early_stopping_patience']}) restoring the best dev weights"
                f"{sampled}")
    return (f"constant Adam {r['learning_rate']:g}, no label smoothing, no clipping, at most "
            f"{r['epochs']} x {r['steps_per_epoch']} steps, last weights kept")


# ------------------------------------------------------------------ speed
SPEED_SAMPLED = 512  # candidates of the sampled softmax row


def speed(args):
    smoke = args.steps < 10 or args.repeats < 3
    config = dataclasses.replace(preset("main"), **SPEED_SIZES,
                                 source_vocab_size=args.vocab, target_vocab_size=args.vocab)
    corpus = train_lib.load_corpus(config)
    workdir = tempfile.mkdtemp(prefix="bench_speed_")
    source_vocabulary, target_vocabulary = train_lib.vocabularies(config, corpus, workdir)
    encoded = drop_long_pairs(
        encode_pairs(corpus.train, source_vocabulary, target_vocabulary),
        config.max_train_tokens)
    dataset = make_dataset(encoded, config.batch_size, shuffle=True, seed=0, repeat=True)
    batches = list(dataset.take(args.steps))
    tokens = sum(int(np.sum(y.numpy() != 0)) for _, y in batches)
    sizes = (source_vocabulary.size, target_vocabulary.size)
    fast_name = f"ours fast path ({config.attention})"
    models = {
        fast_name: ours_per_direction_builder(config, *sizes),
        f"ours fast path, sampled softmax {SPEED_SAMPLED}": ours_per_direction_builder(
            config, *sizes, sampled_softmax=SPEED_SAMPLED),
        "ours cell path (bahdanau)": ours_per_direction_builder(
            dataclasses.replace(config, decoder="bahdanau"), *sizes),
        "reference": ReferenceNMT(*sizes, units=config.units),
    }
    parameters = {}
    for name, model in models.items():
        model.compile(keras.optimizers.Adam(), losses.MaskedSequenceLoss())
        model(batches[0][0])  # builds every weight
        parameters[name] = count_parameters(model)

    def run_all(model):
        def run():
            for x, y in batches:
                model.train_on_batch(x, y)
        return run

    times = time_interleaved({name: run_all(model) for name, model in models.items()},
                             repeats=args.repeats, warmup=args.warmup, sync=tf_sync)
    rates = {name: tokens / statistics.median(samples) for name, samples in times.items()}
    fast, cell, reference = (rates[fast_name],
                             rates["ours cell path (bahdanau)"], rates["reference"])
    rows = [{"model": name, "params": f"{parameters[name]:,}",
             "target tokens/s": round(rates[name]),
             "ms / batch": round(1000 * statistics.median(times[name]) / args.steps, 1),
             "vs reference": f"{rates[name] / reference:.2f}x",
             "vs cell path": f"{rates[name] / cell:.2f}x"} for name in models]
    print_header(smoke)
    ours_attention = config.attention + (f" {config.attention_units}"
                                         if config.attention == "additive" else "")
    print(f"sizes (every model): encoder bi-GRU {config.units} per direction (ours "
          f"concatenates the directions, the reference sums them), decoder GRU {config.units}, "
          f"attention (ours {ours_attention}, the reference 1-head key_dim {config.units}), "
          f"embeddings {config.embedding_dim}, vocab "
          f"{sizes[0]}/{sizes[1]}, batch {config.batch_size}; Adam, masked cross-entropy (the "
          f"sampled row: over its {SPEED_SAMPLED} candidates)")
    print(f"{args.steps} batches ({tokens} target tokens) per call; 1 + {args.warmup} warm-up "
          f"calls, then {args.repeats} timed calls each, interleaved; median\n")
    print_table(rows, smoke)
    sampled = rates[f"ours fast path, sampled softmax {SPEED_SAMPLED}"]
    print(f"{speed_sentence('fast path with sampled softmax', sampled, 'reference', reference)} "
          f"{speed_sentence('fast path', fast, 'reference', reference)} "
          f"{speed_sentence('fast path', fast, 'cell path', cell)}")
    if smoke:
        print(SMOKE_LINE)


def speed_sentence(name, rate, other, other_rate):
    ratio = rate / other_rate
    verb = "trains faster than" if ratio >= 1 else "trains slower than"
    return (f"Our {name} {verb} the {other}: {ratio:.2f}x its target tokens per second "
            f"({100 * (ratio - 1):+.0f}%).")


# --------------------------------------------------------------------- main
def main_job(args):
    root = args.workdir or tempfile.mkdtemp(prefix="bench_translation_main_")
    seeds = [args.first_seed + i for i in range(args.seeds)]
    runs = main_preset_over_seeds(train_lib, TranslationConfig, PRESETS, seeds, args.set, root)
    beam = f"beam{runs[0][0].beam_width}"

    def cell(value, digits):  # a score to `digits` places, a count as it is
        return f"{value:.{digits}f}" if isinstance(value, float) else value

    columns = {  # header: (the report's value, digits of its mean ± sd)
        "steps": (lambda r: r["training"]["steps"], 0),
        "greedy BLEU": (lambda r: r["greedy"]["bleu"], 2),
        "greedy cased": (lambda r: r["greedy"]["bleu_cased"], 2),
        f"{beam} BLEU": (lambda r: r[beam]["bleu"], 2),
        f"{beam} cased": (lambda r: r[beam]["bleu_cased"], 2),
        "greedy outputs repeating a pair": (lambda r: r["greedy"]["looping_outputs"], 1),
        "greedy words copied": (lambda r: r["greedy"]["copied_words"]["copied"], 0),
        "of them kept by the reference": (
            lambda r: r["greedy"]["copied_words"]["copied_kept"], 0),
    }
    reports = [report for _, report in runs]
    rows = [[seed] + [cell(value(report), digits) for value, digits in columns.values()]
            for seed, report in zip(seeds, reports)]
    rows.append(["mean ± sd"] + [spread([value(r) for r in reports], digits)
                                 for value, digits in columns.values()])
    print_header(smoke=False)
    print(f"preset main{''.join(' --set ' + s for s in args.set)}, "
          f"{reports[0]['test_pairs']} test pairs, {reports[0]['parameters']:,} parameters\n")
    print(markdown_table(["seed", *columns], rows))


# ------------------------------------------------------------------ latency
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
    print_header(args.repeats < 3)
    print(f"SavedModel {path}\n")
    print_table(rows, args.repeats < 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("quality", "speed", "latency", "main"))
    parser.add_argument("--seconds", type=float, default=390.0,
                        help="quality: training time of every run (< 60: a smoke run)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="quality: runs per row; main: runs")
    parser.add_argument("--first-seed", type=int, default=TranslationConfig().seed,
                        help="quality, main: seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="main: a config field of the main preset; quality: of the rows of "
                             "our architecture (repeatable)")
    parser.add_argument("--rows", default="abcdefg", help="quality: which rows (default abcdefg)")
    parser.add_argument("--max-eval-pairs", type=int, default=0,
                        help="quality: score the first N test pairs (0: all)")
    parser.add_argument("--no-repeat-ngram-size", type=int,
                        default=TranslationConfig().no_repeat_ngram_size,
                        help="quality: decoding's repetition guard, every row (0: off)")
    parser.add_argument("--no-recase", action="store_true",
                        help="quality: decode without the recaser (every row)")
    parser.add_argument("--steps", type=int, default=20, help="speed: batches per call")
    parser.add_argument("--warmup", type=int, default=1, help="speed: untimed calls after "
                        "the first (tracing) one")
    parser.add_argument("--vocab", type=int, default=REFERENCE_SIZES["source_vocab_size"],
                        help="speed: source and target vocabulary size")
    parser.add_argument("--repeats", type=int, default=3, help="speed, latency: timed calls")
    parser.add_argument("--workdir", help="quality, main: where to train; latency: a trained "
                                          "workdir")
    args = parser.parse_args()
    if not args.seeds >= 1 or not set(args.rows) <= set(QUALITY_ROWS) or not args.rows:
        parser.error("--seeds must be >= 1 and --rows a subset of abcdefg")
    if any("=" not in setting for setting in args.set):
        parser.error(f"--set takes FIELD=VALUE; received {args.set}")
    if args.mode == "quality":
        try:  # a bad --set fails before any corpus is read
            for key in args.rows:
                row_config(*QUALITY_ROWS[key], args, args.first_seed)
        except config_lib.ConfigError as error:
            parser.error(str(error))
    keras.utils.set_random_seed(0)
    {"quality": quality, "speed": speed, "latency": latency, "main": main_job}[args.mode](args)


if __name__ == "__main__":
    main()
