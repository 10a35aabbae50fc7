"""Training speed by precision and backend, and where a training step's time goes.

    python -m benchmarks.bench_precision                    # main preset, 40 timed steps
    python -m benchmarks.bench_precision --bleu --seeds 1,2,3   # equal time, 390 s a run
    python -m benchmarks.bench_precision --quick            # smoke: tiny preset, 3 steps

Rows: {tensorflow, jax} x {float32, mixed_bfloat16}. Each row runs in a
subprocess (the backend is fixed when Keras is imported), trains the
translation model of `--preset` on the bundled corpus through the training
pipeline (`training.translation.train.train`), and reports target tokens
(non-padding labels) per second over the timed steps, after `--warmup`
steps (compilation, tracing) that are not counted; a timed step whose batch
shape (length bucket) no earlier step had is not counted either (JAX
compiles anew for it), on every backend alike. With `--bleu`, each row
instead trains for `--seconds` of wall-clock time (the preset's
`max_train_seconds`) and reports the target tokens it trained per second of
that time (compilation included) and greedy test BLEU: quality at equal
training time, for each of `--seeds` (initialisation and batch order), with
the mean ± sd over seeds. Each finished run is appended to `--results`
(JSON lines) as it ends; a rerun with the same preset and seconds reuses the
runs found there, so an interrupted benchmark loses at most one run.

Then a profile of one training step (TensorFlow backend, float32 and
mixed_bfloat16): the median time of the encoder forward, the decoder
forward (embedding + attention recurrence), the output projection + loss,
and the whole step with gradients and the optimizer, each a separate
`tf.function` timed on the same batch; "backward + optimizer" is the step
minus the forward parts.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = [("tensorflow", "float32"), ("tensorflow", "mixed_bfloat16"),
        ("jax", "float32"), ("jax", "mixed_bfloat16")]


def child(args):
    """One row, in this process (KERAS_BACKEND set by the parent)."""
    import keras
    import numpy as np

    from training.core import config as config_lib
    from training.translation import train as train_lib
    from training.translation.config import PRESETS, TranslationConfig

    overrides = [f"precision={args.precision}", "early_stopping_patience=0"]
    if args.seed is not None:
        overrides += [f"seed={args.seed}"]
    if args.bleu:
        overrides += [f"max_train_seconds={args.seconds}"]
    else:
        steps = args.warmup + args.steps
        overrides += [f"steps_per_epoch={steps}", "epochs=1", f"checkpoint_steps={steps}",
                      "max_train_seconds=0"]
    config = config_lib.load(TranslationConfig, PRESETS, args.preset, None, overrides)

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.tokens = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    clock = Clock()
    workdir = tempfile.mkdtemp(prefix="bench_precision_")
    corpus = train_lib.load_corpus(config)
    result, source_vocabulary, target_vocabulary = train_lib.train(
        config, workdir, corpus, log=lambda *a: None, callbacks=[clock])
    out = {"backend": keras.backend.backend(), "precision": args.precision,
           "steps": result.steps, "seed": config.seed}
    # Target tokens of the batches trained: the same stream the run read.
    from training.translation.pipeline import drop_long_pairs, encode_pairs, make_dataset

    encoded = drop_long_pairs(encode_pairs(corpus.train, source_vocabulary,
                                           target_vocabulary), config.max_train_tokens)
    stream = make_dataset(encoded, config.batch_size, shuffle=True, seed=config.seed,
                          repeat=True)
    batches = [y.numpy() for _, y in stream.take(result.steps)]
    tokens = [int(np.sum(y != 0)) for y in batches]
    if args.bleu:
        out["tokens_per_second"] = sum(tokens) / result.train_seconds
        from training.core import evaluation as core_evaluation

        out["train_seconds"] = result.train_seconds
        if keras.backend.backend() == "tensorflow":
            translator = train_lib.make_translator(config, result.model, corpus,
                                                   source_vocabulary, target_vocabulary)
        else:
            from training.core import backend_export
            from training.core.export import LoadedExport

            result.model.save(os.path.join(workdir, "model.keras"))
            translator = LoadedExport(backend_export.export_in_tensorflow(
                "translation", workdir, log=lambda *a: 0))
        test = corpus.test[: config.max_eval_pairs] if config.max_eval_pairs else corpus.test
        outputs = core_evaluation.run_in_batches(translator.greedy, [s for s, _ in test],
                                                 config.eval_batch_size, progress=False)
        scores = core_evaluation.score_text([core_evaluation.best_text(r) for r in outputs],
                                            [t for _, t in test])
        out["bleu"] = scores["bleu"]
    else:
        # JAX compiles a step for each new batch shape (length bucket): a
        # timed step whose shape came first is left out, on every backend.
        seen, steady = set(), []
        for step, y in enumerate(batches):
            if step >= args.warmup and y.shape in seen:
                steady.append(step)
            seen.add(y.shape)
        steady = steady or list(range(args.warmup, len(batches)))  # --quick: too few steps
        out["tokens_per_second"] = (sum(tokens[i] for i in steady)
                                    / sum(clock.times[i] for i in steady))
        out["ms_per_step"] = 1000 * float(np.median([clock.times[i] for i in steady]))
        out["timed_steps"] = len(steady)
        out["batch_shapes"] = len(seen)
    shutil.rmtree(workdir)  # checkpoints and export: tens of MB a row
    print("RESULT " + json.dumps(out), flush=True)


def profile(args):
    """Median ms of the parts of one float32 / mixed_bfloat16 step (TensorFlow)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.common import median_ms, time_interleaved
    from training.core import config as config_lib
    from training.core import devices, fitting, losses
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.model import build_model

    rows = []
    for precision in ("float32", "mixed_bfloat16"):
        config = config_lib.load(TranslationConfig, PRESETS, args.preset, None,
                                 [f"precision={precision}"])
        devices.apply_precision(config)
        rng = np.random.default_rng(0)
        source = rng.integers(4, config.source_vocab_size, (config.batch_size, 30)).astype("int32")
        target = rng.integers(4, config.target_vocab_size, (config.batch_size, 31)).astype("int32")
        inputs = {"source": source, "target_in": target[:, :-1]}
        labels = target[:, 1:]
        model = build_model(config, config.source_vocab_size, config.target_vocab_size)
        loss_fn = losses.MaskedSequenceLoss(config.label_smoothing)
        model.compile(fitting.default_optimizer(config, 1000), loss_fn)
        model(inputs)
        model.optimizer.build(model.trainable_variables)
        memory = model.encode(source)

        @tf.function
        def encoder():
            return model.encode(source, training=True)

        @tf.function
        def decoder():
            embedded = model.target_embedding(inputs["target_in"])
            return model.decoder(embedded, memory[0], memory_mask=memory[1],
                                 inputs_mask=inputs["target_in"] != 0, training=True)

        outputs = decoder()

        @tf.function
        def projection_and_loss():
            logits = model.output_projection(outputs)
            return loss_fn(labels, keras.ops.cast(logits, "float32"))

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(inputs, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply(grads, model.trainable_variables)
            return loss

        parts = {"encoder": encoder, "decoder recurrence": decoder,
                 "projection + loss": projection_and_loss, "whole step": train_step}
        times = time_interleaved(parts, repeats=args.profile_repeats, warmup=1)
        ms = {name: median_ms(times[name]) for name in parts}
        ms["backward + optimizer"] = ms["whole step"] - sum(
            ms[k] for k in ("encoder", "decoder recurrence", "projection + loss"))
        rows.append((precision, ms))
        keras.config.set_dtype_policy("float32")
    return rows


def run_child(args, backend, precision, seed):
    """One row (and seed) in a subprocess: its RESULT dict, or an error line."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax":
        env.setdefault("JAX_PLATFORMS", "cpu")
    command = [sys.executable, "-m", "benchmarks.bench_precision", "--preset", args.preset,
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--seconds", str(args.seconds), "--child", precision]
    command += ["--bleu"] * args.bleu + (["--seed", str(seed)] if seed is not None else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80]
    return json.loads(lines[-1][len("RESULT "):])


def bleu_table(args, rows):
    """BLEU at equal time, each row over the seeds; runs kept in --results."""
    from benchmarks.common import markdown_table, spread

    key = {"preset": args.preset, "seconds": args.seconds}
    kept = []
    if os.path.exists(args.results):
        with open(args.results) as f:
            kept = [json.loads(line) for line in f if line.strip()]
    runs = {}
    for seed in args.seeds:  # seed by seed: every row sees the same machine drift
        for backend, precision in rows:
            found = [r for r in kept if r.get("key") == key and r["backend"] == backend
                     and r["precision"] == precision and r["seed"] == seed]
            result = found[-1] if found else run_child(args, backend, precision, seed)
            if isinstance(result, str):
                print(f"{backend} {precision} seed {seed}: {result}", flush=True)
                continue
            if not found:
                with open(args.results, "a") as f:
                    f.write(json.dumps(dict(result, key=key)) + "\n")
            print(f"{backend} {precision} seed {seed}: {result['steps']} steps, "
                  f"{result['tokens_per_second']:.0f} tokens/s, BLEU {result['bleu']:.2f}"
                  + (" (kept)" if found else ""), flush=True)
            runs.setdefault((backend, precision), []).append(result)
    def mean(results, field):
        return statistics.fmean(r[field] for r in results)

    base = runs.get(("tensorflow", "float32"))
    table = []
    for (backend, precision), results in runs.items():
        table.append([
            backend, precision, len(results), spread([r["steps"] for r in results], 0),
            spread([r["tokens_per_second"] for r in results], 0),
            f"{mean(results, 'tokens_per_second') / mean(base, 'tokens_per_second'):.2f}x"
            if base else "",
            spread([r["bleu"] for r in results], 2, with_range=True),
            f"{mean(results, 'bleu') - mean(base, 'bleu'):+.2f}" if base else ""])
    print(f"\nmean ± sd over seeds, {args.seconds:.0f} s of training a run:")
    print(markdown_table(["backend", "precision", "seeds", "steps", "target tokens/s",
                          "vs TF float32", "greedy BLEU [min..max]", "BLEU vs TF float32"],
                         table))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="main")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--bleu", action="store_true", help="BLEU at equal training time")
    parser.add_argument("--seconds", type=float, default=390.0)
    parser.add_argument("--seeds", default="",
                        help="with --bleu: comma-separated seeds (default: the preset's)")
    parser.add_argument("--results", default="bench_precision_runs.jsonl",
                        help="with --bleu: finished runs, appended and reused")
    parser.add_argument("--profile-repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny preset, 2 + 1 steps, 2 profile repeats")
    parser.add_argument("--rows", default=",".join(f"{b}:{p}" for b, p in ROWS),
                        help="comma-separated BACKEND:PRECISION rows (default: all four)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # precision of a child row
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # a child's seed
    parser.add_argument("--profile-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.preset, args.steps, args.warmup, args.profile_repeats = "tiny", 2, 1, 2
        args.seconds = min(args.seconds, 20.0)
    if args.child:
        args.precision = args.child
        return child(args)
    if args.profile_only:
        for precision, ms in profile(args):
            print("PROFILE " + json.dumps([precision, ms]), flush=True)
        return

    from benchmarks.common import describe_machine, markdown_table

    print("\n".join(describe_machine()))
    print(f"preset {args.preset}; " + (f"BLEU after {args.seconds:.0f} s of training"
                                       if args.bleu else
                                       f"{args.steps} timed steps after {args.warmup}"))
    rows = [tuple(row.split(":")) for row in args.rows.split(",") if row]
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(map(':'.join, unknown))}; choose from "
                     f"{', '.join(map(':'.join, ROWS))}")
    if args.bleu:
        args.seeds = [int(s) for s in args.seeds.split(",") if s] or [None]
        return bleu_table(args, rows)

    headers = ["backend", "precision", "steps", "batch shapes", "median ms/step",
               "target tokens/s"]
    table = []
    for backend, precision in rows:
        result = run_child(args, backend, precision, None)
        if isinstance(result, str):
            table.append([backend, precision, result] + [""] * (len(headers) - 3))
            continue
        table.append([backend, precision, result["timed_steps"], result["batch_shapes"],
                      f"{result['ms_per_step']:.0f}", f"{result['tokens_per_second']:.0f}"])
    print(markdown_table(headers, table))

    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_precision",
                           "--preset", args.preset, "--profile-repeats",
                           str(args.profile_repeats), "--profile-only"],
                          env=env, capture_output=True, text=True)
    profiles = [json.loads(line[len("PROFILE "):]) for line in done.stdout.splitlines()
                if line.startswith("PROFILE ")]
    if not profiles:
        print("profile failed:", (done.stderr.strip().splitlines() or ["?"])[-1])
        return
    parts = list(profiles[0][1])
    print("\none training step, TensorFlow backend (median ms per part):")
    print(markdown_table(["part", *[p for p, _ in profiles]],
                         [[part, *[f"{ms[part]:.1f}" for _, ms in profiles]] for part in parts]))


if __name__ == "__main__":
    main()
