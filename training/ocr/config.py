"""The text-recognition config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares are
in `training.core.config.TrainingConfig`; this adds the text lines (generated
or a folder), the line encoder and the longest text.
"""

import dataclasses

from training.core.config import TINY_RUN, option, task_default
from training.core.example_data_config import ExampleDataConfig


@dataclasses.dataclass
class OcrConfig(ExampleDataConfig):
    FOLDER_FIELDS = ("images_dir", "labels_file")

    # --- data -------------------------------------------------------------
    data: str = option(
        "generated", choices=("generated", "folder"),
        help="Text lines: generated (words, numbers and phrases in the DejaVu fonts) or folder "
             "(images_dir + labels_file).")
    train_lines: int = option(20000, minimum=1, help="data=generated: training lines.")
    dev_lines: int = option(300, minimum=1, help="data=generated: validation lines.")
    test_lines: int = option(1000, minimum=1, help="data=generated: test lines.")
    line_noise: float = option(
        0.03, minimum=0.0,
        help="data=generated: pixel noise, its standard deviation a fraction of 255.")
    images_dir: str = option("", help="data=folder: the folder of the line images.")
    labels_file: str = option(
        "", help='data=folder: lines "image,text", the image relative to images_dir (header '
                 'allowed).')
    # --- images and text ----------------------------------------------------
    image_height: int = option(
        32, minimum=8, help="Height in pixels lines are resized to (a multiple of 8).")
    image_width: int = option(
        160, minimum=8, help="Width in pixels lines are resized to (a multiple of 4).")
    max_characters: int = option(
        12, minimum=1, help="Longest text in characters: longer ones are cut, reading stops "
                            "there.")
    max_symbols: int = option(
        100, above=4, help="Characters the model can write, the 4 special tokens included.")
    # --- encoder ----------------------------------------------------------
    cnn_filters: int = option(
        8, minimum=1, help="Channels of the first convolution block, doubling each block.")
    column_rnn: bool = option(
        False, help="A bidirectional GRU along the image columns, so that each annotation "
                    "knows its neighbours.")
    # --- decoder ----------------------------------------------------------
    attention_supervision: float = option(
        0.0, minimum=0.0,
        help="Weight of the attention supervision from the characters' boxes: the "
             "cross-entropy between each character's attention and the columns its box "
             "covers, added to the loss; needs data=generated; 0: off.")
    decoder: str = task_default("decoder", "bahdanau")
    decoder_initial_state: str = task_default("decoder_initial_state", "mean_memory")
    export_name: str = task_default("export_name", "text_reader")

    def check_combinations(self):
        if self.attention_supervision and self.data != "generated":
            return ("attention_supervision: needs the character boxes of data=generated; "
                    f"data={self.data} has none")
        if self.image_height % 8:
            return f"image_height: must be a multiple of 8, received {self.image_height}"
        if self.image_width % 4:
            return f"image_width: must be a multiple of 4, received {self.image_width}"
        return None


PRESETS = {
    # The README's main job: about 10 minutes on 2 CPU cores.
    # 8 filters and batches of 32 lines: four times the steps of 16 and 64 in
    # the budget, and more learnt; the GRU along the columns makes a step
    # slower and learns far more from it; the learning rate decays over the
    # about 2,500 steps that 540 s buy (docs/benchmarks.md has the runs).
    "main": dict(
        units=128, embedding_dim=32, attention_units=64, column_rnn=True, batch_size=32,
        steps_per_epoch=400, epochs=20, max_train_seconds=540.0, learning_rate=2e-3,
        warmup_steps=100, decay_steps=2600, dropout=0.0, early_stopping_patience=3,
        beam_width=3, num_hypotheses=3, checkpoint_steps=100,
    ),
    # A seconds-long run on a few hundred lines: smoke tests and CI.
    "tiny": dict(
        TINY_RUN, units=32, embedding_dim=16, attention_units=16, cnn_filters=4,
        column_rnn=True, train_lines=300, dev_lines=32, test_lines=32, batch_size=16,
        max_characters=8,
    ),
}
