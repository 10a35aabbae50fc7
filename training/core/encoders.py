"""Encoders: a source -> `(memory [B, S, D], memory_mask [B, S])`.

The decoder side (`AttentionSeq2Seq`) is the same for every task; only the
encoder changes: text (recurrent, convolutional, Transformer), image grids,
video frames.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_attention_training")
class RecurrentTextEncoder(keras.layers.Layer):
    """Token ids `[B, S]` -> annotations `[B, S, 2H]` (bidirectional) and mask.

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        embedding_dim: Source embedding size.
        units: Recurrent units per direction.
        rnn_type: `"gru"` or `"lstm"`.
        num_layers: Stacked bidirectional layers.
        dropout: Dropout between layers.
    """

    def __init__(self, vocab_size, embedding_dim, units, rnn_type="gru", num_layers=1,
                 dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if rnn_type not in ("gru", "lstm"):
            raise ValueError(f"`rnn_type` must be 'gru' or 'lstm', received {rnn_type!r}")
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.rnn_type, self.num_layers, self.dropout = rnn_type, num_layers, dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True)
        rnn = keras.layers.GRU if rnn_type == "gru" else keras.layers.LSTM
        self.rnns = [
            keras.layers.Bidirectional(rnn(units, return_sequences=True), name=f"birnn_{i}")
            for i in range(num_layers)
        ]
        self.between = keras.layers.Dropout(dropout)

    def build(self, source_shape):
        self.embedding.build(source_shape)
        shape = tuple(source_shape) + (self.embedding_dim,)
        for rnn in self.rnns:
            rnn.build(shape)
            shape = shape[:-1] + (2 * self.units,)
        self.built = True

    def call(self, source, training=None):
        source = ops.cast(source, "int32")
        mask = source != 0  # --> [B, S]
        x = self.embedding(source)
        for i, rnn in enumerate(self.rnns):
            if i:
                x = self.between(x, training=training)
            x = rnn(x, mask=mask, training=training)  # --> [B, S, 2H]
        return x, mask

    def compute_output_spec(self, source, training=None):
        batch, steps = source.shape[0], source.shape[1]
        return (keras.KerasTensor((batch, steps, 2 * self.units), dtype=self.compute_dtype),
                keras.KerasTensor((batch, steps), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units,
                "rnn_type": self.rnn_type, "num_layers": self.num_layers,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_attention_training")
class ConvTextEncoder(keras.layers.Layer):
    """Token ids `[B, S]` -> `[B, S, D]` with residual gated convolutions
    (Gehring et al. 2017, "Convolutional Sequence to Sequence Learning").

    Args:
        vocab_size, embedding_dim: Source vocabulary and embedding sizes.
        units: Channels D.
        num_layers: Residual GLU convolution blocks.
        kernel_size: Convolution width.
        max_length: Most positions (learned position embeddings).
        dropout: Dropout before each block.
    """

    def __init__(self, vocab_size, embedding_dim, units, num_layers=4, kernel_size=3,
                 max_length=512, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.num_layers, self.kernel_size = num_layers, kernel_size
        self.max_length, self.dropout = max_length, dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
        self.positions = keras.layers.Embedding(max_length, embedding_dim)
        self.input_projection = keras.layers.Dense(units)
        self.convolutions = [
            keras.layers.Conv1D(2 * units, kernel_size, padding="same", name=f"conv_{i}")
            for i in range(num_layers)
        ]
        self.dropouts = [keras.layers.Dropout(dropout) for _ in range(num_layers)]

    def build(self, source_shape):
        self.embedding.build(source_shape)
        self.positions.build((None,))
        self.input_projection.build(tuple(source_shape) + (self.embedding_dim,))
        for convolution in self.convolutions:
            convolution.build(tuple(source_shape) + (self.units,))
        self.built = True

    def call(self, source, training=None):
        source = ops.cast(source, "int32")[:, : self.max_length]
        mask = source != 0  # --> [B, S]
        keep = ops.cast(mask, self.compute_dtype)[..., None]
        positions = ops.arange(ops.shape(source)[1])
        x = self.embedding(source) + self.positions(positions)[None]
        x = self.input_projection(x) * keep  # --> [B, S, D]
        for convolution, dropout in zip(self.convolutions, self.dropouts):
            gated = convolution(dropout(x, training=training))  # --> [B, S, 2D]
            value, gate = ops.split(gated, 2, axis=-1)
            x = (x + value * ops.sigmoid(gate)) * ops.cast(0.5 ** 0.5, x.dtype) * keep
        return x, mask

    def compute_output_spec(self, source, training=None):
        batch, steps = source.shape[0], source.shape[1]
        return (keras.KerasTensor((batch, steps, self.units), dtype=self.compute_dtype),
                keras.KerasTensor((batch, steps), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units,
                "num_layers": self.num_layers, "kernel_size": self.kernel_size,
                "max_length": self.max_length, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_attention_training")
class TransformerTextEncoder(keras.layers.Layer):
    """Token ids `[B, S]` -> `[B, S, D]` with Transformer encoder blocks
    (Vaswani et al. 2017), pre-layer-norm, learned positions.

    Args:
        vocab_size: Source vocabulary size.
        units: Model width D (embedding size too).
        num_layers, num_heads, feedforward_units: Block sizes.
        max_length: Most positions.
        dropout: Dropout rate.
    """

    def __init__(self, vocab_size, units, num_layers=2, num_heads=4, feedforward_units=None,
                 max_length=512, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.units, self.num_layers = vocab_size, units, num_layers
        self.num_heads, self.max_length, self.dropout = num_heads, max_length, dropout
        self.feedforward_units = feedforward_units or 4 * units
        self.embedding = keras.layers.Embedding(vocab_size, units)
        self.positions = keras.layers.Embedding(max_length, units)
        self.attention_norms = [keras.layers.LayerNormalization() for _ in range(num_layers)]
        self.self_attentions = [
            keras.layers.MultiHeadAttention(num_heads, units // num_heads, dropout=dropout)
            for _ in range(num_layers)
        ]
        self.feedforward_norms = [keras.layers.LayerNormalization() for _ in range(num_layers)]
        self.feedforward_hidden = [
            keras.layers.Dense(self.feedforward_units, activation="relu") for _ in range(num_layers)
        ]
        self.feedforward_output = [keras.layers.Dense(units) for _ in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization()
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, source_shape):
        self.embedding.build(source_shape)
        self.positions.build((None,))
        shape = tuple(source_shape) + (self.units,)
        for i in range(self.num_layers):
            self.attention_norms[i].build(shape)
            self.self_attentions[i].build(shape, shape)
            self.feedforward_norms[i].build(shape)
            self.feedforward_hidden[i].build(shape)
            self.feedforward_output[i].build(shape[:-1] + (self.feedforward_units,))
        self.final_norm.build(shape)
        self.built = True

    def call(self, source, training=None):
        source = ops.cast(source, "int32")[:, : self.max_length]
        mask = source != 0  # --> [B, S]
        positions = ops.arange(ops.shape(source)[1])
        x = self.embedding(source) * ops.cast(self.units ** 0.5, self.compute_dtype)
        x = self.dropout_layer(x + self.positions(positions)[None], training=training)
        attention_mask = ops.logical_and(mask[:, :, None], mask[:, None, :])  # --> [B, S, S]
        for i in range(self.num_layers):
            y = self.attention_norms[i](x)
            y = self.self_attentions[i](y, y, attention_mask=attention_mask, training=training)
            x = x + self.dropout_layer(y, training=training)
            y = self.feedforward_hidden[i](self.feedforward_norms[i](x))
            x = x + self.dropout_layer(self.feedforward_output[i](y), training=training)
        return self.final_norm(x), mask

    def compute_output_spec(self, source, training=None):
        batch, steps = source.shape[0], source.shape[1]
        return (keras.KerasTensor((batch, steps, self.units), dtype=self.compute_dtype),
                keras.KerasTensor((batch, steps), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "units": self.units,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "feedforward_units": self.feedforward_units, "max_length": self.max_length,
                "dropout": self.dropout}
