"""The captioning config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares are
in `training.core.config.TrainingConfig`; this adds the images, captions
and the image encoder, and sets Show, Attend and Tell's decoder as the
default: Bahdanau timing (the query is h_{t-1}), the initial state from
the mean annotation, the context gate and the doubly stochastic penalty.
"""

import dataclasses
from typing import Optional

from training.core.config import TrainingConfig, option
from training.core.image_encoders import BACKBONES


@dataclasses.dataclass
class CaptioningConfig(TrainingConfig):
    # --- data -------------------------------------------------------------
    # "generated" (scenes of shapes made by the project), "folder" (images_dir
    # + captions_file, the Flickr8k layout) or "coco" (tensorflow-datasets).
    data: str = option("generated", choices=("generated", "folder", "coco"))
    image_size: int = option(64, minimum=32)  # images are resized to this square side
    train_scenes: int = option(20000, minimum=1)  # generated data set sizes
    dev_scenes: int = option(500, minimum=1)
    test_scenes: int = option(1000, minimum=1)
    scene_noise: float = option(0.0, minimum=0.0)  # pixel noise, a fraction of 255
    scene_clutter: int = option(0, minimum=0)      # distractor marks per scene
    scene_max_objects: int = option(3, minimum=1, maximum=3)
    data_seed: int = 0
    images_dir: str = ""
    captions_file: str = ""                  # lines "image,caption" (header allowed)
    skip_bad_lines: bool = False
    tfds_data_dir: Optional[str] = None
    max_train_examples: int = option(0, minimum=0)  # 0: all
    max_eval_examples: int = option(0, minimum=0)   # 0: the whole test split
    meteor: bool = True                      # METEOR too, where Java is installed (~30 s)
    # --- captions ---------------------------------------------------------
    vocab_size: int = option(5000, above=4)  # words, special tokens included
    min_word_count: int = option(1, minimum=1)
    max_caption_tokens: int = option(24, minimum=1)  # longer captions are cut; decoding stops here
    # --- encoder ----------------------------------------------------------
    encoder: str = option("cnn", choices=("cnn", *BACKBONES))
    cnn_filters: int = option(32, minimum=1)
    cnn_blocks: int = option(3, minimum=1)   # each halves the grid side: 64 px -> 8x8 regions
    backbone_weights: str = "none"           # none | imagenet | path of a weights file
    backbone_input_size: int = option(96, minimum=32)
    freeze_encoder: bool = False
    # --- Show, Attend and Tell's decoder ------------------------------------
    decoder: str = option("bahdanau", choices=("fast", "bahdanau", "luong_feeding"))
    decoder_initial_state: str = option("mean_memory", choices=("zeros", "mean_memory"))
    context_gate: bool = True
    attention_regularization: float = option(1.0, minimum=0.0)
    attention_layer_norm: bool = True
    export_name: str = "captioner"

    def check_combinations(self):
        problem = super().check_combinations()
        if problem:
            return problem
        if self.data == "folder" and not (self.images_dir and self.captions_file):
            return "images_dir: data=folder needs images_dir=DIR and captions_file=FILE"
        if self.encoder == "cnn" and self.image_size // 2 ** self.cnn_blocks < 1:
            return (f"cnn_blocks: {self.cnn_blocks} blocks halve a {self.image_size}-pixel "
                    f"image to nothing")
        return None


PRESETS = {
    # The README's main job: about 10 minutes on 2 CPU cores.
    "main": dict(
        units=256, embedding_dim=64, attention_units=128, cnn_filters=16, batch_size=64,
        steps_per_epoch=200,
        epochs=12, max_train_seconds=420.0, learning_rate=2e-3, warmup_steps=100,
        dropout=0.0, early_stopping_patience=3, beam_width=3, num_hypotheses=3,
        checkpoint_steps=100,
    ),
    # A seconds-long run on a few hundred scenes: smoke tests and CI.
    "tiny": dict(
        units=32, embedding_dim=16, attention_units=16, cnn_filters=8, train_scenes=300,
        dev_scenes=32, test_scenes=32, batch_size=16, steps_per_epoch=10, epochs=2,
        eval_batch_size=32, beam_width=2, num_hypotheses=2, plot_examples=1, warmup_steps=5,
        early_stopping_patience=0, checkpoint_steps=5,
    ),
}
