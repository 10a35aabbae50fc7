"""Speed of the attention layers against Keras' built-in composites.

Run: python -m benchmarks.bench_layers [--batch 64 --units 256 --lengths 30 100
                                        --repeats N --warmup N --quick]

Times, in graph mode (`tf.function`), in the same process and alternating
ours / peer call by call:

1. forward, and forward + backward (`GradientTape` over every trainable
   weight, loss = sum of the context), of
   - `AdditiveAttention(units)` vs `Dense(units, use_bias=False)` on the
     query + `Dense(units, use_bias=False)` on the key +
     `keras.layers.AdditiveAttention()` (its `use_scale=True` scale vector
     plays the role of v);
   - `DotAttention(score_mode="general")` vs `Dense(D, use_bias=False)` on
     the key + `keras.layers.Attention()`;
   with B = batch, Tq = Tk = T for each T in --lengths, D = units.
2. one decoding step (query [B, D], memory [B, T_mem, D]) with the keys
   projected once outside the step (`projected_keys=layer.project_keys(m)`)
   vs re-projected inside every step (`layer(query, memory)`).

Before timing, the peer's weights are set from ours and the two outputs are
checked to agree, so both sides compute the same function.

Prints the machine, then markdown tables of median milliseconds per call.
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
from keras_attention.layers.additive_attention import AdditiveAttention  # noqa: E402
from keras_attention.layers.dot_attention import DotAttention  # noqa: E402


# ------------------------------------------------------------------ peers
class PeerAdditive:
    """Dense(U) on query + Dense(U) on key + keras.layers.AdditiveAttention()."""

    def __init__(self, units):
        self.query_dense = keras.layers.Dense(units, use_bias=False)
        self.key_dense = keras.layers.Dense(units, use_bias=False)
        self.attention = keras.layers.AdditiveAttention()  # use_scale=True

    def __call__(self, query, value):
        return self.attention([self.query_dense(query), value, self.key_dense(value)])

    @property
    def trainable_weights(self):
        return (self.query_dense.trainable_weights + self.key_dense.trainable_weights
                + self.attention.trainable_weights)

    def copy_from(self, ours):
        self.query_dense.kernel.assign(ours.query_kernel)
        self.key_dense.kernel.assign(ours.key_kernel)
        self.attention.scale.assign(ours.score_vector)


class PeerGeneral:
    """Dense(D) on key + keras.layers.Attention() (dot score)."""

    def __init__(self, dim):
        self.key_dense = keras.layers.Dense(dim, use_bias=False)
        self.attention = keras.layers.Attention()

    def __call__(self, query, value):
        return self.attention([query, value, self.key_dense(value)])

    @property
    def trainable_weights(self):
        return self.key_dense.trainable_weights + self.attention.trainable_weights

    def copy_from(self, ours):
        self.key_dense.kernel.assign(ours.kernel)


def make_ours(kind, units):
    if kind == "additive":
        return AdditiveAttention(units)
    return DotAttention(score_mode="general")


def make_peer(kind, units):
    return PeerAdditive(units) if kind == "additive" else PeerGeneral(units)


# ------------------------------------------------------------- functions
def forward_fn(layer):
    @tf.function
    def forward(query, value):
        return layer(query, value)

    return forward


def forward_backward_fn(layer):
    weights = layer.trainable_weights

    @tf.function
    def forward_backward(query, value):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(query, value))
        return tape.gradient(loss, weights)

    return forward_backward


def random_inputs(rng, batch, length, dim):
    query = tf.constant(rng.standard_normal((batch, length, dim)), tf.float32)
    value = tf.constant(rng.standard_normal((batch, length, dim)), tf.float32)
    return query, value


def check_same_function(ours, peer, query, value):
    """Set the peer's weights from ours; assert the outputs agree."""
    out_ours = ours(query, value)  # builds
    peer(query, value)  # builds
    peer.copy_from(ours)
    out_peer = peer(query, value)
    np.testing.assert_allclose(out_ours.numpy(), out_peer.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------ benchmarks
def bench_vs_peer(args, rng):
    rows = []
    for kind, label in (("additive", "AdditiveAttention"), ("general", "DotAttention general")):
        for length in args.lengths:
            query, value = random_inputs(rng, args.batch, length, args.units)
            ours, peer = make_ours(kind, args.units), make_peer(kind, args.units)
            check_same_function(ours, peer, query, value)
            for mode, make_fn in (("fwd", forward_fn), ("fwd+bwd", forward_backward_fn)):
                f_ours, f_peer = make_fn(ours), make_fn(peer)
                times = time_interleaved(
                    {"ours": lambda: f_ours(query, value), "peer": lambda: f_peer(query, value)},
                    repeats=args.repeats, warmup=args.warmup, sync=tf_sync,
                )
                t_ours, t_peer = median_ms(times["ours"]), median_ms(times["peer"])
                rows.append([f"{label} {mode}", length, f"{t_ours:.3f}", f"{t_peer:.3f}",
                             f"{t_ours / t_peer:.2f}"])
                print(f"  done: {label} {mode} T={length}", flush=True)
    return rows


def bench_decode_step(args, rng):
    rows = []
    memory_length = args.memory_length
    for kind, label in (("additive", "AdditiveAttention"), ("general", "DotAttention general")):
        layer = make_ours(kind, args.units)
        query = tf.constant(rng.standard_normal((args.batch, args.units)), tf.float32)
        memory = tf.constant(
            rng.standard_normal((args.batch, memory_length, args.units)), tf.float32)
        layer(query, memory)  # builds
        projected = layer.project_keys(memory)  # once per source sequence, not timed
        np.testing.assert_allclose(
            layer(query, memory, projected_keys=projected).numpy(),
            layer(query, memory).numpy(), rtol=1e-5, atol=1e-5)

        @tf.function
        def precomputed(query, memory, projected_keys, layer=layer):
            return layer(query, memory, projected_keys=projected_keys)

        @tf.function
        def recompute(query, memory, layer=layer):
            return layer(query, memory)

        times = time_interleaved(
            {"pre": lambda: precomputed(query, memory, projected),
             "re": lambda: recompute(query, memory)},
            repeats=args.decode_repeats, warmup=args.warmup, sync=tf_sync,
        )
        t_pre, t_re = median_ms(times["pre"]), median_ms(times["re"])
        rows.append([f"{label} decode step", memory_length, f"{t_pre:.3f}", f"{t_re:.3f}",
                     f"{t_re / t_pre:.2f}x"])
        print(f"  done: {label} decode step", flush=True)
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--units", type=int, default=256,
                        help="score units = query/value dim D")
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 100],
                        help="Tq = Tk values")
    parser.add_argument("--memory-length", type=int, default=100,
                        help="memory length of the decode-step benchmark")
    parser.add_argument("--repeats", type=int, default=30,
                        help="timed calls per candidate (forward / forward+backward)")
    parser.add_argument("--decode-repeats", type=int, default=None,
                        help="timed calls per candidate of the decode step "
                             "(default: 5 x --repeats, the step is short)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls per candidate after the tracing call")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 repeats, 1 warmup")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1
        if args.decode_repeats is None:
            args.decode_repeats = 5
    if args.decode_repeats is None:
        args.decode_repeats = 5 * args.repeats
    return args


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    print("## Machine")
    for line in describe_machine():
        print(f"- {line}")
    print(f"\nbatch={args.batch} units=D={args.units} lengths={args.lengths} "
          f"memory_length={args.memory_length} repeats={args.repeats} "
          f"decode_repeats={args.decode_repeats} warmup={args.warmup} "
          f"(median ms per call, tf.function graph mode, ours/peer interleaved)\n", flush=True)

    peer_rows = bench_vs_peer(args, rng)
    decode_rows = bench_decode_step(args, rng)

    print("\n## Ours vs Keras built-in composite (a ratio under 1: ours is faster)\n")
    print(markdown_table(["case", "T", "ours ms", "peer ms", "ratio ours/peer"], peer_rows))
    print("\n## Decode step: precomputed keys vs recomputing them\n")
    print(markdown_table(["case", "T", "precomputed ms", "recompute ms", "speedup"],
                         decode_rows))


if __name__ == "__main__":
    main()
