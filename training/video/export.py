"""The video captioner as a SavedModel: clips in, caption and attention over
frames out.

Outputs are every task's (`training.core.export`): `text`, `tokens`,
`token_ids`, `length`, `score`, `attention` `[B, T_out, T']` (beam: `[B, N,
T_out, T']`), each word's weights over the clip's frames, and one more,
`frame_count [B]`, each clip's length: the attention's `frame` axis holds
`T'` = the longest clip of the batch, and a row's weights past its own
`frame_count` are 0 (metadata.json names `frame_count` in `axis_lengths`,
so a server that batches requests cuts every answer back to its own).

Signatures, for a model trained on frames (`source=frames`):

- `serving_default` (greedy), `beam_search` (n-best): `frames` uint8
  `[B, T, H, W, 3]` and `lengths` int32 `[B]`: clip b is
  `frames[b, :lengths[b]]`; frames past its length are padding, may hold
  anything and change nothing. Frames of another size than the training
  size are resized.
- `gif_greedy`, `gif_beam`: `video_bytes` string `[B]`, one animated GIF per
  clip, decoded in the graph (`tf.io.decode_gif`) and resized; clips of
  different lengths in one batch are padded and masked.
- `features_greedy`, `features_beam`: `features` float32 `[B, T, D]` and
  `lengths`: per-frame feature vectors as the model's frame encoder makes
  them (the CNN on each frame with its position channels, its grid
  mean-pooled: `model.encoder.frame_features`). The frame encoder sees each
  frame alone, so these can be computed elsewhere (once per frame, cached);
  anything else in their place gives meaningless captions.

A model trained on precomputed features (`source=features`) has only
`serving_default` and `beam_search`, taking `features` and `lengths`.

Step-level signatures (`training.core.export`): `encode` on the first
inputs, `gif_encode` and `features_encode` on the others, and `decode_step`.

The mean-pooled model (`model=mean_pool`) attends to one position, the
frames' mean; its `attention` is returned as what that mean is: weight
`1 / frame_count` on each of the clip's frames.

Bad input fails the request with an `InvalidArgumentError` that says what
is wrong: no frames, a length below 1 or above the frames given, more than
`max_frames` frames (metadata.json states it), batch sizes that differ,
features that are not finite, bytes that are not a GIF. Wrong dtypes and
ranks are refused by the signature itself. Only stock TensorFlow ops.
"""

import tensorflow as tf

from training.core.decoding_options import DecodingOptions
from training.core.export import (
    BEAM_SIGNATURE,
    GREEDY_SIGNATURE,
    InputVariant,
    SequenceExporter,
)

GIF_SIGNATURES = ("gif_greedy", "gif_beam")
FEATURES_SIGNATURES = ("features_greedy", "features_beam")


