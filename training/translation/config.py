"""The translation config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares
are in `training.core.config.TrainingConfig`; this adds the data, the text
and the encoder.
"""

import dataclasses
from typing import Optional

from training.core.config import TINY_RUN, TrainingConfig, option, task_default

# What the export writes where the model chose [UNK] (`Translator`).
UNKNOWN_WORDS = ("copy_names", "copy", "omit")


@dataclasses.dataclass
class TranslationConfig(TrainingConfig):
    # --- data -------------------------------------------------------------
    data: str = option(
        "bundled", choices=("bundled", "files", "tfds"),
        help="Sentence pairs: bundled (the English-Spanish Bible shipped with the project), "
             "files (data_files) or tfds (tfds_name).")
    direction: str = option(
        "en-es", choices=("en-es", "es-en"), help="Direction of the bundled corpus.")
    data_files: str = option(
        "", help='data=files: one TSV/CSV file of pairs, or "source.txt,target.txt" '
                 'line-aligned.')
    tfds_name: str = option(
        "ted_hrlr_translate/pt_to_en",
        help="data=tfds: the tensorflow-datasets translation set, name/config.")
    tfds_data_dir: Optional[str] = option(
        None, help="Folder of tensorflow-datasets data; null: TFDS's default.")
    max_train_pairs: int = option(
        0, minimum=0, help="Train on the first this many pairs only; 0: all.")
    max_dev_pairs: int = option(
        0, minimum=0, help="Compute the dev loss on the first this many dev pairs; 0: all.")
    # --- text -------------------------------------------------------------
    source_vocab_size: int = option(
        8000, above=4, help="Source words kept, the 4 special tokens included; others are "
                            "unknown.")
    target_vocab_size: int = option(
        8000, above=4, help="Target words the model can write, the 4 special tokens included.")
    min_word_count: int = option(
        1, minimum=1, help="Words seen fewer times in the training pairs are left out of "
                           "the vocabularies.")
    max_source_tokens: int = option(
        100, minimum=1, help="Source words read per sentence, also by the export; the rest "
                             "are cut.")
    max_target_tokens: int = option(
        100, minimum=1, help="Longest output in words: decoding stops there.")
    max_train_tokens: int = option(
        60, minimum=1, help="Training pairs with a side longer than this many words are "
                            "left out.")
    sampled_softmax: int = option(
        0, minimum=0,
        help="K > 0: train the output layer on each word and K sampled candidate words "
             "(sampled softmax) instead of the whole target vocabulary; scoring, decoding and "
             "the export keep the exact softmax. 0: the exact softmax throughout.")
    sampled_softmax_steps: int = option(
        0, minimum=0,
        help="With sampled_softmax: train by it for the first this many steps, then by the "
             "exact softmax (cheap steps early, exact ones later); 0: every step.")
    # --- encoder ----------------------------------------------------------
    encoder: str = option(
        "rnn", choices=("rnn", "conv", "transformer"),
        help="Source encoder: rnn (bidirectional, units must be even), conv, or transformer "
             "(4 heads, units a multiple of 4).")
    encoder_layers: int = option(
        1, minimum=1, help="Encoder depth: rnn layers; conv has 2 x this; transformer at "
                           "least 2.")
    export_name: str = task_default("export_name", "translator")
    # Blocks looping output: +0.7 greedy BLEU, 4-gram repeats 30% -> 0% on the
    # main job's test set (python -m benchmarks.bench_repetition).
    no_repeat_ngram_size: int = task_default("no_repeat_ngram_size", 4)
    recase: bool = option(
        True, help="Write outputs in the case of the training targets; false: lowercase.")
    # copy_names: on the main job's test set, copies fell from 2,623 words
    # (2% kept by the reference) to 176 and greedy BLEU rose by 0.18
    # (docs/tasks/translation.md).
    unknown_words: str = option(
        "copy_names", choices=UNKNOWN_WORDS,
        help="Where the model writes [UNK]: copy_names (the most attended source word if it "
             "is a name: capitalized, not at the start of a sentence or quote; otherwise "
             "nothing), copy (that source word, always) or omit (nothing).")
    max_eval_pairs: int = option(
        0, minimum=0, help="Test on the first this many test pairs; 0: the whole test split.")

    def check_combinations(self):
        if self.data == "files" and not [p for p in self.data_files.split(",") if p]:
            return "data_files: data=files needs data_files=FILE or SOURCE,TARGET"
        if self.encoder == "rnn" and self.units % 2:
            return (f"units: the rnn encoder has units / 2 per direction, so units must be "
                    f"even; received {self.units}")
        if self.encoder == "transformer" and self.units % 4:
            return (f"units: the transformer encoder has 4 heads, so units must be a "
                    f"multiple of 4; received {self.units}")
        if self.sampled_softmax >= self.target_vocab_size:
            return (f"sampled_softmax: {self.sampled_softmax} candidates need a larger "
                    f"target_vocab_size than {self.target_vocab_size}")
        return None


PRESETS = {
    # Fits the README's main job: about 10 minutes on 2 CPU cores.
    # Embeddings 256 and the general (bilinear) score; the output layer
    # trains by sampled softmax for 600 steps (about twice as many steps a
    # second), then exactly (more learnt a step). docs/benchmarks.md, "The
    # main architecture", has the runs that chose them.
    "main": dict(
        embedding_dim=256, units=256, attention="general", source_vocab_size=6000,
        target_vocab_size=6000, max_train_tokens=48, batch_size=64, steps_per_epoch=100,
        epochs=18, max_train_seconds=390.0, learning_rate=3e-3, warmup_steps=100,
        dropout=0.0, early_stopping_patience=4, max_eval_pairs=0, sampled_softmax=512,
        sampled_softmax_steps=600,
    ),
    # Better quality: hours on CPU, minutes on a GPU.
    "large": dict(
        embedding_dim=256, units=512, attention_units=256, encoder_layers=2,
        source_vocab_size=16000, target_vocab_size=16000, max_train_tokens=100,
        batch_size=64, steps_per_epoch=400, epochs=60, learning_rate=1e-3, warmup_steps=1000,
        dropout=0.2, early_stopping_patience=5, checkpoint_steps=200,
    ),
    # A seconds-long run on a tiny slice: smoke tests and CI.
    "tiny": dict(
        TINY_RUN, embedding_dim=32, units=32, attention_units=32, source_vocab_size=500,
        target_vocab_size=500, max_train_tokens=20, batch_size=32, max_train_pairs=2000,
        max_dev_pairs=64, max_eval_pairs=32, max_target_tokens=24, sampled_softmax=64,
    ),
}
