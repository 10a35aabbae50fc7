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

`--profile` (JAX backend) then splits a step of each precision into its
parts, each a separately jitted function of the same batch (median ms of
`--repeats` x `--steps` calls): the encoder, the decoder (target embedding
and the attention recurrence) and the output projection with the loss,
forward only; the whole forward pass; forward and backward
(`jax.value_and_grad`); and the whole Keras training step. Backward is
forward-and-backward minus forward, the optimizer the step minus
forward-and-backward.
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


def profile(model, inputs, targets, repeats, steps):
    """Median ms of the parts of one training step (JAX backend)."""
    import jax
    import keras
    import numpy as np

    variables = model.trainable_variables + model.non_trainable_variables
    trainable = len(model.trainable_variables)
    # Copies: the Keras training step donates the variables' buffers.
    values = [jax.numpy.array(v.value, copy=True) for v in variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def stateless(function):  # the model's variables as arguments, not constants
        def run(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*args)
        return jax.jit(run)

    def decode(target_in, memory, memory_mask):
        embedded = model.target_embedding(target_in)
        return model.decoder(embedded, memory, memory_mask=memory_mask,
                             inputs_mask=target_in != 0, training=True)

    def project_and_loss(outputs):
        return loss_fn(targets, keras.ops.cast(model.output_projection(outputs), "float32"))

    encoder = stateless(lambda source: model.encoder(source, training=True))
    decoder = stateless(decode)
    forward = stateless(lambda: loss_fn(targets, model(inputs, training=True)))
    memory, memory_mask = encoder(values, inputs["source"])
    outputs = decoder(values, inputs["target_in"], memory, memory_mask)
    forward_and_backward = jax.jit(jax.value_and_grad(
        lambda trainable_values, other_values: forward(trainable_values + other_values)))
    parts = {
        "encoder": (encoder, (values, inputs["source"])),
        "decoder (embedding + recurrence)": (decoder, (values, inputs["target_in"], memory,
                                                       memory_mask)),
        "projection + loss": (stateless(project_and_loss), (values, outputs)),
        "forward": (forward, (values,)),
        "forward + backward": (forward_and_backward, (values[:trainable], values[trainable:])),
    }
    times = {name: [] for name in [*parts, "training step"]}
    for name, (function, args) in parts.items():
        jax.block_until_ready(function(*args))  # compiles
    model.train_on_batch(inputs, targets)
    for _ in range(repeats):
        for name, (function, args) in parts.items():
            start = time.perf_counter()
            for _ in range(steps):
                result = function(*args)
            jax.block_until_ready(result)
            times[name].append((time.perf_counter() - start) / steps)
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(inputs, targets)
        float(loss)
        times["training step"].append((time.perf_counter() - start) / steps)
    ms = {name: 1000 * float(np.median(t)) for name, t in times.items()}
    ms["backward"] = ms["forward + backward"] - ms["forward"]
    ms["optimizer (step - forward - backward)"] = ms["training step"] - ms["forward + backward"]
    return ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="main")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of a step (JAX backend)")
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
    if not args.profile:
        return 0
    if keras.backend.backend() != "jax":
        print("--profile needs KERAS_BACKEND=jax")
        return 2
    parts = {}
    for precision in precisions:
        model, inputs, targets, _ = models[precision]
        keras.config.set_dtype_policy(precision)
        parts[precision] = profile(model, inputs, targets, args.repeats, args.steps)
        keras.config.set_dtype_policy("float32")
    print()
    print("| part of a step, median ms | " + " | ".join(precisions) + " |")
    print("|---" * (len(precisions) + 1) + "|")
    for part in parts[precisions[0]]:
        print(f"| {part} | " + " | ".join(f"{parts[p][part]:.1f}" for p in precisions) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
