"""Assembles the video captioning models from a config.

Both models share the frame encoder and the decoder
(`training.core.seq2seq.AttentionSeq2Seq`); they differ in the memory the
decoder reads:

* `model=attention` (Yao et al. 2015, "Describing Videos by Exploiting
  Temporal Structure"): the memory is one annotation per frame, `[B, T, D]`,
  masked by each clip's length, and the decoder attends over time.
* `model=mean_pool` (Venugopalan et al. 2015, "Translating Videos to
  Natural Language"): the annotations are averaged over the clip's frames
  (a masked mean) into one vector, and the memory is that single position,
  `[B, 1, D]`. The same decoder code runs; its attention over one position
  is 1 at every step, so the context is the mean vector at every step: the
  mean-pooled model is the attention model with uniform attention over the
  frames. (Its attention weights exist, so both models have the same
  parameter count, but they never get a gradient.)

The source is a dict: `{"frames": uint8 [B, T, H, W, 3], "lengths": int32
[B]}`, or `{"features": float32 [B, T, D], "lengths": [B]}` for precomputed
per-frame features. Frames past a clip's length are padding: they get
exactly zero attention and change nothing.
"""

import warnings

import keras
from keras import ops

from training.core.encoders import positive_int
from training.core.image_encoders import ConvImageEncoder
from training.core.seq2seq import AttentionSeq2Seq, build_decoder_cell

# The mean-pooled model's attention is a softmax over its one position, on purpose.
warnings.filterwarnings("ignore", message=r"You are using a softmax over axis -1 of a tensor "
                        r"of shape \(.*, 1\)\. This axis has size 1")

TEMPORAL_ENCODERS = ("none", "local", "bigru")
MODELS = ("attention", "mean_pool")


def frame_mask(lengths, frame_count):
    """bool `[B, T]`: True for the first `lengths[b]` frames of row b."""
    positions = ops.arange(frame_count, dtype="int32")[None, :]  # --> [1, T]
    return positions < ops.cast(lengths, "int32")[:, None]


def masked_mean(values, mask):
    """Mean over axis 1 of `[B, T, D]`, counting only `mask [B, T]` positions.

    A row without any valid position gives zeros.
    """
    keep = ops.cast(mask, values.dtype)[..., None]  # --> [B, T, 1]
    total = ops.sum(values * keep, axis=1)  # --> [B, D]
    count = ops.maximum(ops.sum(keep, axis=1), ops.cast(1.0, values.dtype))  # --> [B, 1]
    return total / count


