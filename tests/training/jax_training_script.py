"""Run by test_jax_training.py in subprocesses with KERAS_BACKEND=jax.

    python jax_training_script.py MODE WORKDIR [KEY=VALUE ...]

MODE `train`: trains a translation model (the tiny preset and the
overrides) through `training.translation.train.train` and prints
`RESULT {json}`: the running mean loss after every step, the steps done.
Under KERAS_DISTRIBUTION_* variables and `distribution=data_parallel` it is
one process of the cluster.

MODE `greedy`: trains, saves model.keras, exports with TensorFlow in a
subprocess (`--export-only`), and prints the greedy token ids of the JAX
model in this process and of the export, for the same sentences.

MODE `captioning` or `video`: runs the whole job of that task on its tiny
preset with the overrides: training on JAX, the export by TensorFlow in a
subprocess, the evaluation on that export. Then rebuilds the trained model
in this JAX process from the workdir (`backend_export.rebuild_model`) and
prints the report's fields, and the greedy token ids of the JAX model and
of the export for the same test inputs.

The test's environment decides JAX_PLATFORMS (left unset, JAX picks its
platform as on a GPU machine). A missing or broken jax fails.
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import importlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

SENTENCES = ["In the beginning God created the heavens and the earth.", "Jesus wept.",
             "And God said, Let there be light."]
EXAMPLES = 3  # test inputs the caption modes decode
CAPTION_TASKS = ("captioning", "video")


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        print(f"step {len(self.losses)} loss {self.losses[-1]:.6f}", flush=True)


def greedy_ids(model, source, max_length, max_lengths, no_repeat_ngram_size):
    """The JAX model's greedy token ids of each row, the search compiled as one
    program (run op by op, each of its few hundred ops compiles on its own)."""
    import jax

    from training.core.text import END_ID, START_ID

    @jax.jit
    def search(source, max_lengths):
        decoded = model.generate(source, START_ID, END_ID, max_length, method="greedy",
                                 max_lengths=max_lengths,
                                 no_repeat_ngram_size=no_repeat_ngram_size)
        return decoded.ids, decoded.lengths

    ids, lengths = (np.asarray(part) for part in search(source, max_lengths))
    return [row[:n].tolist() for row, n in zip(ids, lengths)]


def config_from(overrides):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    return config_lib.load(TranslationConfig, PRESETS, "tiny", None, overrides)


def main():
    mode, workdir, *overrides = sys.argv[1:]
    if mode in CAPTION_TASKS:
        return caption_job(mode, workdir, overrides)
    from training.translation import train as train_lib

    config = config_from(overrides)
    corpus = train_lib.load_corpus(config)
    losses = StepLosses()
    result, source_vocabulary, target_vocabulary = train_lib.train(
        config, workdir, corpus, log=lambda *a: print(*a, flush=True), callbacks=[losses])
    out = {"losses": losses.losses, "steps": result.steps,
           "process": int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))}
    if mode == "greedy":
        import tensorflow as tf

        from training.core import backend_export
        from training.core.export import LoadedExport

        model = result.model
        model.save(os.path.join(workdir, "model.keras"))
        source_ids = source_vocabulary.encode(tf.constant(SENTENCES)).numpy()
        lengths = (source_ids != 0).sum(-1)
        max_lengths = np.minimum(2 * lengths + 11, config.max_target_tokens + 1)
        out["jax_ids"] = greedy_ids(model, source_ids, int(max_lengths.max()), max_lengths,
                                    config.no_repeat_ngram_size)
        exported = LoadedExport(backend_export.export_in_tensorflow("translation", workdir))
        answer = exported.greedy(tf.constant(SENTENCES))
        out["export_ids"] = [row[:n].tolist() for row, n in zip(
            answer["token_ids"].numpy(), answer["length"].numpy())]
        out["export_text"] = [t.decode("utf-8") for t in answer["text"].numpy()]
    print("RESULT " + json.dumps(out), flush=True)


def caption_job(task, workdir, overrides):
    """MODE `captioning` or `video`: the whole job, then JAX ids against the export's."""
    import tensorflow as tf

    from training.core import backend_export
    from training.core import config as config_lib
    from training.core.export import LoadedExport

    train_lib = importlib.import_module(f"training.{task}.train")
    task_cli = importlib.import_module(f"training.{task}.__main__").TASK
    config = config_lib.load(task_cli.config_class, task_cli.presets, "tiny", None, overrides)
    corpus = train_lib.load_corpus(config)
    report = train_lib.train_and_evaluate(config, workdir, corpus,
                                          log=lambda *a: print(*a, flush=True))

    exported = LoadedExport(report["export"])
    test = corpus.test[:EXAMPLES]
    if task == "captioning":
        images = np.stack([example.image for example in test])
        source = images
        answer = exported.greedy(tf.constant(train_lib.encode_png(images)))
    else:  # frames
        clips, lengths = train_lib.pad_clips([train_lib.clip_array(e) for e in test])
        source = {config.source: clips, "lengths": lengths}
        answer = exported.greedy(tf.constant(clips), tf.constant(lengths))
    model = backend_export.rebuild_model(
        config, workdir,
        lambda: train_lib.build_model(config, exported.target_vocabulary_size),
        train_lib.source_spec(config))
    limit = exported.max_output_tokens + 1
    out = {
        "backend": keras.backend.backend(),
        "steps": report["training"]["steps"],
        "report_keys": sorted(report),
        "jax_ids": greedy_ids(model, source, limit, np.full([len(test)], limit, "int32"),
                              exported.no_repeat_ngram_size),
        "export_ids": [row[:n].tolist() for row, n in zip(
            answer["token_ids"].numpy(), answer["length"].numpy())],
        "workdir_files": sorted(os.listdir(workdir)),
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
