"""Bahdanau (additive) attention with learned query and key projections."""

import keras
from keras import ops

from keras_attention.layers.base_attention import BaseAttention


@keras.saving.register_keras_serializable(package="keras_attention")
class AdditiveAttention(BaseAttention):
    """Additive attention of Bahdanau et al. (2015), "Neural Machine
    Translation by Jointly Learning to Align and Translate".

    score(q, k) = v^T tanh(W_q q + W_k k [+ b])

    With `normalize=True`, `v` is weight-normalized with a learned scalar
    gain g, `v <- g * v / ||v||` (Salimans & Kingma 2016), as in TensorFlow
    Addons' `BahdanauAttention(normalize=True)`.

    Unlike `keras.layers.AdditiveAttention`, which scores `tanh(q + k)` and
    leaves the projections to the caller, this layer owns `W_q`, `W_k` and
    `v`, and exposes the key projection: `project_keys(memory)` computes
    `W_k h` once per source sequence; pass it as `projected_keys` at every
    decoding step.

    Args:
        units: Size of the hidden layer of the score network.
        use_bias: Whether to add a bias `b` inside the tanh.
        normalize: Weight-normalize `v` with a learned gain.
        dropout: Fraction of the attention weights to drop in training.
        kernel_initializer: Initializer of W_q, W_k and v.
        bias_initializer: Initializer of b.
        kernel_regularizer: Optional regularizer of W_q, W_k and v.
        bias_regularizer: Optional regularizer of b.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        See `BaseAttention`: `query [B, Tq, Dq]` or `[B, Dq]`, `value
        [B, Tv, Dv]`, optional `key [B, Tv, Dk]`, masks, `projected_keys
        [B, Tv, units]`, `return_attention_scores`, `training`,
        `use_causal_mask`.

    Returns:
        context `[B, Tq, Dv]` (or `[B, Dv]`), and weights `[B, Tq, Tv]` (or
        `[B, Tv]`) when `return_attention_scores=True`.

    Example:

    >>> import numpy as np
    >>> attention = AdditiveAttention(units=8)
    >>> decoder_state = np.random.rand(2, 16).astype("float32")   # [B, Dq]
    >>> memory = np.random.rand(2, 5, 12).astype("float32")       # [B, Tv, Dv]
    >>> attention.build(decoder_state.shape, memory.shape)
    >>> keys = attention.project_keys(memory)                     # [B, Tv, 8]
    >>> context, weights = attention(decoder_state, memory,
    ...     projected_keys=keys, return_attention_scores=True)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 12), (2, 5))
    """

    def __init__(
        self,
        units,
        use_bias=True,
        normalize=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(dropout=dropout, **kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer, received units={units!r}")
        self.units = units
        self.use_bias = bool(use_bias)
        self.normalize = bool(normalize)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def build_score(self, query_shape, key_shape):
        query_dim, key_dim = query_shape[-1], key_shape[-1]
        if query_dim is None or key_dim is None:
            raise ValueError(
                f"AdditiveAttention needs known last dimensions, received query shape "
                f"{query_shape} and key shape {key_shape}"
            )
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(query_dim, self.units),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )
        self.key_kernel = self.add_weight(
            name="key_kernel", shape=(key_dim, self.units),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )
        self.score_vector = self.add_weight(
            name="score_vector", shape=(self.units,),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,),
                initializer=self.bias_initializer, regularizer=self.bias_regularizer,
            )
        self.gain = None
        if self.normalize:
            self.gain = self.add_weight(
                name="gain", shape=(),
                initializer=keras.initializers.Constant(float(self.units) ** -0.5),
            )

    def project_keys(self, key):
        """`W_k k`: `[B, Tv, Dk] -> [B, Tv, units]`. Compute once per memory."""
        self._require_built("project_keys")
        return ops.matmul(ops.cast(key, self.compute_dtype), self.key_kernel)

    def score(self, query, projected_keys):
        projected_query = ops.matmul(query, self.query_kernel)  # --> [B, Tq, U]
        if self.bias is not None:
            # Added to the small [B, Tq, U] tensor, not to the [B, Tq, Tv, U]
            # one: saves a full pass forward and a reduction backward.
            projected_query = projected_query + self.bias
        hidden = ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_keys, 1)
        v = self.score_vector
        if self.normalize:
            v = self.gain * v * ops.rsqrt(ops.sum(ops.square(v)))
        # tensordot lowers to one 2-D MatMul [B*Tq*Tv, U] x [U] (also in the
        # gradient); einsum("bqku,u->bqk") was ~15% slower forward on CPU.
        return ops.tensordot(ops.tanh(hidden), v, axes=1)  # --> [B, Tq, Tv]

    def get_config(self):
        base_config = super().get_config()
        config = {
            "units": self.units,
            "use_bias": self.use_bias,
            "normalize": self.normalize,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
        }
        return {**base_config, **config}
