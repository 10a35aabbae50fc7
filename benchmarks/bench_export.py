"""What an export costs: tracing the signatures, writing the SavedModel,
loading it back, and its size, for the tiny translation preset's model
(untrained: the cost does not depend on the weights).

    python -m benchmarks.bench_export [--repeats 3]

Each repeat builds a new exporter in this process (an exporter traces its
signatures once) and prints the median of each phase.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks.common import describe_machine, markdown_table  # noqa: E402


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names)


def one_export(config, corpus, workdir, source_vocabulary, target_vocabulary):
    """`(trace_s, save_s, load_s, bytes)` of one new exporter."""
    import numpy as np

    from training.core.export import LoadedExport
    from training.translation import train as train_lib

    model = train_lib.build_model(config, source_vocabulary.size, target_vocabulary.size)
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    translator = train_lib.make_translator(config, model, corpus, source_vocabulary,
                                           target_vocabulary)
    started = time.perf_counter()
    translator.signatures()
    traced = time.perf_counter()
    path = translator.save(os.path.join(workdir, "export"), "t", 1)
    saved = time.perf_counter()
    LoadedExport(path)
    loaded = time.perf_counter()
    return traced - started, saved - traced, loaded - saved, directory_bytes(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from training.core import config as config_lib
    from training.translation import train as train_lib
    from training.translation.config import PRESETS, TranslationConfig

    config = config_lib.load(TranslationConfig, PRESETS, "tiny", None, ["max_train_pairs=400"])
    corpus = train_lib.load_corpus(config)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        source_vocabulary, target_vocabulary = train_lib.vocabularies(config, corpus, workdir)
        for repeat in range(args.repeats):
            results.append(one_export(config, corpus, os.path.join(workdir, str(repeat)),
                                      source_vocabulary, target_vocabulary))
    print("\n".join(describe_machine()))
    phases = list(zip(*results))
    rows = [[name, f"{statistics.median(values):.1f}"]
            for name, values in zip(("trace signatures (s)", "save (s)", "load (s)"), phases)]
    rows.append(["SavedModel (MB)", f"{statistics.median(phases[3]) / 1e6:.2f}"])
    print(markdown_table(["tiny translator export", f"median of {args.repeats}"], rows))


if __name__ == "__main__":
    sys.exit(main())
