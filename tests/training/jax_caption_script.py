"""Run by test_jax_training.py in a subprocess with KERAS_BACKEND=jax.

    python jax_caption_script.py TASK WORKDIR [KEY=VALUE ...]

Runs the whole job of TASK (`captioning` or `video`) on its tiny preset,
shortened: training on JAX, the export by TensorFlow in a subprocess, the
evaluation on that export. Then rebuilds the trained model in this JAX
process from the workdir (`backend_export.rebuild_model`) and prints
`RESULT {json}`: the report's fields, and the greedy token ids of the JAX
model and of the export for the same test inputs.

Exit status 77: jax cannot be imported.
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

try:
    import jax  # noqa: F401
except Exception as error:
    print(f"cannot import jax: {error!r}")
    sys.exit(77)

import importlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

EXAMPLES = 3
SHORT = {"captioning": ["train_scenes=64", "dev_scenes=16", "test_scenes=8"],
         "video": ["train_clips=64", "dev_clips=16", "test_clips=8"]}


def main():
    task, workdir, *overrides = sys.argv[1:]
    import tensorflow as tf

    from training.core import backend_export
    from training.core import config as config_lib
    from training.core.export import LoadedExport
    from training.core.text import END_ID, START_ID

    train_lib = importlib.import_module(f"training.{task}.train")
    config_module = importlib.import_module(f"training.{task}.config")
    config_class = next(value for name, value in vars(config_module).items()
                        if name.endswith("Config") and name != "TrainingConfig"
                        and isinstance(value, type))
    config = config_lib.load(
        config_class, config_module.PRESETS, "tiny", None,
        [*SHORT[task], "steps_per_epoch=3", "epochs=1", "checkpoint_steps=3",
         "plot_examples=1", *overrides])
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
    decoded = model.generate(source, START_ID, END_ID, limit, method="greedy",
                             max_lengths=np.full([len(test)], limit, "int32"),
                             no_repeat_ngram_size=exported.no_repeat_ngram_size)
    ids = keras.ops.convert_to_numpy(decoded.ids)
    ids_lengths = keras.ops.convert_to_numpy(decoded.lengths)
    out = {
        "backend": keras.backend.backend(),
        "steps": report["training"]["steps"],
        "report_keys": sorted(report),
        "jax_ids": [row[:n].tolist() for row, n in zip(ids, ids_lengths)],
        "export_ids": [row[:n].tolist() for row, n in zip(
            answer["token_ids"].numpy(), answer["length"].numpy())],
        "workdir_files": sorted(os.listdir(workdir)),
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
