"""An encoder-decoder with attention, for every task: text, images, video.

The encoder is any layer mapping a source to `(memory [B, S, D], memory_mask
[B, S])`: a recurrent text encoder, a CNN grid of image regions, a sequence
of frame features. The decoder is shared: target embedding, an
`AttentionDecoder` (teacher forcing, fast path when valid), an output
projection, and a step function for the decoding strategies.
"""

import keras
from keras import ops

from keras_attention import decoding
from keras_attention.decoding.repetition import block_repeated_ngrams, initial_guard_state
from keras_attention.layers import (
    AdditiveAttention,
    AttentionDecoder,
    AttentionDecoderCell,
    DotAttention,
)
from training.core.encoders import RecurrentTextEncoder  # noqa: F401 (re-exported)
from training.core.losses import log_uniform_candidates, sampled_softmax_loss


@keras.saving.register_keras_serializable(package="keras_attention_training")
class AttentionSeq2Seq(keras.Model):
    """Encoder + attention decoder.

    Args:
        encoder: Layer, `encoder(source, training=...) -> (memory [B, S, D],
            memory_mask [B, S] bool)`.
        target_vocab_size: V, output vocabulary size (id 0 is padding).
        embedding_dim: Size of the target embeddings.
        decoder_cell: An `AttentionDecoderCell`.
        fast_path: `AttentionDecoder` fast path mode.
        dropout: Dropout on the decoder outputs before the projection.
        attention_regularization: lambda of Show, Attend and Tell's doubly
            stochastic regularization, `lambda * mean_i (1 - sum_t a_ti)^2`
            over unmasked memory positions i and target steps t, averaged
            over the batch and added to the training loss (0: off).
        attention_supervision: lambda of the attention supervision (Liu et
            al. 2017, "Attention Correctness in Neural Image Captioning"):
            where a training batch's inputs carry `"attention_target"`
            `[B, T, S]` (for each target step, the memory positions the word
            it predicts names, e.g. the cells of an object's box; all-zero
            rows for words that name none), `lambda *
            supervised_attention_loss(...)` is added to the training loss
            (0: off; batches without the key are not supervised).
        sampled_softmax: K > 0 trains the output layer on each token's word
            and K log-uniform candidates shared by the batch
            (`training.core.losses.sampled_softmax_loss`) instead of all V
            words; evaluation, decoding and export keep the exact softmax.
            0 (default): the exact softmax in training too.
        label_smoothing: e of the sampled softmax loss (the exact one takes
            its own from `compile`).

    Call arguments:
        inputs: dict with `"source"` (whatever the encoder takes) and
            `"target_in"` int `[B, T]` (start token + target, 0-padded);
            optionally `"attention_target"` float `[B, T, S]` (training
            with `attention_supervision`).

    Returns:
        float32 logits `[B, T, V]`; in training with `sampled_softmax`, the
        output layer's inputs `{"features": [B, T, D]}` instead, which
        `compute_loss` projects onto the sampled words.

    Example:

        model = AttentionSeq2Seq(encoder, 6000, 128, make_decoder_cell(256, "additive", 128),
                                 sampled_softmax=512)
    """

    def __init__(
        self, encoder, target_vocab_size, embedding_dim, decoder_cell, fast_path="auto",
        dropout=0.0, attention_regularization=0.0, sampled_softmax=0, label_smoothing=0.0,
        attention_supervision=0.0, **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= int(sampled_softmax) < int(target_vocab_size):
            raise ValueError(f"`sampled_softmax` must be in [0, target_vocab_size "
                             f"{target_vocab_size}), received {sampled_softmax}")
        if attention_regularization < 0:
            raise ValueError(f"`attention_regularization` must be >= 0, received "
                             f"{attention_regularization}")
        self.attention_regularization = float(attention_regularization)
        if attention_supervision < 0:
            raise ValueError(f"`attention_supervision` must be >= 0, received "
                             f"{attention_supervision}")
        self.attention_supervision = float(attention_supervision)
        self.encoder = encoder
        self.target_vocab_size = int(target_vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.decoder_cell = decoder_cell
        self.fast_path = fast_path
        self.dropout = float(dropout)
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, self.embedding_dim, name="target_embedding"
        )
        self.decoder = AttentionDecoder(decoder_cell, fast_path=fast_path, name="decoder")
        self.output_dropout = keras.layers.Dropout(self.dropout)
        self.output_projection = keras.layers.Dense(self.target_vocab_size, name="output_projection")
        self.sampled_softmax = int(sampled_softmax)
        self.label_smoothing = float(label_smoothing)
        # The candidates' draws: a seed state the checkpoints keep, as dropout's.
        self.candidate_seed = keras.random.SeedGenerator() if self.sampled_softmax else None

    def encode(self, source, training=None):
        """`source -> (memory [B, S, D], memory_mask [B, S])`."""
        memory, memory_mask = self.encoder(source, training=training)
        return memory, memory_mask

    def call(self, inputs, training=None, return_attention_scores=False):
        memory, memory_mask = self.encode(inputs["source"], training=training)
        target_in = ops.cast(inputs["target_in"], "int32")
        embedded = self.target_embedding(target_in)  # --> [B, T, E]
        outputs, weights = self.decoder(
            embedded, memory, memory_mask=memory_mask, inputs_mask=target_in != 0,
            return_attention_scores=True, training=training,
        )  # --> [B, T, O], [B, T, S]
        features = self.output_dropout(outputs, training=training)
        if training and self.attention_regularization:
            self.add_loss(self.attention_regularization * doubly_stochastic_penalty(
                weights, target_in != 0, memory_mask) / _replicas())
        if training and self.attention_supervision and "attention_target" in inputs:
            self.add_loss(self.attention_supervision * supervised_attention_loss(
                weights, inputs["attention_target"], target_in != 0) / _replicas())
        if training and self.sampled_softmax and not return_attention_scores:
            return {"features": features}  # --> compute_loss
        logits = ops.cast(self.output_projection(features), "float32")  # --> [B, T, V]
        if return_attention_scores:
            return logits, weights
        return logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, dict):
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        candidates = log_uniform_candidates(self.sampled_softmax, self.target_vocab_size,
                                            self.candidate_seed)
        loss = sampled_softmax_loss(y_pred["features"], y, self.output_projection.kernel,
                                    self.output_projection.bias, candidates,
                                    self.label_smoothing)
        for extra in self.losses:  # the attention regularization and supervision
            loss = loss + ops.cast(extra, "float32")
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):  # sampled training: no full logits to score
            return {"loss": self.get_metrics_result()["loss"]}
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # --------------------------------------------------------------- decoding
    def decoding_inputs(self, source):
        """Encodes once: `(initial_state, constants)` for a step function."""
        memory, memory_mask = self.encode(source, training=False)
        cell = self.decoder_cell
        state = cell.get_initial_state(memory, memory_mask)
        keys = cell.attention.project_keys(memory)  # the memory is projected once
        if memory_mask is None:
            memory_mask = ops.ones(ops.shape(memory)[:2], dtype="bool")
        return state, (memory, memory_mask, keys)

    def step(self, tokens, state, constants):
        """Step function for `keras_attention.decoding`.

        tokens `[B]`, state `(cell_states, attentional)`, constants
        `(memory, memory_mask, projected_keys)` -> logits `[B, V]`, state,
        attention `[B, S]`.
        """
        memory, memory_mask, keys = constants
        embedded = self.target_embedding(ops.cast(tokens, "int32"))  # --> [B, E]
        outputs, state, weights = self.decoder_cell.step(
            embedded, state, memory, memory_mask, projected_keys=keys
        )
        logits = ops.cast(self.output_projection(outputs), "float32")
        return logits, state, weights

    def generate(self, source, start_token, end_token, max_length, method="greedy",
                 max_lengths=None, no_repeat_ngram_size=0, **options):
        """Decodes a batch of sources.

        Args:
            source: What the encoder takes, batch B.
            start_token, end_token: Token ids.
            max_length: Most tokens per output, end token included.
            method: A decoding method of `keras_attention.decoding.get`:
                `"greedy"`, `"sampling"` (options `temperature`, `top_k`,
                `seed`) or `"beam"` (options `beam_width`, `length_penalty`,
                `coverage_penalty`, `num_hypotheses`).
            max_lengths: Optional int `[B]`, each row's own limit (at most
                `max_length`): a row ends with the end token at its limit, so
                its output never depends on the other rows of the batch.
            no_repeat_ngram_size: int, when > 0 no output repeats an n-gram
                of this many tokens (`decoding.block_repeated_ngrams`).

        Returns:
            A `keras_attention.decoding.DecodingResult`.
        """
        search = decoding.get(method)
        step_fn, state, constants, batch_size = self.search_setup(
            source, end_token, max_length, max_lengths, no_repeat_ngram_size)
        start_tokens = ops.full((batch_size,), start_token, dtype="int32")
        return search(step_fn=step_fn, initial_state=state, start_tokens=start_tokens,
                      end_token=end_token, max_length=max_length, constants=constants,
                      **options)

    def search_setup(self, source, end_token, max_length, max_lengths=None,
                     no_repeat_ngram_size=0):
        """Encodes once: `(step_fn, initial_state, constants, B)` of a search.

        `step_fn(tokens [B], state, constants) -> (logits [B, V], state,
        attention [B, S])` applies the repetition guard and the row limits;
        every tensor of `state` and `constants` is `[B, ...]`, so a search
        (or a server) may reorder, repeat or join rows. `max_length` sets
        the guard's history width (`max_length + 1`); a wider history gives
        the same answers (its unused positions are never compared).
        """
        state, constants = self.decoding_inputs(source)
        batch_size = ops.shape(constants[0])[0]
        if no_repeat_ngram_size:
            state = initial_guard_state(state, batch_size, max_length)
        if max_lengths is not None:
            state = (state, ops.zeros((batch_size,), "int32"))
            constants = (constants, ops.cast(max_lengths, "int32"))
        step_fn = self.search_step(end_token, max_length, max_lengths is not None,
                                   no_repeat_ngram_size)
        return step_fn, state, constants, batch_size

    def search_step(self, end_token, max_length, row_limits=False, no_repeat_ngram_size=0):
        """`search_setup`'s step function alone (no encoding): `self.step`
        under the repetition guard, then the row limits when `row_limits`."""
        step_fn = self.step
        if no_repeat_ngram_size:
            # Inside the row limits, so a row's forced end token is never blocked.
            step_fn = block_repeated_ngrams(step_fn, no_repeat_ngram_size, max_length)
        if row_limits:
            step_fn = end_at_row_limits(step_fn, end_token)
        return step_fn

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "decoder_cell": keras.saving.serialize_keras_object(self.decoder_cell),
            "fast_path": self.fast_path,
            "dropout": self.dropout,
            "attention_regularization": self.attention_regularization,
            "attention_supervision": self.attention_supervision,
            "sampled_softmax": self.sampled_softmax,
            "label_smoothing": self.label_smoothing,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder_cell"] = keras.saving.deserialize_keras_object(config["decoder_cell"])
        return cls(**config)


