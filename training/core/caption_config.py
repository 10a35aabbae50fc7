"""What the caption tasks' configs share: an input (image or clip) described
by a caption, Show, Attend and Tell's decoder, and the caption metrics.

`training.captioning.config.CaptioningConfig` and
`training.video.config.VideoConfig` subclass it and add their data and
encoders; the data fields it shares with text recognition are in
`ExampleDataConfig`, the fields every task shares in `TrainingConfig`.
"""

import dataclasses

from training.core.config import option, task_default
from training.core.example_data_config import ExampleDataConfig


@dataclasses.dataclass
class CaptionTaskConfig(ExampleDataConfig):
    """The fields of both caption tasks.

    Example:

    >>> config = CaptionTaskConfig(max_caption_tokens=12)
    >>> config.decoder, config.decoder_initial_state, config.max_caption_tokens
    ('bahdanau', 'mean_memory', 12)
    """

    # --- metrics ----------------------------------------------------------
    meteor: bool = option(
        True, help="Score METEOR too, where Java is installed (about 30 s more).")
    # --- captions ---------------------------------------------------------
    min_word_count: int = option(
        1, minimum=1, help="Words seen fewer times in the training captions are left out of "
                           "the vocabulary.")
    max_caption_tokens: int = option(
        24, minimum=1, help="Longest caption in words: longer ones are cut, decoding stops "
                            "there.")
    # --- Show, Attend and Tell's decoder ------------------------------------
    decoder: str = task_default("decoder", "bahdanau")
    decoder_initial_state: str = task_default(
        "decoder_initial_state", "mean_memory",
        help="Decoder's first state: zeros, or tanh(W m) of the mean annotation m (image "
             "region or frame).")
