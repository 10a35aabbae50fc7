"""One training step of the translation model, float32 against mixed_bfloat16,
on any Keras backend and without TensorFlow (synthetic batches).

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python -m benchmarks.bench_precision_step
    KERAS_BACKEND=jax python -m benchmarks.bench_precision_step --preset large   # a GPU
    KERAS_BACKEND=torch python -m benchmarks.bench_precision_step

`benchmarks/bench_precision.py` measures the same through the training
pipeline (tf.data, TensorFlow needed) and BLEU at equal time; this script
is for machines without TensorFlow, such as an accelerator host, and for
CPUs with bfloat16 units (AVX512-BF16, AMX), whose flags it prints.

The model is the preset's (`training.translation.model.build_model`), at
its vocabulary sizes; a batch is `--batch` rows of `--length` random
source and target tokens (no padding), so target tokens/s is
batch x length / step time. Each precision builds its own model and runs
`--warmup` untimed steps (compilation), then the two precisions alternate
`--repeats` times, `--steps` steps each; the median per repeat is printed.
Loss: sparse categorical cross-entropy from logits, Adam.
"""

import argparse
import os
import platform
import statistics
import sys
import time


def cpu_description():
    """The CPU's model name and its bfloat16-related flags (Linux)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile",
                                              "amx_int8", "avx512f", "avx2"))
    return model, wanted


def build(preset, precision, args):
    import keras

    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.model import build_model

    keras.config.set_dtype_policy(precision)
    config = config_lib.load(TranslationConfig, PRESETS, preset, None, ["dropout=0"])
    model = build_model(config, config.source_vocab_size, config.target_vocab_size)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (args.batch, args.length)
    inputs = {"source": rng.integers(4, config.source_vocab_size, shape).astype("int32"),
              "target_in": rng.integers(4, config.target_vocab_size, shape).astype("int32")}
    targets = rng.integers(4, config.target_vocab_size, shape).astype("int32")
    model.train_on_batch(inputs, targets)  # builds and compiles
    for _ in range(args.warmup):
        model.train_on_batch(inputs, targets)
    keras.config.set_dtype_policy("float32")
    return model, inputs, targets, model.count_params()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="main")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = parser.parse_args(argv)

    import keras

    model_name, flags = cpu_description()
    print(f"backend: {keras.backend.backend()}, keras {keras.__version__}, python "
          f"{platform.python_version()}")
    if keras.backend.backend() == "jax":
        import jax

        print(f"jax {jax.__version__}, devices: {jax.devices()}")
    print(f"cpu: {model_name}, {os.cpu_count()} logical cores, flags: {' '.join(flags)}")
    print(f"preset {args.preset}, batch {args.batch} x length {args.length}, "
          f"{args.steps} steps x {args.repeats} repeats after {args.warmup} warm-up steps")

    precisions = args.precisions.split(",")
    models = {p: build(args.preset, p, args) for p in precisions}
    times = {p: [] for p in precisions}
    for _ in range(args.repeats):
        for precision in precisions:
            model, inputs, targets, _ = models[precision]
            start = time.perf_counter()
            for _ in range(args.steps):
                loss = model.train_on_batch(inputs, targets)
            float(loss)  # waits for the device
            times[precision].append((time.perf_counter() - start) / args.steps)

    tokens = args.batch * args.length
    base = statistics.median(times[precisions[0]])
    print()
    print("| precision | parameters | ms / step | target tokens/s | vs " + precisions[0] + " |")
    print("|---|---|---|---|---|")
    for precision in precisions:
        step = statistics.median(times[precision])
        print(f"| {precision} | {models[precision][3]:,} | {1000 * step:.1f} | "
              f"{tokens / step:.0f} | {base / step:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
