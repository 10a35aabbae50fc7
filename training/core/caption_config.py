"""What the caption tasks' configs share: an input (image or clip) described
by a caption, Show, Attend and Tell's decoder, and the caption metrics.

`training.captioning.config.CaptioningConfig` and
`training.video.config.VideoConfig` subclass it and add their data and
encoders; the fields every task shares are in `TrainingConfig`.
"""

import dataclasses

from training.core.config import TrainingConfig, option, task_default


@dataclasses.dataclass
class CaptionTaskConfig(TrainingConfig):
    """The fields of both caption tasks.

    Example:

    >>> config = CaptionTaskConfig(max_caption_tokens=12)
    >>> config.decoder, config.decoder_initial_state, config.max_caption_tokens
    ('bahdanau', 'mean_memory', 12)
    """

    # --- data -------------------------------------------------------------
    data_seed: int = option(
        0, help="data=generated: seed of the generated examples; the same seed gives the "
                "same data set.")
    skip_bad_lines: bool = option(
        False, help="data=folder: skip and count bad lines and unreadable files instead of "
                    "failing.")
    max_train_examples: int = option(
        0, minimum=0, help="Train on the first this many examples only; 0: all.")
    max_eval_examples: int = option(
        0, minimum=0, help="Test on the first this many test examples; 0: the whole test "
                           "split.")
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
