"""How soon a translation model uses its source, by attentional state.

    python -m benchmarks.bench_attentional_state [--steps 80]

Trains each variant from the same seed on the same batches of the bundled
corpus (first 8,000 training pairs, batch 64, Adam 1e-3, no label
smoothing, embeddings and units 256, general attention) and prints the
cross-entropy on 5 held-out batches:

- Luong's `tanh(W_c [c; h])` (the cell's default);
- `LayerNorm(W_c [c; h])` (the translation default) and `tanh(LayerNorm(...))`;
- a GRU language model that never sees the source: the level a model
  reaches without using attention.
"""

import argparse
import dataclasses
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import describe_machine, markdown_table  # noqa: E402
from training.core.losses import MaskedSequenceLoss  # noqa: E402
from training.translation import train as train_lib  # noqa: E402
from training.translation.config import TranslationConfig  # noqa: E402
from training.translation.model import build_model  # noqa: E402
from training.translation.pipeline import drop_long_pairs, encode_pairs, make_dataset  # noqa: E402

VARIANTS = {
    "tanh(W_c [c; h])": dict(attention_layer_norm=False, attention_activation="tanh"),
    "LayerNorm(W_c [c; h])": dict(attention_layer_norm=True, attention_activation="linear"),
    "tanh(LayerNorm(W_c [c; h]))": dict(attention_layer_norm=True, attention_activation="tanh"),
}


class SourceBlindModel(keras.Model):
    """Target embedding -> GRU -> Dense: a decoder without the source."""

    def __init__(self, vocab_size, units):
        super().__init__()
        self.embedding = keras.layers.Embedding(vocab_size, units)
        self.rnn = keras.layers.GRU(units, return_sequences=True)
        self.output_layer = keras.layers.Dense(vocab_size)

    def call(self, inputs):
        return self.output_layer(self.rnn(self.embedding(inputs["target_in"])))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    config = dataclasses.replace(
        TranslationConfig(), embedding_dim=256, units=256, attention="general",
        source_vocab_size=6000, target_vocab_size=6000, dropout=0.0)
    corpus = train_lib.load_corpus(config)
    source_vocabulary, target_vocabulary = train_lib.vocabularies(
        config, corpus, tempfile.mkdtemp(prefix="bench_attentional_"))
    encoded = drop_long_pairs(
        encode_pairs(corpus.train[:8000], source_vocabulary, target_vocabulary), 48)
    batches = list(make_dataset(encoded, 64, shuffle=True, seed=0, repeat=True)
                   .take(args.steps + 5))
    held_out, training = batches[:5], batches[5:]
    loss = MaskedSequenceLoss(0.0)
    builders = {name: (lambda changes=changes: build_model(
        dataclasses.replace(config, **changes), source_vocabulary.size, target_vocabulary.size))
        for name, changes in VARIANTS.items()}
    builders["source-blind GRU language model"] = lambda: SourceBlindModel(
        target_vocabulary.size, config.units)
    rows = []
    for name, builder in builders.items():
        keras.utils.set_random_seed(0)
        model = builder()
        model.compile(keras.optimizers.Adam(1e-3), loss)
        for x, y in training:
            model.train_on_batch(x, y)
        held = np.mean([float(loss(y, model(x))) for x, y in held_out])
        rows.append([name, f"{held:.2f}"])
        print(f"  done: {name}", flush=True)
    print("\n" + "\n".join(describe_machine()) + "\n")
    print(f"held-out cross-entropy after {args.steps} steps (lower is better)\n")
    print(markdown_table(["attentional state", "held-out loss"], rows))


if __name__ == "__main__":
    main()
