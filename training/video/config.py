"""The video captioning config: every option, its default, and the presets.

The decoder, training, evaluation and export options every task shares are
in `training.core.config.TrainingConfig`; this adds the clips, captions,
the frame encoder, the temporal encoder and the model: attention over
frames, or the mean-pooled baseline. The decoder defaults to Bahdanau
timing (the query is h_{t-1}, the context fed into the cell) with its
initial state from the mean annotation, as captioning's; the doubly
stochastic penalty is off (a still frame need not be looked at).
"""

import dataclasses

from training.core.config import TrainingConfig, option
from training.video import clips

# Frames a clip may have: the export refuses longer clips, a folder clip
# longer than this is subsampled evenly when it is read.
DEFAULT_MAX_FRAMES = clips.MAX_FRAMES


@dataclasses.dataclass
class VideoConfig(TrainingConfig):
    # --- data -------------------------------------------------------------
    # "generated" (clips of shapes with events, made by the project) or
    # "folder" (clips_dir + captions_file: frame folders, GIFs, videos, .npy).
    data: str = option("generated", choices=("generated", "folder"))
    # "frames" (RGB frames through the CNN) or "features" (precomputed
    # per-frame features [T, D] of .npy/.npz folder clips).
    source: str = option("frames", choices=("frames", "features"))
    frame_size: int = option(32, minimum=clips.MIN_FRAME_SIZE)  # frames are resized to this
    max_frames: int = option(DEFAULT_MAX_FRAMES, minimum=1)
    train_clips: int = option(10000, minimum=1)   # generated data set sizes
    dev_clips: int = option(300, minimum=1)
    test_clips: int = option(clips.TEST_SET_SIZE, minimum=1)  # the fixed test set: 1000
    # Generated clips have min..max frames, each drawn uniformly.
    min_clip_frames: int = option(8, minimum=clips.MIN_FRAMES, maximum=clips.MAX_FRAMES)
    max_clip_frames: int = option(16, minimum=clips.MIN_FRAMES, maximum=clips.MAX_FRAMES)
    max_events: int = option(clips.MAX_EVENTS, minimum=1, maximum=clips.MAX_EVENTS)
    clip_noise: float = option(0.0, minimum=0.0)   # pixel noise, a fraction of 255
    reorder_fraction: float = option(0.5, minimum=0.0, maximum=1.0)
    data_seed: int = 0
    clips_dir: str = ""
    captions_file: str = ""                  # lines "clip,caption" (header allowed)
    skip_bad_lines: bool = False
    max_train_examples: int = option(0, minimum=0)  # 0: all
    max_eval_examples: int = option(0, minimum=0)   # 0: the whole test split
    meteor: bool = True                      # METEOR too, where Java is installed
    # --- captions ---------------------------------------------------------
    vocab_size: int = option(1000, above=4)  # words, special tokens included
    min_word_count: int = option(1, minimum=1)
    max_caption_tokens: int = option(24, minimum=1)  # longer captions are cut
    # --- model ------------------------------------------------------------
    # "attention" (the decoder attends over the frames) or "mean_pool" (the
    # frames averaged into one vector, the decoder's context at every step).
    model: str = option("attention", choices=("attention", "mean_pool"))
    cnn_filters: int = option(16, minimum=1)
    cnn_blocks: int = option(3, minimum=1)   # each halves the grid side: 32 px -> 4x4
    position_channels: bool = True           # x, y channels into the CNN (CoordConv)
    temporal_encoder: str = option("local", choices=("none", "local", "bigru"))
    temporal_units: int = option(64, minimum=1)  # per direction
    # --- decoder ----------------------------------------------------------
    decoder: str = option("bahdanau", choices=("fast", "bahdanau", "luong_feeding"))
    decoder_initial_state: str = option("mean_memory", choices=("zeros", "mean_memory"))
    attention_regularization: float = option(0.0, minimum=0.0)
    export_name: str = "video_captioner"

    def check_combinations(self):
        problem = super().check_combinations()
        if problem:
            return problem
        if self.data == "folder" and not (self.clips_dir and self.captions_file):
            return "clips_dir: data=folder needs clips_dir=DIR and captions_file=FILE"
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
        frame_size=16, cnn_blocks=2, units=32, embedding_dim=16, attention_units=16,
        cnn_filters=8, temporal_units=16,
        train_clips=300, dev_clips=32, test_clips=32, min_clip_frames=8, max_clip_frames=10,
        batch_size=16, steps_per_epoch=10,
        epochs=2, eval_batch_size=32, beam_width=2, num_hypotheses=2, plot_examples=1,
        warmup_steps=5, early_stopping_patience=0, checkpoint_steps=5, meteor=False,
    ),
}
