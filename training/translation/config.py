"""The translation config: every option, its default, and the presets."""

import dataclasses
from typing import Optional


@dataclasses.dataclass
class TranslationConfig:
    # --- data -------------------------------------------------------------
    # "bundled" (the Bible corpus shipped with the project), "files" (see
    # data_files) or "tfds" (see tfds_name).
    data: str = "bundled"
    direction: str = "en-es"          # bundled corpus: en-es or es-en
    data_files: str = ""              # "train.tsv" or "source.txt,target.txt"
    skip_bad_lines: bool = False      # skip and count malformed lines
    tfds_name: str = "ted_hrlr_translate/pt_to_en"
    tfds_data_dir: Optional[str] = None
    max_train_pairs: int = 0          # 0: all
    # --- text -------------------------------------------------------------
    source_vocab_size: int = 8000     # words, special tokens included
    target_vocab_size: int = 8000
    min_word_count: int = 1
    max_source_tokens: int = 100      # longer inputs are truncated (also in the export)
    max_target_tokens: int = 100      # decoding stops here
    max_train_tokens: int = 60        # training pairs longer than this on either side are dropped
    # --- model ------------------------------------------------------------
    encoder: str = "rnn"              # rnn | conv | transformer
    rnn_type: str = "gru"             # gru | lstm (encoder and decoder)
    encoder_layers: int = 1
    embedding_dim: int = 256
    units: int = 256                  # decoder units; rnn encoder: units // 2 per direction
    attention: str = "additive"       # additive | dot | general | scaled_dot
    attention_units: int = 256        # additive attention hidden size
    decoder: str = "fast"             # fast (Luong, attention after the RNN) | bahdanau | luong_feeding
    # Attentional state a = f(LayerNorm(W_c [c; h])): the norm makes the model use the
    # source within the first 100 steps (Luong's plain tanh(W_c [c; h]) takes far longer).
    attention_layer_norm: bool = True
    attention_activation: str = "linear"  # tanh for Luong's original
    dropout: float = 0.1
    # --- training ---------------------------------------------------------
    seed: int = 1234
    batch_size: int = 64
    epochs: int = 30                  # "epochs" of steps_per_epoch steps each
    steps_per_epoch: int = 200        # a checkpoint every epoch
    max_train_seconds: float = 0.0    # 0: no time limit
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    label_smoothing: float = 0.1
    clipnorm: float = 5.0
    early_stopping_patience: int = 3  # epochs without dev loss improvement
    strategy: str = "default"         # default | mirrored | multi_worker
    # --- evaluation and export --------------------------------------------
    beam_width: int = 4
    length_penalty: float = 0.6
    num_hypotheses: int = 4           # n-best returned by the beam signature
    eval_batch_size: int = 128
    max_eval_pairs: int = 0           # 0: the whole test split
    plot_examples: int = 4
    export_name: str = "translator"
    export_version: int = 1


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
        dropout=0.2, early_stopping_patience=5,
    ),
    # A seconds-long run on a tiny slice: smoke tests and CI.
    "tiny": dict(
        embedding_dim=32, units=32, attention_units=32, source_vocab_size=500,
        target_vocab_size=500, max_train_tokens=20, batch_size=32, steps_per_epoch=10,
        epochs=2, max_train_pairs=2000, max_eval_pairs=32, eval_batch_size=32,
        max_target_tokens=24, beam_width=2, num_hypotheses=2, plot_examples=1,
        warmup_steps=5, early_stopping_patience=0,
    ),
}