class VideoCaptioner(SequenceExporter):
    """Wraps a trained video `AttentionSeq2Seq` with its caption vocabulary.

    Args:
        model: The trained model (its encoder a `training.video.model.VideoEncoder`).
        vocabulary: The caption `Vocabulary`.
        max_caption_tokens: Most words per caption.
        frame_size: The side frames are resized to (the training size).
        max_frames: Most frames a clip may have.
        decoding: `DecodingOptions` of every signature.

    Example (`captioner.save("export", "video_captioner", 1)` writes it):

        out = captioner.greedy(frames, lengths)   # uint8 [B, T, H, W, 3], int32 [B]
        out["text"], out["attention"]             # [B], [B, T_out, T']
        gif = captioner.signature_functions["gif_greedy"](tf.constant([gif_bytes]))
    """

    task = "video_captioning"
    input_name = "frames"
    input_kind = "frames"
    attention_axes = ("frame",)
    extra_output_axes = {"frame_count": ()}
    axis_lengths = {"frame": "frame_count"}

    def __init__(self, model, vocabulary, max_caption_tokens, frame_size, max_frames,
                 decoding=DecodingOptions(beam_width=3, num_hypotheses=3)):
        encoder = model.encoder
        self.source_kind = encoder.source_kind
        self.mean_pooled = bool(encoder.mean_pool)
        self.feature_dim = int(encoder.feature_dim)
        self.frame_size = int(frame_size)
        self.max_frames = int(max_frames)
        super().__init__(model, vocabulary, max_caption_tokens, decoding,
                         name="video_captioner")

    # ------------------------------------------------------------ inputs
    def input_variants(self):
        lengths = tf.TensorSpec([None], tf.int32, name="lengths")
        features = InputVariant(
            GREEDY_SIGNATURE, BEAM_SIGNATURE,
            {"features": tf.TensorSpec([None, None, self.feature_dim], tf.float32,
                                       name="features"), "lengths": lengths},
            {"features": "frame_features", "lengths": "frame_count"},
            prepare=self.prepare_features,
            description=f"per-frame features [B, T, {self.feature_dim}] and each clip's "
                        f"length")
        if self.source_kind == "features":
            return [features]
        frames = InputVariant(
            GREEDY_SIGNATURE, BEAM_SIGNATURE,
            {"frames": tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames"),
             "lengths": lengths},
            {"frames": "frames", "lengths": "frame_count"},
            prepare=self.prepare_frames,
            description="RGB frames [B, T, H, W, 3] and each clip's length; frames past a "
                        "clip's length are padding")
        gif = InputVariant(
            *GIF_SIGNATURES,
            {"video_bytes": tf.TensorSpec([None], tf.string, name="video_bytes")},
            {"video_bytes": "video"},
            prepare=self.prepare_gif,
            description="one animated GIF per clip", encode_signature="gif_encode")
        return [frames, gif, features._replace(
            greedy_signature=FEATURES_SIGNATURES[0], beam_signature=FEATURES_SIGNATURES[1],
            description=features.description + ", as the model's frame encoder makes them",
            encode_signature="features_encode")]

    def _check_clips(self, what, clips, lengths):
        """Asserts on a batch of clips `[B, T, ...]` and its `lengths [B]`;
        returns the checks to run before the clips are used."""
        frames_given = tf.shape(clips)[1]
        return [
            tf.debugging.assert_equal(
                tf.shape(lengths)[0], tf.shape(clips)[0],
                message=f"lengths: needs one length per clip of {what} (batch sizes differ)"),
            tf.debugging.assert_positive(
                frames_given, message=f"{what}: a clip needs at least one frame (T = 0)"),
            tf.debugging.assert_less_equal(
                frames_given, self.max_frames,
                message=f"{what}: at most {self.max_frames} frames per clip (max_frames); "
                        f"subsample longer clips"),
            tf.debugging.assert_positive(
                lengths, message="lengths: every clip needs a length of at least 1 frame"),
            tf.debugging.assert_less_equal(
                lengths, frames_given,
                message=f"lengths: a clip's length may not exceed the {what} given (T)"),
        ]

    def _rows(self, source, lengths):
        """The prepared batch of checked clips: cut to the longest clip, so the
        attention's frame axis is the batch's longest clip."""
        longest = tf.reduce_max(tf.concat([lengths, [1]], 0))
        kind = "frames" if "frames" in source else "features"
        source = {kind: source[kind][:, :longest], "lengths": lengths}
        batch = tf.shape(lengths)[0]
        mask = tf.sequence_mask(lengths, longest, tf.float32)  # --> [B, T']
        rows = {"empty": tf.zeros([batch], tf.bool),
                # The mean-pooled model's attention: uniform over the clip's frames.
                "uniform_attention": mask / tf.cast(lengths, tf.float32)[:, None]}
        max_lengths = tf.fill([batch], self.max_output_tokens + 1)
        return source, max_lengths, rows, {"frame_count": lengths}

    def prepare_frames(self, frames, lengths):
        """uint8 `[B, T, H, W, 3]` and int32 `[B]` -> the prepared batch."""
        checks = self._check_clips("frames", frames, lengths)
        shape = tf.shape(frames)
        checks.append(tf.debugging.assert_positive(
            shape[2] * shape[3], message="frames: frames need at least one pixel (H, W > 0)"))
        with tf.control_dependencies(checks):
            frames = tf.identity(frames)
        frames = tf.cond(
            tf.logical_and(shape[2] == self.frame_size, shape[3] == self.frame_size),
            lambda: frames,
            lambda: tf.reshape(resize_frames(tf.reshape(frames, tf.concat([[-1], shape[2:]], 0)),
                                             self.frame_size),
                               tf.concat([shape[:2], [self.frame_size, self.frame_size, 3]], 0)))
        frames = tf.ensure_shape(frames, [None, None, self.frame_size, self.frame_size, 3])
        return self._rows({"frames": frames}, lengths)

    def prepare_gif(self, video_bytes):
        """string `[B]` animated GIFs -> the prepared batch."""
        frames, lengths = decode_gifs(tf.reshape(video_bytes, [-1]), self.frame_size,
                                      self.max_frames)
        return self._rows({"frames": frames}, lengths)

    def prepare_features(self, features, lengths):
        """float32 `[B, T, D]` and int32 `[B]` -> the prepared batch."""
        checks = self._check_clips("features", features, lengths)
        valid = tf.sequence_mask(lengths, tf.shape(features)[1])[..., None]  # --> [B, T, 1]
        checks.append(tf.debugging.assert_all_finite(
            tf.where(valid, features, 0.0),
            message="features: NaN or infinity in a clip's frames"))
        with tf.control_dependencies(checks):
            features = tf.identity(features)
        return self._rows({"features": features}, lengths)

    # ------------------------------------------------------------ outputs
    def format_attention(self, attention, rows):
        if self.mean_pooled:  # [R, T_out, 1]: the one position is the frames' mean
            return attention[..., :1] * rows["uniform_attention"][:, None, :]
        return attention  # --> [R, T_out, T']

    def metadata_extras(self):
        return {"frame_size": self.frame_size, "max_frames": self.max_frames,
                "source": self.source_kind, "feature_dim": self.feature_dim,
                "model": "mean_pool" if self.mean_pooled else "attention"}


