"""The reference: TensorFlow's "nmt_with_attention" tutorial architecture.

Encoder: Embedding(V, units) + Bidirectional(GRU(units), merge_mode="sum").
Decoder: Embedding(V, units) + GRU(units) over the target, then one-head
MultiHeadAttention(key_dim=units) from the GRU outputs to the encoder
outputs, Add + LayerNormalization, Dense(V); the embeddings have `units`
dimensions. The tutorial trains it with Adam (learning rate 1e-3, no
schedule, no clipping, no label smoothing) on a masked cross-entropy,
batch 64, 256 units and word vocabularies of 5,000 entries per language
(`TextVectorization(max_tokens=5000)`, its padding and [UNK] included).

It exposes the same interface as `AttentionSeq2Seq` (`call` on
`{"source", "target_in"}`, `step`, `decoding_inputs`, and the searches
built on them: `search_setup`, `search_step` and `generate`, with the
same options, the n-gram repetition guard included), so the benchmark
trains, decodes (through the translation exporter) and scores both
through the same code.
"""

import keras
from keras import ops

from training.core.seq2seq import AttentionSeq2Seq


class ReferenceNMT(keras.Model):
    def __init__(self, source_vocab_size, target_vocab_size, units=256, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.source_embedding = keras.layers.Embedding(source_vocab_size, units, mask_zero=True)
        self.encoder_rnn = keras.layers.Bidirectional(
            keras.layers.GRU(units, return_sequences=True, recurrent_initializer="glorot_uniform"),
            merge_mode="sum")
        self.target_embedding = keras.layers.Embedding(target_vocab_size, units, mask_zero=True)
        self.decoder_rnn = keras.layers.GRU(units, return_sequences=True, return_state=True,
                                            recurrent_initializer="glorot_uniform")
        self.attention = keras.layers.MultiHeadAttention(key_dim=units, num_heads=1)
        self.layer_norm = keras.layers.LayerNormalization()
        self.output_layer = keras.layers.Dense(target_vocab_size)

    def encode(self, source):
        source = ops.cast(source, "int32")
        mask = source != 0
        return self.encoder_rnn(self.source_embedding(source), mask=mask), mask

    def _attend(self, x, context, context_mask, x_mask=None):
        attended, weights = self.attention(query=x, value=context, query_mask=x_mask,
                                           value_mask=context_mask, return_attention_scores=True)
        return self.layer_norm(x + attended), weights  # weights [B, heads=1, T, S]

    def call(self, inputs, training=None):
        context, context_mask = self.encode(inputs["source"])
        target_in = ops.cast(inputs["target_in"], "int32")
        target_mask = target_in != 0
        x = self.target_embedding(target_in)
        x, _ = self.decoder_rnn(x, mask=target_mask)
        x, _ = self._attend(x, context, context_mask, target_mask)
        return ops.cast(self.output_layer(x), "float32")

    def step(self, tokens, state, constants):
        context, context_mask = constants
        x = self.target_embedding(ops.cast(tokens, "int32"))
        h, new_state = self.decoder_rnn.cell(x, state)
        x, weights = self._attend(h[:, None], context, context_mask)
        logits = ops.cast(self.output_layer(x[:, 0]), "float32")
        return logits, new_state, weights[:, 0, 0]

    def decoding_inputs(self, source):
        """Encodes once: `(initial_state, constants)` for `step`: the
        decoder GRU's zero state `[B, units]`, and the encoder's outputs
        `[B, S, units]` with their mask `[B, S]`."""
        context, context_mask = self.encode(source)
        return [ops.zeros((ops.shape(context)[0], self.units))], (context, context_mask)

    # The searches around `decoding_inputs` and `step` are our model's own,
    # so the exporter and `generate` decode both models alike.
    search_setup = AttentionSeq2Seq.search_setup
    search_step = AttentionSeq2Seq.search_step
    generate = AttentionSeq2Seq.generate
