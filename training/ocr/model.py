"""The text reader's model: a line encoder (convolutions over the line image,
one annotation per image column) and the shared attention decoder
(`training.core.seq2seq`)."""

import keras
from keras import ops

from training.core.encoders import positive_int
from training.core.image_encoders import ConvImageEncoder
from training.core.seq2seq import AttentionSeq2Seq, build_decoder_cell

COLUMN_STRIDE = 4  # pixels of the image per annotation column


@keras.saving.register_keras_serializable(package="keras_attention_training")
class LineEncoder(ConvImageEncoder):
    """Line images `[B, H, W, 3]` -> one annotation per column of the image,
    `[B, W/4, units]` (a grid of 1 x W/4 regions), all real.

    `ConvImageEncoder`'s blocks, with only the first two halving the width:
    each column of the last feature map (its rows concatenated) is projected
    to `units` and given a learned embedding of its position, so that the
    attention can walk along the line (Wojna et al. 2017 add the position
    as a one-hot code).

    With `column_rnn=True` a bidirectional GRU (`units / 2` a direction)
    runs along the columns, so that each annotation also knows its
    neighbours (as CRNN and ASTER read a line).

    Args:
        filters: Channels of the first block, doubling each block.
        blocks: Blocks; each halves the height.
        units: Size of each column's annotation (even with `column_rnn`).
        column_rnn: Whether a bidirectional GRU reads along the columns.

    Example:

    >>> import numpy as np
    >>> encoder = LineEncoder(filters=4, blocks=3, units=8)
    >>> columns, mask = encoder(np.zeros((2, 32, 64, 3), "uint8"))
    >>> tuple(columns.shape), encoder.grid_shape((32, 64))
    ((2, 16, 8), (1, 16))
    """

    def __init__(self, filters=16, blocks=3, units=128, column_rnn=False, **kwargs):
        super().__init__(filters, blocks, **kwargs)
        self.units = positive_int("units", units)
        self.column_rnn = bool(column_rnn)
        if self.column_rnn and self.units % 2:
            raise ValueError(f"`units` must be even with `column_rnn`, received {units}")
        self.rnn = None

    @property
    def output_dim(self):
        return self.units

    def grid_shape(self, image_size):
        """`(1, W / 4)` for images of `(height, width)`."""
        return 1, int(image_size[1]) // COLUMN_STRIDE

    def _pool_size(self, block):
        return 2 if block < 2 else (2, 1)  # from the third block on: the height only

    def build(self, images_shape):
        super().build(images_shape)
        height = images_shape[1] // 2 ** self.blocks
        self.columns = images_shape[2] // COLUMN_STRIDE
        channels = super().output_dim
        self.projection = keras.layers.Dense(self.units, name="column_projection",
                                             dtype=self.dtype_policy)
        self.projection.build((None, None, height * channels))
        self.position = self.add_weight(name="column_position", shape=(self.columns, self.units),
                                        initializer="zeros")
        if self.column_rnn:
            self.rnn = keras.layers.Bidirectional(
                keras.layers.GRU(self.units // 2, return_sequences=True,
                                 dtype=self.dtype_policy),
                name="column_rnn", dtype=self.dtype_policy)
            self.rnn.build((None, None, self.units))

    def feature_map(self, images, training=None):
        features = super().feature_map(images, training=training)  # --> [B, h, w, C]
        shape = ops.shape(features)
        columns = ops.reshape(ops.transpose(features, (0, 2, 1, 3)),
                              (shape[0], 1, shape[2], shape[1] * shape[3]))
        columns = self.projection(columns) + ops.cast(self.position, self.compute_dtype)
        columns = ops.tanh(columns)  # --> [B, 1, w, units]
        if self.rnn is not None:
            columns = self.rnn(columns[:, 0], training=training)[:, None]
        return columns

    def compute_output_spec(self, images, training=None):
        columns = None if images.shape[2] is None else images.shape[2] // COLUMN_STRIDE
        return (keras.KerasTensor((images.shape[0], columns, self.units),
                                  dtype=self.compute_dtype),
                keras.KerasTensor((images.shape[0], columns), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "column_rnn": self.column_rnn}


def build_model(config, vocab_size):
    """An `AttentionSeq2Seq` for line images -> character logits `[B, T, V]`."""
    return AttentionSeq2Seq(
        LineEncoder(config.cnn_filters, 3, config.units, column_rnn=config.column_rnn,
                    name="encoder"), vocab_size,
        config.embedding_dim, build_decoder_cell(config), fast_path="auto",
        dropout=config.dropout, attention_supervision=config.attention_supervision,
        name="text_reader")