def doubly_stochastic_penalty(weights, target_mask, memory_mask=None):
    """`mean_b mean_i (1 - sum_t a_bti)^2`: Xu et al. 2015's eq. 14 term
    `sum_i (1 - sum_t a_ti)^2` averaged over the regions i (as the common
    implementations do), so its weight does not grow with the grid.

    weights `[B, T, S]`; target_mask bool `[B, T]` (padding steps count no
    attention); memory_mask bool `[B, S]` (padding regions are left out).
    Returns a float32 scalar.
    """
    weights = ops.cast(weights, "float32") * ops.cast(target_mask, "float32")[..., None]
    shortfall = ops.square(1.0 - ops.sum(weights, axis=1))  # --> [B, S]
    if memory_mask is None:
        return ops.mean(shortfall)
    keep = ops.cast(memory_mask, "float32")
    per_row = ops.sum(shortfall * keep, axis=-1) / ops.maximum(ops.sum(keep, axis=-1), 1.0)
    return ops.mean(per_row)


def supervised_attention_loss(weights, target, target_mask):
    """Cross-entropy of the attention against where it should look:
    `-sum_s p_bts log a_bts`, with `p` each target row divided by its sum,
    averaged over the supervised steps (unpadded steps whose target row
    has any mass) of the batch; 0 when no step is supervised.

    weights `[B, T, S]` (the decoder's attention); target `[B, T, S]`
    non-negative (e.g. each memory cell's share of the named object's box);
    target_mask bool `[B, T]`. Returns a float32 scalar.

    Example: one step looking half at the right cell, one unsupervised:

    >>> import numpy as np
    >>> weights = np.array([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]], "float32")
    >>> target = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], "float32")
    >>> round(float(supervised_attention_loss(weights, target, np.ones((1, 2), bool))), 4)
    0.6931
    """
    weights = ops.cast(weights, "float32")
    target = ops.cast(target, "float32")
    total = ops.sum(target, axis=-1)  # --> [B, T]
    supervised = ops.cast(target_mask, "float32") * ops.cast(total > 0, "float32")
    shares = target / ops.maximum(total, 1e-12)[..., None]
    # Padding cells have zero weight and zero target: log of a floor, times 0.
    cross_entropy = -ops.sum(shares * ops.log(ops.maximum(weights, 1e-9)), axis=-1)
    return ops.sum(cross_entropy * supervised) / ops.maximum(ops.sum(supervised), 1.0)


