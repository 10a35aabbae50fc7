"""Run by test_jax_training.py in subprocesses with KERAS_BACKEND=jax.

    python jax_training_script.py MODE WORKDIR [KEY=VALUE ...]

MODE `train`: trains a small translation model (tiny preset, dropout 0, a
short dev set) through `training.translation.train.train` and prints
`RESULT {json}`: the running mean loss after every step, the steps done.
Under KERAS_DISTRIBUTION_* variables and `distribution=data_parallel` it is
one process of the cluster.

MODE `greedy`: trains, saves model.keras, exports with TensorFlow in a
subprocess (`--export-only`), and prints the greedy token ids of the JAX
model in this process and of the export, for the same sentences.

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

import keras  # noqa: E402
import numpy as np  # noqa: E402

SENTENCES = ["In the beginning God created the heavens and the earth.", "Jesus wept.",
             "And God said, Let there be light."]


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        print(f"step {len(self.losses)} loss {self.losses[-1]:.6f}", flush=True)


def config_from(overrides):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    base = ["dropout=0", "max_train_tokens=7", "max_train_pairs=0", "batch_size=8",
            "steps_per_epoch=3", "epochs=1", "checkpoint_steps=2", "max_eval_pairs=4",
            "beam_width=1", "num_hypotheses=1", "early_stopping_patience=0", "warmup_steps=1"]
    return config_lib.load(TranslationConfig, PRESETS, "tiny", None, base + overrides)


def main():
    mode, workdir, *overrides = sys.argv[1:]
    from training.translation import train as train_lib

    config = config_from(overrides)
    corpus = train_lib.load_corpus(config)
    corpus.dev = corpus.dev[:64]
    losses = StepLosses()
    result, source_vocabulary, target_vocabulary = train_lib.train(
        config, workdir, corpus, log=lambda *a: print(*a, flush=True), callbacks=[losses])
    out = {"losses": losses.losses, "steps": result.steps,
           "process": int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))}
    if mode == "greedy":
        import tensorflow as tf

        from training.core import backend_export
        from training.core.export import LoadedExport
        from training.core.text import END_ID, START_ID

        model = result.model
        model.save(os.path.join(workdir, "model.keras"))
        source_ids = source_vocabulary.encode(tf.constant(SENTENCES)).numpy()
        lengths = (source_ids != 0).sum(-1)
        max_lengths = np.minimum(2 * lengths + 11, config.max_target_tokens + 1)
        decoded = model.generate(source_ids, START_ID, END_ID, int(max_lengths.max()),
                                 method="greedy", max_lengths=max_lengths,
                                 no_repeat_ngram_size=config.no_repeat_ngram_size)
        ids = keras.ops.convert_to_numpy(decoded.ids)
        ids_lengths = keras.ops.convert_to_numpy(decoded.lengths)
        out["jax_ids"] = [row[:n].tolist() for row, n in zip(ids, ids_lengths)]
        exported = LoadedExport(backend_export.export_in_tensorflow("translation", workdir))
        answer = exported.greedy(tf.constant(SENTENCES))
        out["export_ids"] = [row[:n].tolist() for row, n in zip(
            answer["token_ids"].numpy(), answer["length"].numpy())]
        out["export_text"] = [t.decode("utf-8") for t in answer["text"].numpy()]
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
