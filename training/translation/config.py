"""The translation config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares
are in `training.core.config.TrainingConfig`; this adds the data, the text
and the encoder.
"""

import dataclasses
from typing import Optional

from training.core.config import TrainingConfig, option


@dataclasses.dataclass
class TranslationConfig(TrainingConfig):
    # --- data -------------------------------------------------------------
    # "bundled" (the Bible corpus shipped with the project), "files" (see
    # data_files) or "tfds" (see tfds_name).
    data: str = option("bundled", choices=("bundled", "files", "tfds"))
    direction: str = option("en-es", choices=("en-es", "es-en"))  # bundled corpus
    data_files: str = ""              # "train.tsv" or "source.txt,target.txt"
    skip_bad_lines: bool = False      # skip and count malformed lines
    tfds_name: str = "ted_hrlr_translate/pt_to_en"
    tfds_data_dir: Optional[str] = None
    max_train_pairs: int = option(0, minimum=0)  # 0: all
    # --- text -------------------------------------------------------------
    source_vocab_size: int = option(8000, above=4)  # words, special tokens included
    target_vocab_size: int = option(8000, above=4)
    min_word_count: int = option(1, minimum=1)
    max_source_tokens: int = option(100, minimum=1)  # longer inputs are cut (also in the export)
    max_target_tokens: int = option(100, minimum=1)  # decoding stops here
    max_train_tokens: int = option(60, minimum=1)  # longer training pairs are dropped
    # --- encoder ----------------------------------------------------------
    encoder: str = option("rnn", choices=("rnn", "conv", "transformer"))
    encoder_layers: int = option(1, minimum=1)
    export_name: str = "translator"
    # Blocks looping output: +0.7 greedy BLEU, 4-gram repeats 30% -> 0% on the
    # main job's test set (python -m benchmarks.bench_repetition).
    no_repeat_ngram_size: int = option(4, minimum=0)
    recase: bool = True  # output in the case of the training targets (training.core.recasing)
    max_eval_pairs: int = option(0, minimum=0)  # 0: the whole test split

    def check_combinations(self):
        problem = super().check_combinations()
        if problem:
            return problem
        if self.data == "files" and not [p for p in self.data_files.split(",") if p]:
            return "data_files: data=files needs data_files=FILE or SOURCE,TARGET"
        if self.encoder == "rnn" and self.units % 2:
            return (f"units: the rnn encoder has units / 2 per direction, so units must be "
                    f"even; received {self.units}")
        if self.encoder == "transformer" and self.units % 4:
            return (f"units: the transformer encoder has 4 heads, so units must be a "
                    f"multiple of 4; received {self.units}")
        return None


PRESETS = {
    # Fits the README's main job: about 10 minutes on 2 CPU cores.
    "main": dict(
        embedding_dim=128, units=256, attention_units=128, source_vocab_size=6000,
        target_vocab_size=6000, max_train_tokens=48, batch_size=64, steps_per_epoch=100,
        epochs=18, max_train_seconds=390.0, learning_rate=3e-3, warmup_steps=100,
        dropout=0.0, early_stopping_patience=4, max_eval_pairs=0,
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
        embedding_dim=32, units=32, attention_units=32, source_vocab_size=500,
        target_vocab_size=500, max_train_tokens=20, batch_size=32, steps_per_epoch=10,
        epochs=2, max_train_pairs=2000, max_eval_pairs=32, eval_batch_size=32,
        max_target_tokens=24, beam_width=2, num_hypotheses=2, plot_examples=1,
        warmup_steps=5, early_stopping_patience=0, checkpoint_steps=5,
    ),
}