def resize_frames(frames, frame_size):
    """uint8 `[N, H, W, 3]` -> uint8 `[N, size, size, 3]` (bilinear, antialiased
    when shrinking, rounded)."""
    resized = tf.image.resize(tf.cast(frames, tf.float32), (frame_size, frame_size),
                              antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def decode_gifs(video_bytes, frame_size, max_frames):
    """string `[B]` GIFs -> uint8 frames `[B, max_frames, size, size, 3]`
    (zero-padded) and int32 lengths `[B]`, with stock ops only."""

    def decode(data):
        # tf.Assert with the message alone: the bytes are no text to print.
        checks = [tf.debugging.Assert(
            tf.equal(tf.strings.substr(data, 0, 4), "GIF8"),
            ["video_bytes: not a GIF (an animated GIF starts with GIF87a or GIF89a)"])]
        with tf.control_dependencies(checks):
            frames = tf.io.decode_gif(data)  # --> [T, H, W, 3]
        shape = tf.shape(frames)
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                shape[0], max_frames,
                message=f"video_bytes: at most {max_frames} frames per clip (max_frames); "
                        f"subsample longer clips")]):
            frames = tf.cond(tf.logical_and(shape[1] == frame_size, shape[2] == frame_size),
                             lambda: tf.identity(frames),
                             lambda: resize_frames(frames, frame_size))
        frames = tf.pad(frames, [[0, max_frames - shape[0]], [0, 0], [0, 0], [0, 0]])
        return tf.ensure_shape(frames, [max_frames, frame_size, frame_size, 3]), shape[0]

    return tf.map_fn(decode, video_bytes, fn_output_signature=(
        tf.TensorSpec([max_frames, frame_size, frame_size, 3], tf.uint8),
        tf.TensorSpec([], tf.int32)))
