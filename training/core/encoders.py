"""Encoders: a source -> `(memory [B, S, D], memory_mask [B, S])`.

The decoder side (`AttentionSeq2Seq`) is the same for every task; only the
encoder changes: text (recurrent, convolutional, Transformer), image grids,
video frames.
"""

import numbers

import keras
from keras import ops

RNN_TYPES = ("gru", "lstm")


def positive_int(name, value):
    """`value` as an int, or a ValueError naming the argument `name`. (bool
    is an Integral: `units=True` is a mistake, not 1.)"""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}")
    return int(value)


def _rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1), received {name}={value!r}")
    return float(value)


class TextEncoder(keras.layers.Layer):
    """Base of the text encoders: token ids `[B, S]` -> `(memory, mask)`.

    Holds what the encoders share: argument validation, the padding mask
    (id 0 is padding) and `compute_output_spec`. A subclass sets
    `output_dim` (D), makes its sublayers in `build` and maps
    `(ids [B, S'], mask [B, S'])` from `ids_and_mask` to the memory.

    Returns of a call: memory `[B, S', D]` in the compute dtype and mask
    `[B, S']` bool, `S' = min(S, max_length)` (`S' = S` without a
    `max_length`).

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        dropout: Dropout rate, in [0, 1).
        max_length: Most positions kept, or None for no limit.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, vocab_size, dropout=0.0, max_length=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.dropout = _rate("dropout", dropout)
        self.max_length = None if max_length is None else positive_int("max_length", max_length)

    @property
    def output_dim(self):
        """Size D of the memory."""
        raise NotImplementedError

    def ids_and_mask(self, source):
        """int32 ids `[B, S']`, cut to `max_length`, and their mask `ids != 0`."""
        ids = ops.cast(source, "int32")
        if self.max_length is not None:
            ids = ids[:, : self.max_length]
        return ids, ids != 0

    def compute_output_spec(self, source, training=None):
        batch, steps = source.shape[0], source.shape[1]
        if steps is not None and self.max_length is not None:
            steps = min(steps, self.max_length)
        return (keras.KerasTensor((batch, steps, self.output_dim), dtype=self.compute_dtype),
                keras.KerasTensor((batch, steps), dtype="bool"))


@keras.saving.register_keras_serializable(package="keras_attention_training")
class RecurrentTextEncoder(TextEncoder):
    """Token ids `[B, S]` -> annotations `[B, S, 2H]` (bidirectional) and mask.

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        embedding_dim: Source embedding size.
        units: Recurrent units per direction (H).
        rnn_type: `"gru"` or `"lstm"`.
        num_layers: Stacked bidirectional layers.
        dropout: Dropout between layers, in [0, 1).

    Returns of a call: memory `[B, S, 2H]` and mask `[B, S]` bool, `ids != 0`.

    Example:

    >>> import numpy as np
    >>> encoder = RecurrentTextEncoder(vocab_size=20, embedding_dim=8, units=6)
    >>> memory, mask = encoder(np.array([[4, 7, 2, 0], [5, 0, 0, 0]]))   # [B, S]
    >>> tuple(memory.shape), mask.numpy().tolist()
    ((2, 4, 12), [[True, True, True, False], [True, False, False, False]])
    """

    def __init__(self, vocab_size, embedding_dim, units, rnn_type="gru", num_layers=1,
                 dropout=0.0, **kwargs):
        super().__init__(vocab_size, dropout=dropout, **kwargs)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"`rnn_type` must be one of {RNN_TYPES}, received "
                             f"rnn_type={rnn_type!r}")
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        self.units = positive_int("units", units)
        self.num_layers = positive_int("num_layers", num_layers)
        self.rnn_type = rnn_type

    @property
    def output_dim(self):
        return 2 * self.units

    def build(self, source_shape):
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, mask_zero=True, dtype=policy
        )
        rnn = keras.layers.GRU if self.rnn_type == "gru" else keras.layers.LSTM
        self.rnns = [
            keras.layers.Bidirectional(
                rnn(self.units, return_sequences=True, dtype=policy), name=f"birnn_{i}",
                dtype=policy,
            )
            for i in range(self.num_layers)
        ]
        self.between = keras.layers.Dropout(self.dropout, dtype=policy)
        self.embedding.build(source_shape)
        shape = tuple(source_shape) + (self.embedding_dim,)  # [B, S, E]
        for rnn_layer in self.rnns:
            rnn_layer.build(shape)
            shape = shape[:-1] + (2 * self.units,)  # [B, S, 2H]

    def call(self, source, training=None):
        ids, mask = self.ids_and_mask(source)  # --> [B, S], [B, S]
        x = self.embedding(ids)  # --> [B, S, E]
        for i, rnn in enumerate(self.rnns):
            if i:
                x = self.between(x, training=training)
            x = rnn(x, mask=mask, training=training)  # --> [B, S, 2H]
        return x, mask

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units,
                "rnn_type": self.rnn_type, "num_layers": self.num_layers,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_attention_training")
class ConvTextEncoder(TextEncoder):
    """Token ids `[B, S]` -> `[B, S, D]` with residual gated convolutions
    (Gehring et al. 2017, "Convolutional Sequence to Sequence Learning").

    Args:
        vocab_size, embedding_dim: Source vocabulary and embedding sizes.
        units: Channels D.
        num_layers: Residual GLU convolution blocks.
        kernel_size: Convolution width.
        max_length: Most positions (learned position embeddings); longer
            sources are cut to it.
        dropout: Dropout before each block, in [0, 1).

    Returns of a call: memory `[B, S', D]`, zero at padded positions, and
    mask `[B, S']` bool, `ids != 0`, with `S' = min(S, max_length)`.

    Example:

    >>> import numpy as np
    >>> encoder = ConvTextEncoder(vocab_size=20, embedding_dim=8, units=6, num_layers=2)
    >>> memory, mask = encoder(np.array([[4, 7, 2, 0], [5, 0, 0, 0]]))   # [B, S]
    >>> tuple(memory.shape), mask.numpy().tolist()
    ((2, 4, 6), [[True, True, True, False], [True, False, False, False]])
    """

    def __init__(self, vocab_size, embedding_dim, units, num_layers=4, kernel_size=3,
                 max_length=512, dropout=0.0, **kwargs):
        super().__init__(vocab_size, dropout=dropout, max_length=max_length, **kwargs)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        self.units = positive_int("units", units)
        self.num_layers = positive_int("num_layers", num_layers)
        self.kernel_size = positive_int("kernel_size", kernel_size)

    @property
    def output_dim(self):
        return self.units

    def build(self, source_shape):
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, dtype=policy)
        self.positions = keras.layers.Embedding(self.max_length, self.embedding_dim, dtype=policy)
        self.input_projection = keras.layers.Dense(self.units, dtype=policy)
        self.convolutions = [
            keras.layers.Conv1D(2 * self.units, self.kernel_size, padding="same",
                                name=f"conv_{i}", dtype=policy)
            for i in range(self.num_layers)
        ]
        self.dropouts = [keras.layers.Dropout(self.dropout, dtype=policy)
                         for _ in range(self.num_layers)]
        self.embedding.build(source_shape)
        self.positions.build((None,))
        self.input_projection.build(tuple(source_shape) + (self.embedding_dim,))  # [B, S, E]
        for convolution in self.convolutions:
            convolution.build(tuple(source_shape) + (self.units,))  # [B, S, D]

    def call(self, source, training=None):
        ids, mask = self.ids_and_mask(source)  # --> [B, S], [B, S]
        keep = ops.cast(mask, self.compute_dtype)[..., None]  # --> [B, S, 1]
        positions = ops.arange(ops.shape(ids)[1])
        x = self.embedding(ids) + self.positions(positions)[None]  # --> [B, S, E]
        x = self.input_projection(x) * keep  # --> [B, S, D]
        for convolution, dropout in zip(self.convolutions, self.dropouts):
            gated = convolution(dropout(x, training=training))  # --> [B, S, 2D]
            value, gate = ops.split(gated, 2, axis=-1)
            x = (x + value * ops.sigmoid(gate)) * ops.cast(0.5 ** 0.5, x.dtype) * keep
        return x, mask

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units,
                "num_layers": self.num_layers, "kernel_size": self.kernel_size,
                "max_length": self.max_length, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_attention_training")
class TransformerTextEncoder(TextEncoder):
    """Token ids `[B, S]` -> `[B, S, D]` with Transformer encoder blocks
    (Vaswani et al. 2017), pre-layer-norm, learned positions.

    Args:
        vocab_size: Source vocabulary size.
        units: Model width D (embedding size too); a multiple of
            `num_heads`.
        num_layers, num_heads, feedforward_units: Block sizes;
            `feedforward_units` defaults to `4 * units`.
        max_length: Most positions; longer sources are cut to it.
        dropout: Dropout rate, in [0, 1).

    Returns of a call: memory `[B, S', D]` and mask `[B, S']` bool,
    `ids != 0`, with `S' = min(S, max_length)`. Padded positions neither
    attend nor are attended to.

    Example:

    >>> import numpy as np
    >>> encoder = TransformerTextEncoder(vocab_size=20, units=8, num_heads=2)
    >>> memory, mask = encoder(np.array([[4, 7, 2, 0], [5, 0, 0, 0]]))   # [B, S]
    >>> tuple(memory.shape), mask.numpy().tolist()
    ((2, 4, 8), [[True, True, True, False], [True, False, False, False]])
    """

    def __init__(self, vocab_size, units, num_layers=2, num_heads=4, feedforward_units=None,
                 max_length=512, dropout=0.0, **kwargs):
        super().__init__(vocab_size, dropout=dropout, max_length=max_length, **kwargs)
        self.units = positive_int("units", units)
        self.num_layers = positive_int("num_layers", num_layers)
        self.num_heads = positive_int("num_heads", num_heads)
        if self.units % self.num_heads:
            raise ValueError(f"`units` must be divisible by `num_heads`, received "
                             f"units={units!r} and num_heads={num_heads!r}")
        self.feedforward_units = (
            4 * self.units if feedforward_units is None
            else positive_int("feedforward_units", feedforward_units)
        )

    @property
    def output_dim(self):
        return self.units

    def build(self, source_shape):
        policy, units, num_layers = self.dtype_policy, self.units, self.num_layers
        self.embedding = keras.layers.Embedding(self.vocab_size, units, dtype=policy)
        self.positions = keras.layers.Embedding(self.max_length, units, dtype=policy)
        self.attention_norms = [keras.layers.LayerNormalization(dtype=policy)
                                for _ in range(num_layers)]
        self.self_attentions = [
            keras.layers.MultiHeadAttention(self.num_heads, units // self.num_heads,
                                            dropout=self.dropout, dtype=policy)
            for _ in range(num_layers)
        ]
        self.feedforward_norms = [keras.layers.LayerNormalization(dtype=policy)
                                  for _ in range(num_layers)]
        self.feedforward_hidden = [
            keras.layers.Dense(self.feedforward_units, activation="relu", dtype=policy)
            for _ in range(num_layers)
        ]
        self.feedforward_output = [keras.layers.Dense(units, dtype=policy)
                                   for _ in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization(dtype=policy)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)
        self.embedding.build(source_shape)
        self.positions.build((None,))
        shape = tuple(source_shape) + (units,)  # [B, S, D]
        for i in range(num_layers):
            self.attention_norms[i].build(shape)
            self.self_attentions[i].build(shape, shape)
            self.feedforward_norms[i].build(shape)
            self.feedforward_hidden[i].build(shape)
            self.feedforward_output[i].build(shape[:-1] + (self.feedforward_units,))
        self.final_norm.build(shape)

    def call(self, source, training=None):
        ids, mask = self.ids_and_mask(source)  # --> [B, S], [B, S]
        positions = ops.arange(ops.shape(ids)[1])
        x = self.embedding(ids) * ops.cast(self.units ** 0.5, self.compute_dtype)
        x = self.dropout_layer(x + self.positions(positions)[None], training=training)
        attention_mask = ops.logical_and(mask[:, :, None], mask[:, None, :])  # --> [B, S, S]
        for i in range(self.num_layers):
            y = self.attention_norms[i](x)
            y = self.self_attentions[i](y, y, attention_mask=attention_mask, training=training)
            x = x + self.dropout_layer(y, training=training)
            y = self.feedforward_hidden[i](self.feedforward_norms[i](x))  # --> [B, S, F]
            x = x + self.dropout_layer(self.feedforward_output[i](y), training=training)
        return self.final_norm(x), mask

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "units": self.units,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "feedforward_units": self.feedforward_units, "max_length": self.max_length,
                "dropout": self.dropout}
