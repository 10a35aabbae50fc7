"""The captioning config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares are
in `training.core.config.TrainingConfig`, and what both caption tasks share
(Bahdanau timing, the initial state from the mean annotation, the caption
limits and metrics) in `training.core.caption_config.CaptionTaskConfig`;
this adds the images, captions and the image encoder, and the rest of Show,
Attend and Tell's decoder: the context gate and the doubly stochastic
penalty (off by default), and the attention supervision from object
boxes.
"""

import dataclasses
from typing import Optional

from training.core.backbones import BACKBONES
from training.core.caption_config import CaptionTaskConfig
from training.core.config import TINY_RUN, option, task_default


@dataclasses.dataclass
class CaptioningConfig(CaptionTaskConfig):
    FOLDER_FIELDS = ("images_dir", "captions_file")

    # --- data -------------------------------------------------------------
    data: str = option(
        "generated", choices=("generated", "folder", "coco"),
        help="Images: generated (scenes of shapes made by the project), folder (images_dir "
             "+ captions_file, the Flickr8k layout) or coco (tensorflow-datasets).")
    image_size: int = option(
        64, minimum=32, help="Side in pixels of the square images (others are resized to it).")
    train_scenes: int = option(20000, minimum=1, help="data=generated: training scenes.")
    dev_scenes: int = option(500, minimum=1, help="data=generated: validation scenes.")
    test_scenes: int = option(1000, minimum=1, help="data=generated: test scenes.")
    scene_noise: float = option(
        0.0, minimum=0.0,
        help="data=generated: pixel noise, its standard deviation a fraction of 255; 0: none.")
    scene_clutter: int = option(
        0, minimum=0, help="data=generated: distractor marks (grey dots, short lines) per scene.")
    scene_max_objects: int = option(
        3, minimum=1, maximum=3, help="data=generated: each scene has 1 to this many objects.")
    images_dir: str = option("", help="data=folder: the folder of the images.")
    captions_file: str = option(
        "", help='data=folder: lines "image,caption", the image relative to images_dir '
                 '(header allowed).')
    tfds_data_dir: Optional[str] = option(
        None, help="data=coco: folder of tensorflow-datasets data; null: TFDS's default.")
    # --- captions ---------------------------------------------------------
    vocab_size: int = option(
        5000, above=4, help="Caption words the model can write, the 4 special tokens included.")
    # --- encoder ----------------------------------------------------------
    encoder: str = option(
        "cnn", choices=("cnn", *BACKBONES),
        help="Image encoder: cnn (small, trained from scratch) or a keras.applications "
             "backbone.")
    cnn_filters: int = option(
        32, minimum=1, help="encoder=cnn: channels of the first block, doubling each block.")
    cnn_blocks: int = option(
        3, minimum=1, help="encoder=cnn: blocks, each halving the grid: 64 px and 3 blocks "
                           "give 8x8 regions.")
    backbone_weights: str = option(
        "none", help="Backbone's initial weights: none (random), imagenet (downloaded) or the "
                     "path of a weights file.")
    backbone_input_size: int = option(
        96, minimum=32, help="Images are resized to this side for the backbone (inception_v3: "
                             ">= 75).")
    freeze_encoder: bool = option(
        False, help="Keep the backbone's weights as they are: train the decoder alone.")
    # --- Show, Attend and Tell's decoder ------------------------------------
    context_gate: bool = task_default("context_gate", True)
    # Xu et al.'s doubly stochastic penalty (attention_regularization) stays
    # off, as for every task: it asks each of the 64 regions for one unit of
    # attention over a caption of about 20 words, which pulls every word's
    # attention toward uniform. Without it the attention mass in the named
    # object rose from 0.21 to 0.37 over three seeds (docs/benchmarks.md).
    attention_supervision: float = option(
        0.0, minimum=0.0,
        help="Weight of the attention supervision from object boxes (Liu et al. 2017): the "
             "cross-entropy between each object word's attention and the grid cells of its "
             "object's box, added to the loss; needs data=generated (its scenes know the "
             "boxes); 0: off.")
    export_name: str = task_default("export_name", "captioner")

    def check_combinations(self):
        if self.attention_supervision and self.data != "generated":
            return ("attention_supervision: needs the object boxes of data=generated; "
                    f"data={self.data} has none")
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
        TINY_RUN, units=32, embedding_dim=16, attention_units=16, cnn_filters=8,
        train_scenes=300, dev_scenes=32, test_scenes=32, batch_size=16, meteor=False,
    ),
}
