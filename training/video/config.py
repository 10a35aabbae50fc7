"""The video captioning config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares are
in `training.core.config.TrainingConfig`, and what both caption tasks share
(Bahdanau timing with the initial state from the mean annotation, the
caption limits and metrics) in
`training.core.caption_config.CaptionTaskConfig`; this adds the clips,
captions, the frame encoder, the temporal encoder and the model: attention
over frames, or the mean-pooled baseline. The doubly stochastic penalty is
off (a still frame need not be looked at).
"""

import dataclasses

from training.core.caption_config import CaptionTaskConfig
from training.core.config import TINY_RUN, option, task_default
from training.video import clips

# Frames a clip may have: the export refuses longer clips, a folder clip
# longer than this is subsampled evenly when it is read.
DEFAULT_MAX_FRAMES = clips.MAX_FRAMES


@dataclasses.dataclass
class VideoConfig(CaptionTaskConfig):
    FOLDER_FIELDS = ("clips_dir", "captions_file")

    # --- data -------------------------------------------------------------
    data: str = option(
        "generated", choices=("generated", "folder"),
        help="Clips: generated (shapes with events, made by the project) or folder (clips_dir "
             "+ captions_file).")
    source: str = option(
        "frames", choices=("frames", "features"),
        help="What the model reads: frames (RGB, through the CNN) or features (per-frame "
             ".npy/.npz [T, D] of a clip folder).")
    frame_size: int = option(
        32, minimum=clips.MIN_FRAME_SIZE,
        help="Side in pixels of the square frames (others are resized to it).")
    max_frames: int = option(
        DEFAULT_MAX_FRAMES, minimum=1,
        help="Most frames a clip may have: longer folder clips are subsampled, the export "
             "refuses them.")
    train_clips: int = option(10000, minimum=1, help="data=generated: training clips.")
    dev_clips: int = option(300, minimum=1, help="data=generated: validation clips.")
    test_clips: int = option(
        clips.TEST_SET_SIZE, minimum=1,
        help="data=generated: test clips (the first ones of a fixed test stream).")
    min_clip_frames: int = option(
        8, minimum=clips.MIN_FRAMES, maximum=clips.MAX_FRAMES,
        help="data=generated: fewest frames of a clip (each clip's count is drawn uniformly).")
    max_clip_frames: int = option(
        16, minimum=clips.MIN_FRAMES, maximum=clips.MAX_FRAMES,
        help="data=generated: most frames of a clip (<= max_frames).")
    max_events: int = option(
        clips.MAX_EVENTS, minimum=1, maximum=clips.MAX_EVENTS,
        help="data=generated: each clip has 1 to this many events.")
    clip_noise: float = option(
        0.0, minimum=0.0,
        help="data=generated: pixel noise, its standard deviation a fraction of 255; 0: none.")
    reorder_fraction: float = option(
        0.5, minimum=0.0, maximum=1.0,
        help="data=generated: chance that a clip replays the clip before's events in another "
             "order.")
    clips_dir: str = option(
        "", help="data=folder: the folder of clips (frame folders, GIFs, videos, .npy/.npz).")
    captions_file: str = option(
        "", help='data=folder: lines "clip,caption" (or tab-separated), the clip relative to '
                 'clips_dir.')
    # --- captions ---------------------------------------------------------
    vocab_size: int = option(
        1000, above=4, help="Caption words the model can write, the 4 special tokens included.")
    # --- model ------------------------------------------------------------
    model: str = option(
        "attention", choices=("attention", "mean_pool"),
        help="attention: the decoder attends over the frames; mean_pool: the frames "
             "averaged into one vector (the baseline).")
    cnn_filters: int = option(
        16, minimum=1, help="Channels of the frame CNN's first block, doubling each block.")
    cnn_blocks: int = option(
        3, minimum=1, help="Blocks of the frame CNN, each halving the grid: 32 px and 3 blocks "
                           "give 4x4.")
    position_channels: bool = option(
        True, help="Give the frame CNN x and y coordinate channels too (CoordConv).")
    temporal_encoder: str = option(
        "local", choices=("none", "local", "bigru"),
        help="Over the frame features: none, local (each frame with its change and time) or "
             "bigru.")
    temporal_units: int = option(
        64, minimum=1, help="Temporal encoder size per direction: each frame's annotation "
                            "has 2 x this.")
    # --- decoder ----------------------------------------------------------
    # A still frame need not be looked at: the doubly stochastic penalty is off.
    attention_regularization: float = task_default(
        "attention_regularization", 0.0,
        help="Weight of the penalty asking every frame to get about one unit of attention "
             "over the caption; 0: off.")
    export_name: str = task_default("export_name", "video_captioner")

    def check_combinations(self):
        if self.source == "features" and self.data != "folder":
            return ("source: features come from a clip folder of .npy/.npz files "
                    "(data=folder); generated clips are frames")
        if self.min_clip_frames > self.max_clip_frames:
            return (f"min_clip_frames: must be <= max_clip_frames ({self.max_clip_frames}), "
                    f"received {self.min_clip_frames}")
        if self.data == "generated" and self.max_clip_frames > self.max_frames:
            return (f"max_clip_frames: must be <= max_frames ({self.max_frames}), "
                    f"received {self.max_clip_frames}")
        if self.source == "frames" and self.frame_size // 2 ** self.cnn_blocks < 1:
            return (f"cnn_blocks: {self.cnn_blocks} blocks halve a {self.frame_size}-pixel "
                    f"frame to nothing")
        return None


PRESETS = {
    # The README's main job: about 10 minutes on 2 CPU cores, 8 of them training.
    # 16x16 frames (shapes 4 pixels wide) and a 2-block CNN: the per-frame CNN
    # is most of a step's cost (0.35 to 0.4 s a step of 32 clips on 2 idle
    # EPYC cores: about 1,200 steps). The schedule plans 1,600 steps; the time
    # budget stops it first unless steps take under 0.3 s. The local temporal
    # encoder beat the BiGRU in trial runs, in words and in where it looks.
    "main": dict(
        frame_size=16, cnn_blocks=2, cnn_filters=16, units=128, embedding_dim=32,
        attention_units=64, temporal_units=64, train_clips=6000, dev_clips=128,
        min_clip_frames=8, max_clip_frames=12, batch_size=32, steps_per_epoch=100,
        epochs=16, max_train_seconds=480.0, learning_rate=3e-3, warmup_steps=50,
        dropout=0.0, early_stopping_patience=3, beam_width=3, num_hypotheses=3,
        checkpoint_steps=100,
    ),
    # A seconds-long run on a few hundred clips: smoke tests and CI.
    "tiny": dict(
        TINY_RUN, frame_size=16, cnn_blocks=2, units=32, embedding_dim=16, attention_units=16,
        cnn_filters=8, temporal_units=16, train_clips=300, dev_clips=32, test_clips=32,
        min_clip_frames=8, max_clip_frames=10, batch_size=16, meteor=False,
    ),
}
