"""The reference: TensorFlow's image-captioning-with-attention tutorial design.

CNN features -> `Dense(embedding_dim, relu)` ("CNN_Encoder"); a GRU decoder
with Bahdanau attention that, at every step, scores
`V tanh(W1 features + W2 h_{t-1})`, so it recomputes the feature
projection `W1 features` each step; the context joins the word embedding as
the GRU input; then `Dense(units)` and `Dense(V)`. Here it runs as a
`tf.scan` over the target steps (the tutorial's Python loop inside a
GradientTape, as one graph), on the same CNN as ours, so the comparison
is of the decoders.
"""

import keras
import tensorflow as tf


class TutorialCaptioner(keras.Model):
    """`{"source": images, "target_in": ids [B, T]}` -> logits `[B, T, V]`."""

    def __init__(self, image_encoder, vocab_size, embedding_dim, units, **kwargs):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.units = units
        self.feature_projection = keras.layers.Dense(embedding_dim, activation="relu")
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru_cell = keras.layers.GRUCell(units)
        self.w1 = keras.layers.Dense(units)
        self.w2 = keras.layers.Dense(units)
        self.v = keras.layers.Dense(1)
        self.fc1 = keras.layers.Dense(units)
        self.fc2 = keras.layers.Dense(vocab_size)

    def call(self, inputs, training=None):
        regions, _ = self.image_encoder(inputs["source"], training=training)
        features = self.feature_projection(regions)  # --> [B, S, E]
        target_in = tf.cast(inputs["target_in"], tf.int32)
        embedded = tf.transpose(self.embedding(target_in), [1, 0, 2])  # --> [T, B, E]
        hidden = tf.zeros([tf.shape(target_in)[0], self.units])

        def step(carry, x):
            hidden, _ = carry
            # Recomputed every step, as in the tutorial's BahdanauAttention.
            score = self.v(tf.nn.tanh(self.w1(features) + self.w2(hidden)[:, None]))  # [B, S, 1]
            weights = tf.nn.softmax(score, axis=1)
            context = tf.reduce_sum(weights * features, axis=1)  # --> [B, E]
            output, states = self.gru_cell(tf.concat([context, x], -1), [hidden])
            return states[0], self.fc2(self.fc1(output))

        _, logits = tf.scan(step, embedded,
                            initializer=(hidden, tf.zeros([tf.shape(target_in)[0],
                                                           self.fc2.units])))
        return tf.transpose(logits, [1, 0, 2])  # --> [B, T, V]