def _replicas():
    """Replicas whose gradients are summed (the loss is a mean per replica)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def end_at_row_limits(step_fn, end_token):
    """Wraps a step function so row r emits the end token as its
    `limits[r]`-th token. State `(state, emitted [B])`, constants
    `(constants, limits [B])`; beam search tiles and reorders both."""

    def limited_step(tokens, state, constants):
        inner_state, emitted = state
        inner_constants, limits = constants
        logits, inner_state, weights = step_fn(tokens, inner_state, inner_constants)
        last = (emitted + 1) >= limits  # --> [B] this token is the row's last
        vocab = ops.shape(logits)[-1]
        only_end = ops.where(ops.arange(vocab) == end_token, 0.0, -1e9)  # --> [V]
        logits = ops.where(last[:, None], only_end[None, :], logits)
        return logits, (inner_state, emitted + 1), weights

    return limited_step


def build_decoder_cell(config):
    """The decoder cell a `TrainingConfig` describes (`decoder`, `attention`,
    `units`, `attention_units`, `rnn_type`, the attentional state and the
    initial state)."""
    from training.core.config import DECODERS

    timing, input_feeding = DECODERS[config.decoder]
    return make_decoder_cell(
        config.units, config.attention, config.attention_units, timing=timing,
        input_feeding=input_feeding, rnn_type=config.rnn_type,
        initial_state=config.decoder_initial_state,
        attention_layer_norm=config.attention_layer_norm,
        attention_activation=config.attention_activation, context_gate=config.context_gate,
    )


def make_decoder_cell(units, attention, attention_units, timing="luong", input_feeding=False,
                      rnn_type="gru", initial_state="zeros", attention_layer_norm=False,
                      attention_activation="tanh", context_gate=False):
    """An `AttentionDecoderCell` from plain options (used by configs)."""

    if attention == "additive":
        attention_layer = AdditiveAttention(attention_units)
    elif attention in ("dot", "general", "scaled_dot"):
        attention_layer = DotAttention(score_mode=attention)
    else:
        raise ValueError(
            f"`attention` must be additive, dot, general or scaled_dot, received {attention!r}"
        )
    cell = keras.layers.GRUCell(units) if rnn_type == "gru" else keras.layers.LSTMCell(units)
    return AttentionDecoderCell(
        cell, attention_layer, attention_layer_size=units, timing=timing,
        input_feeding=input_feeding, initial_state=initial_state,
        attention_layer_norm=attention_layer_norm, attention_activation=attention_activation,
        context_gate=context_gate,
    )