@keras.saving.register_keras_serializable(package="keras_attention_training")
class VideoEncoder(keras.layers.Layer):
    """Clips -> `(memory [B, T, D] or [B, 1, D], memory_mask)`.

    Three stages:

    1. Frame features (frames only): the image encoder on every frame, its
       region grid mean-pooled into one vector per frame, `[B, T, C]`. With
       `position_channels`, two coordinate channels (x and y) are added to
       every frame first (CoordConv, Liu et al. 2018), so that the pooled
       vector can say where a shape is, which averaging the grid would
       otherwise mostly lose (and a move is a change of place).
    2. A temporal encoder over the frames, so that an annotation knows what
       changes at its frame (a single frame shows no motion) and where it
       lies in the clip:
       * `"none"`: the frame features as they are, `[B, T, C]`;
       * `"local"`: `relu(W [x_t; x_t - x_{t-1}; t / (L - 1)])`, `[B, T, 2H]`:
         the frame, its change from the frame before and its relative time.
         An annotation then knows only its own frame and its neighbour, so
         the decoder must look at an event's frames to tell it, and the
         time channel lets it move on in order;
       * `"bigru"`: a bidirectional GRU, `[B, T, 2H]`: every annotation can
         know the whole clip, which helps the words but frees attention
         from looking where the event is.
    3. `mean_pool=True` only: the masked mean over the frames, `[B, 1, D]`.

    The image encoder sees each frame alone, so the features of stage 1
    can be computed elsewhere and fed as `{"features", "lengths"}`: the
    features input of the export.

    Args:
        frame_encoder: An `ImageEncoder` (frames source), or None (features
            source: the model takes `{"features", "lengths"}` only).
        feature_dim: C of precomputed features (features source only).
        temporal_encoder: `"none"`, `"local"` or `"bigru"`.
        temporal_units: H: GRU units per direction, or half the units of
            the local encoder.
        mean_pool: Average the annotations over time into one position.
        position_channels: Add coordinate channels to the frames.

    Call arguments:
        source: dict with `"lengths"` int `[B]` (1 <= length <= T) and
            either `"frames"` uint8 `[B, T, H, W, 3]` or `"features"`
            float `[B, T, C]`.

    Returns:
        memory `[B, T, D]` (`[B, 1, D]` mean pooled) and its bool mask.

    Example:

    >>> import numpy as np
    >>> encoder = VideoEncoder(ConvImageEncoder(filters=4, blocks=2), temporal_encoder="bigru",
    ...                        temporal_units=3)
    >>> frames = np.zeros((2, 5, 16, 16, 3), "uint8")   # [B, T, H, W, 3]
    >>> memory, mask = encoder({"frames": frames, "lengths": np.array([5, 2])})
    >>> tuple(memory.shape), mask.numpy().tolist()
    ((2, 5, 6), [[True, True, True, True, True], [True, True, False, False, False]])
    """

    def __init__(self, frame_encoder=None, feature_dim=None, temporal_encoder="none",
                 temporal_units=64, mean_pool=False, position_channels=True, **kwargs):
        super().__init__(**kwargs)
        if temporal_encoder not in TEMPORAL_ENCODERS:
            raise ValueError(f"`temporal_encoder` must be one of {TEMPORAL_ENCODERS}, received "
                             f"{temporal_encoder!r}")
        if frame_encoder is None and feature_dim is None:
            raise ValueError("give a `frame_encoder` (frames) or a `feature_dim` (features)")
        self.frame_encoder = frame_encoder
        self.feature_dim = (frame_encoder.output_dim if frame_encoder is not None
                            else positive_int("feature_dim", feature_dim))
        self.temporal_encoder = temporal_encoder
        self.temporal_units = positive_int("temporal_units", temporal_units)
        self.mean_pool = bool(mean_pool)
        self.position_channels = bool(position_channels) and frame_encoder is not None
        self.temporal = None

    @property
    def source_kind(self):
        """`"frames"` or `"features"`: what the model was trained on."""
        return "frames" if self.frame_encoder is not None else "features"

    @property
    def output_dim(self):
        """D of the memory."""
        if self.temporal_encoder == "none":
            return self.feature_dim
        return 2 * self.temporal_units

    def build(self, source_shape):
        # A loaded model's frame encoder comes built from its own config.
        frame_encoder = self.frame_encoder
        if frame_encoder is not None and not frame_encoder.built and "frames" in source_shape:
            frames_shape = tuple(source_shape["frames"])  # [B, T, H, W, 3]
            channels = frames_shape[-1] + (2 if self.position_channels else 0)
            frame_encoder.build((None, *frames_shape[2:-1], channels))
        if self.temporal_encoder == "bigru":
            self.temporal = keras.layers.Bidirectional(
                keras.layers.GRU(self.temporal_units, return_sequences=True,
                                 dtype=self.dtype_policy),
                name="temporal_bigru", dtype=self.dtype_policy)
            self.temporal.build((None, None, self.feature_dim))
        elif self.temporal_encoder == "local":
            self.temporal = keras.layers.Dense(2 * self.temporal_units, activation="relu",
                                               name="temporal_local", dtype=self.dtype_policy)
            self.temporal.build((None, None, 2 * self.feature_dim + 1))
        self.built = True

    def frame_features(self, frames, training=None):
        """uint8 frames `[B, T, H, W, 3]` -> float features `[B, T, C]`."""
        if self.frame_encoder is None:
            raise ValueError("this encoder takes precomputed features, not frames")
        shape = ops.shape(frames)
        images = ops.reshape(ops.cast(frames, self.compute_dtype),
                             (shape[0] * shape[1], shape[2], shape[3], shape[4]))
        if self.position_channels:
            images = add_position_channels(images)  # --> [B*T, H, W, 5]
        regions, _ = self.frame_encoder(images, training=training)  # --> [B*T, h*w, C]
        pooled = ops.mean(regions, axis=1)  # --> [B*T, C]
        return ops.reshape(pooled, (shape[0], shape[1], self.feature_dim))

    def call(self, source, training=None):
        lengths = ops.cast(source["lengths"], "int32")
        if "frames" in source:
            features = self.frame_features(source["frames"], training=training)
        else:
            features = ops.cast(source["features"], self.compute_dtype)
        mask = frame_mask(lengths, ops.shape(features)[1])  # --> [B, T]
        # Padding frames may hold anything, NaN included (a client's garbage):
        # replace them, since 0 * NaN would still be NaN.
        memory = ops.where(mask[..., None], features, ops.zeros_like(features))  # --> [B, T, C]
        if self.temporal_encoder == "bigru":
            memory = self.temporal(memory, mask=mask, training=training)  # --> [B, T, 2H]
        elif self.temporal_encoder == "local":
            memory = self.local_annotations(memory, lengths, mask)  # --> [B, T, 2H]
        if self.mean_pool:
            memory = masked_mean(memory, mask)[:, None, :]  # --> [B, 1, D]
            mask = ops.ones((ops.shape(memory)[0], 1), dtype="bool")
        return memory, mask

    def local_annotations(self, features, lengths, mask):
        """`[B, T, C]` -> `[B, T, 2H]`: each frame with its change and its time."""
        previous = ops.concatenate([features[:, :1], features[:, :-1]], axis=1)  # --> [B, T, C]
        steps = ops.cast(ops.arange(ops.shape(features)[1]), features.dtype)  # --> [T]
        last = ops.cast(ops.maximum(lengths - 1, 1), features.dtype)  # --> [B]
        time = (steps[None, :] / last[:, None])[..., None]  # --> [B, T, 1]
        annotations = self.temporal(
            ops.concatenate([features, features - previous, time], axis=-1))
        return ops.where(mask[..., None], annotations, ops.zeros_like(annotations))

    def compute_output_spec(self, source, training=None):
        inputs = source["frames"] if "frames" in source else source["features"]
        batch, steps = inputs.shape[0], (1 if self.mean_pool else inputs.shape[1])
        return (keras.KerasTensor((batch, steps, self.output_dim), dtype=self.compute_dtype),
                keras.KerasTensor((batch, steps), dtype="bool"))

    def get_config(self):
        return {
            **super().get_config(),
            "frame_encoder": (None if self.frame_encoder is None
                              else keras.saving.serialize_keras_object(self.frame_encoder)),
            "feature_dim": None if self.frame_encoder is not None else self.feature_dim,
            "temporal_encoder": self.temporal_encoder,
            "temporal_units": self.temporal_units,
            "mean_pool": self.mean_pool,
            "position_channels": self.position_channels,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("frame_encoder") is not None:
            config["frame_encoder"] = keras.saving.deserialize_keras_object(
                config["frame_encoder"])
        return cls(**config)


def add_position_channels(images):
    """`[N, H, W, 3]` in 0..255 -> `[N, H, W, 5]`: x and y in 0..255 appended
    (the image encoder maps 0..255 to -1..1, so they span the same range)."""
    shape = ops.shape(images)
    height, width = shape[1], shape[2]
    ys = ops.cast(ops.arange(height), images.dtype) * (255.0 / ops.cast(
        ops.maximum(height - 1, 1), images.dtype))
    xs = ops.cast(ops.arange(width), images.dtype) * (255.0 / ops.cast(
        ops.maximum(width - 1, 1), images.dtype))
    y_channel = ops.broadcast_to(ys[None, :, None, None], (shape[0], height, width, 1))
    x_channel = ops.broadcast_to(xs[None, None, :, None], (shape[0], height, width, 1))
    return ops.concatenate([images, x_channel, y_channel], axis=-1)


def build_encoder(config, feature_dim=None):
    """The `VideoEncoder` a `VideoConfig` describes; `feature_dim` is the
    features' C when `config.source == "features"`."""
    frame_encoder = None
    if config.source == "frames":
        frame_encoder = ConvImageEncoder(config.cnn_filters, config.cnn_blocks,
                                         name="frame_encoder")
    return VideoEncoder(frame_encoder, feature_dim=feature_dim,
                        temporal_encoder=config.temporal_encoder,
                        temporal_units=config.temporal_units,
                        mean_pool=config.model == "mean_pool",
                        position_channels=config.position_channels, name="encoder")


def build_model(config, vocab_size, feature_dim=None):
    """An `AttentionSeq2Seq` for clips -> caption logits `[B, T, V]`."""
    return AttentionSeq2Seq(
        build_encoder(config, feature_dim), vocab_size, config.embedding_dim,
        build_decoder_cell(config), fast_path="auto", dropout=config.dropout,
        attention_regularization=config.attention_regularization,
        name="video_captioner",
    )
