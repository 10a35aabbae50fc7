"""Training and decoding speed of AttentionSeq2Seq.

Run: python -m benchmarks.bench_decoding [--units 256 --batch 64 --source-length 30
                                          --target-length 30 --vocab 8000 --quick ...]

In one process, candidates alternated call by call (`time_interleaved`):

1. Training steps/s of the same model (Luong timing, no input feeding,
   "general" score, GRU, bidirectional GRU encoder) with the decoder's
   cell path (`fast_path="never"`: attention inside the time loop) and its
   fast path (`fast_path="auto"`: the RNN over the whole target, then
   attention from all steps at once). Both models hold the same weights and
   are checked to give the same logits first. One step = Keras' compiled
   train function (`train_on_batch`, tf.function) with Adam.
2. Decoding time of greedy search and beam search (width 4) at batch 1 and
   --decode-batch, max length --max-length, each inside a tf.function with
   `jit_compile` off and on. The weights are random and the end token's
   output bias is -1e4, so it is never produced and every search runs all
   steps (checked: every length equals the maximum).

Prints the machine, then markdown tables (median over the repeats), then
the fast/cell and beam/greedy ratios.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from benchmarks.common import (  # noqa: E402
    describe_machine,
    markdown_table,
    median_ms,
    tf_sync,
    time_interleaved,
)
from training.core.seq2seq import (  # noqa: E402
    AttentionSeq2Seq,
    RecurrentTextEncoder,
    make_decoder_cell,
)

PAD, START, END = 0, 1, 2


def build_model(args, fast_path):
    encoder = RecurrentTextEncoder(args.vocab, args.embedding_dim, args.units // 2)
    cell = make_decoder_cell(args.units, "general", args.units, timing="luong",
                             input_feeding=False, rnn_type="gru")
    return AttentionSeq2Seq(encoder, args.vocab, args.embedding_dim, cell, fast_path=fast_path)


def random_ids(rng, shape, vocab):
    return tf.constant(rng.integers(3, vocab, size=shape), tf.int32)


# ------------------------------------------------------------------ training
def bench_training(args, rng):
    source = random_ids(rng, (args.batch, args.source_length), args.vocab)
    target = random_ids(rng, (args.batch, args.target_length + 1), args.vocab)
    inputs = {"source": source, "target_in": target[:, :-1]}
    labels = target[:, 1:]
    models = {}
    for name, fast_path in (("cell path", "never"), ("fast path", "auto")):
        keras.utils.set_random_seed(args.seed)
        model = build_model(args, fast_path)
        model(inputs)  # build
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD),
            jit_compile=args.train_jit,
        )
        models[name] = model
    slow, fast = models["cell path"], models["fast path"]
    assert not slow.decoder.uses_fast_path and fast.decoder.uses_fast_path
    fast.set_weights(slow.get_weights())
    np.testing.assert_allclose(fast(inputs).numpy(), slow(inputs).numpy(), atol=1e-3, rtol=1e-3)

    times = time_interleaved(
        {name: (lambda m=model: m.train_on_batch(inputs, labels)) for name, model in
         models.items()},
        repeats=args.train_repeats, warmup=args.warmup, sync=tf_sync,
    )
    t_cell, t_fast = median_ms(times["cell path"]), median_ms(times["fast path"])
    rows = [
        ["cell path (fast_path='never')", f"{t_cell:.1f}", f"{1000 / t_cell:.2f}", "1.00x"],
        ["fast path (fast_path='auto')", f"{t_fast:.1f}", f"{1000 / t_fast:.2f}",
         f"{t_cell / t_fast:.2f}x"],
    ]
    print("  done: training", flush=True)
    return rows, t_cell / t_fast


# ------------------------------------------------------------------ decoding
def decode_function(model, args, strategy, jit_compile):
    options = {"beam_width": args.beam_width} if strategy == "beam" else {}

    @tf.function(jit_compile=jit_compile)
    def decode(source):
        result = model.generate(source, START, END, args.max_length, strategy=strategy,
                                **options)
        return result.ids, result.lengths

    return decode


def bench_decoding(args, rng):
    keras.utils.set_random_seed(args.seed)
    model = build_model(args, "auto")
    probe = random_ids(rng, (2, args.source_length), args.vocab)
    model({"source": probe, "target_in": probe})  # build
    bias = model.output_projection.bias.numpy()
    bias[END] = -1e4  # never produced: every search runs max_length steps
    model.output_projection.bias.assign(bias)

    rows, ratios = [], {}
    for batch in args.decode_batches:
        source = random_ids(rng, (batch, args.source_length), args.vocab)
        candidates, outputs = {}, {}
        for strategy in ("greedy", "beam"):
            for jit in (False, True):
                fn = decode_function(model, args, strategy, jit)
                outputs[strategy, jit] = fn(source)  # trace (and compile) once, checked
                candidates[f"{strategy} jit={jit}"] = (lambda fn=fn: fn(source))
        for (strategy, jit), (ids, lengths) in outputs.items():
            assert np.all(lengths.numpy() == args.max_length), (strategy, jit, lengths.numpy())
        np.testing.assert_array_equal(outputs["greedy", True][0].numpy(),
                                      outputs["greedy", False][0].numpy())
        times = time_interleaved(candidates, repeats=args.decode_repeats, warmup=args.warmup,
                                 sync=tf_sync)
        ms = {key: median_ms(value) for key, value in times.items()}
        for jit in (False, True):
            greedy, beam = ms[f"greedy jit={jit}"], ms[f"beam jit={jit}"]
            ratios[batch, jit] = beam / greedy
        for strategy in ("greedy", "beam"):
            off, on = ms[f"{strategy} jit=False"], ms[f"{strategy} jit=True"]
            label = "greedy" if strategy == "greedy" else f"beam {args.beam_width}"
            ratio_off = "1.00x" if strategy == "greedy" else f"{ratios[batch, False]:.2f}x"
            ratio_on = "1.00x" if strategy == "greedy" else f"{ratios[batch, True]:.2f}x"
            rows.append([batch, label, f"{off:.1f}", f"{on:.1f}", f"{off / on:.2f}x",
                         ratio_off, ratio_on])
        print(f"  done: decoding batch {batch}", flush=True)
    return rows, ratios


# ---------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=256,
                        help="decoder units = encoder memory size (2 x units/2)")
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=8000, help="source = target vocabulary")
    parser.add_argument("--batch", type=int, default=64, help="training batch")
    parser.add_argument("--source-length", type=int, default=30)
    parser.add_argument("--target-length", type=int, default=30)
    parser.add_argument("--train-jit", action="store_true",
                        help="compile the train step with XLA (default: tf.function only)")
    parser.add_argument("--decode-batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--train-repeats", type=int, default=10,
                        help="timed train steps per candidate")
    parser.add_argument("--decode-repeats", type=int, default=10,
                        help="timed decodes per candidate")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed calls per candidate after the tracing call")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repeats, no warmup, units 64, vocab 1000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_repeats = args.decode_repeats = 2
        args.warmup = 0
        args.units, args.embedding_dim, args.vocab = 64, 64, 1000
    return args


def main(argv=None):
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # one tf.function per candidate: retracing notices
    rng = np.random.default_rng(args.seed)
    print("## Machine")
    for line in describe_machine():
        print(f"- {line}")
    print(f"\nunits={args.units} embedding={args.embedding_dim} vocab={args.vocab} "
          f"train batch={args.batch} T_src={args.source_length} T_tgt={args.target_length} "
          f"train_jit={args.train_jit} decode batches={args.decode_batches} "
          f"max_length={args.max_length} beam_width={args.beam_width} "
          f"repeats train/decode={args.train_repeats}/{args.decode_repeats} "
          f"warmup={args.warmup} (medians, candidates interleaved)\n", flush=True)

    train_rows, speedup = bench_training(args, rng)
    decode_rows, ratios = bench_decoding(args, rng)

    print("\n## Training: cell path vs fast path, same model and weights\n")
    print(markdown_table(["decoder path", "ms / step", "steps / s", "speedup"], train_rows))
    print("\n## Decoding, every search running all max_length steps\n")
    print(markdown_table(
        ["batch", "strategy", "ms (tf.function)", "ms (XLA)", "XLA speedup",
         "vs greedy (tf.function)", "vs greedy (XLA)"],
        decode_rows,
    ))
    big = max(args.decode_batches)
    print(f"\ntraining fast/cell = {speedup:.2f}x; "
          f"beam {args.beam_width}/greedy at batch {big} = {ratios[big, False]:.2f}x "
          f"without XLA, {ratios[big, True]:.2f}x with XLA")


if __name__ == "__main__":
    main()
