"""Timing helpers shared by the benchmark scripts.

Nothing here imports Keras at module level, so a benchmark script can set
environment variables (backend, thread counts) before importing it.

- `describe_machine()`: lines describing the host and library versions.
- `time_interleaved(candidates, repeats, warmup)`: wall-clock times of
  several callables, alternated call by call so that machine noise (other
  processes, frequency scaling) hits every candidate alike.
- `median_ms(times)`: median of a list of seconds, in milliseconds.
- `markdown_table(headers, rows)`: a GitHub-flavoured markdown table.
- `spread(values, digits, with_range)`: `mean ± sd` of a metric over seeds.
- `main_preset_over_seeds(...)`: a task's whole main job once per seed.

Importing it keeps freed memory in the process (`keras_attention.native_memory`),
as the training and serving commands do, so the timings are theirs;
`KERAS_ATTENTION_MALLOC_DEFAULTS=1` times glibc's defaults instead.
"""

import math
import os
import platform
import statistics
import sys
import time

from keras_attention import native_memory

MEMORY_RETAINED = native_memory.retain_freed_memory()


def describe_machine():
    """Lines describing the machine and the library versions."""
    lines = [
        f"platform: {platform.platform()}",
        f"processor: {platform.processor() or platform.machine()}",
        f"cpu_count: {os.cpu_count()}",
        f"python: {sys.version.split()[0]}",
        "malloc: " + ("freed memory retained (keras_attention.native_memory)"
                      if MEMORY_RETAINED else "the platform's defaults"),
    ]
    cpu_model = _cpu_model_name()
    if cpu_model:
        lines.insert(2, f"cpu model: {cpu_model}")
    try:
        import tensorflow as tf

        lines.append(f"tensorflow: {tf.__version__}")
        gpus = tf.config.list_physical_devices("GPU")
        lines.append(f"tf devices: {'GPU x%d' % len(gpus) if gpus else 'CPU only'}")
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            if details.get("device_name"):
                lines.append(f"gpu: {details['device_name']}")
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        lines.append(f"tf threads: intra_op={intra or 'default'} inter_op={inter or 'default'}")
    except ImportError:
        pass
    try:
        import keras

        lines.append(f"keras: {keras.__version__} (backend {keras.backend.backend()})")
    except ImportError:
        pass
    return lines


def _cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def tf_sync():
    """Wait for every queued TensorFlow op (GPU kernels are asynchronous)."""
    import tensorflow as tf

    sync = getattr(tf.test.experimental, "sync_devices", None)
    if sync is not None and tf.config.list_logical_devices("GPU"):
        sync()


def time_interleaved(candidates, repeats, warmup, sync=None):
    """Time several zero-argument callables, alternating between them.

    Every candidate is first called once (tracing / compilation) and then
    `warmup` more times, untimed. Then each of `repeats` rounds calls every
    candidate once; the order rotates from round to round so that none is
    always first (first after a context switch) or last.

    Args:
        candidates: Mapping name -> zero-argument callable.
        repeats: Number of timed calls of each candidate.
        warmup: Untimed calls of each candidate after the first one.
        sync: Optional zero-argument callable run after each call before
            the clock stops, e.g. `tf_sync` on asynchronous devices.

    Returns:
        dict name -> list of `repeats` durations in seconds.
    """
    names = list(candidates)
    sync = sync or (lambda: None)
    for name in names:
        for _ in range(1 + max(0, warmup)):
            candidates[name]()
            sync()
    times = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = candidates[name]
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def median_ms(times):
    """Median of durations in seconds, in milliseconds."""
    return 1000.0 * statistics.median(times)


def spread(values, digits=2, with_range=False):
    """`mean ± sd` (sample sd; 0 for one value) of the finite values, with
    `[min..max]` if `with_range`; "n/a" if none is finite (a metric a run
    could not score, such as localization without event words)."""
    values = [float(v) for v in values if math.isfinite(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    text = f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"
    if with_range:
        text += f" [{min(values):.{digits}f}..{max(values):.{digits}f}]"
    return text


def markdown_table(headers, rows):
    """Render rows (sequences of cells, str() applied) as a markdown table."""
    cells = [[str(c) for c in row] for row in rows]
    headers = [str(h) for h in headers]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def main_preset_over_seeds(train_lib, config_class, presets, seeds, settings, root):
    """Runs a task's whole job (`train_lib.train_and_evaluate`) on its main
    preset once per seed, in `<root>/seed<N>`, and returns `[(config,
    report)]` in the seeds' order.

    `settings` are `FIELD=VALUE` strings applied as `--set` applies them,
    then `seed=N` (the model's and the data order's seed). A seed whose
    workdir holds a finished run resumes from it: its report is made again
    without training more.
    """
    from training.core import config as config_lib

    runs = []
    for seed in seeds:
        config = config_lib.load(config_class, presets, "main", None, [*settings, f"seed={seed}"])
        report = train_lib.train_and_evaluate(config, os.path.join(root, f"seed{seed}"))
        runs.append((config, report))
    return runs
