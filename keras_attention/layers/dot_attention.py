"""Luong (multiplicative) attention: dot, general and scaled dot scores."""

import keras
from keras import ops

from keras_attention.layers.base_attention import BaseAttention

SCORE_MODES = ("dot", "general", "scaled_dot")


@keras.saving.register_keras_serializable(package="keras_attention")
class DotAttention(BaseAttention):
    """Multiplicative attention of Luong et al. (2015), "Effective
    Approaches to Attention-based Neural Machine Translation".

    Score modes:

    - `"dot"`: score(q, k) = q . k  (needs Dq == Dk)
    - `"general"`: score(q, k) = q . (W_a k), W_a of shape `[Dk, Dq]`, so
      query and key dimensions may differ.
    - `"scaled_dot"`: score(q, k) = q . k / sqrt(Dk) (Vaswani et al. 2017).

    With `use_scale=True` the score is also multiplied by a learned scalar
    (initialized to 1), as `keras.layers.Attention(use_scale=True)` does.

    `project_keys(key)` returns `W_a k` for `"general"` (the key itself for
    the other modes): a decoder computes it once per source sequence and
    passes it as `projected_keys` at every step.

    Args:
        score_mode: One of `"dot"`, `"general"`, `"scaled_dot"`.
        use_scale: Learn a scalar multiplier of the scores.
        dropout: Fraction of the attention weights to drop in training.
        kernel_initializer: Initializer of W_a (`"general"`).
        kernel_regularizer: Optional regularizer of W_a (`"general"`).
        **kwargs: Base layer keyword arguments.

    Call arguments:
        See `BaseAttention`: `query [B, Tq, Dq]` or `[B, Dq]`, `value
        [B, Tv, Dv]`, optional `key [B, Tv, Dk]`, masks, `projected_keys`,
        `return_attention_scores`, `training`, `use_causal_mask`.

    Returns:
        context `[B, Tq, Dv]` (or `[B, Dv]`), and weights `[B, Tq, Tv]` (or
        `[B, Tv]`) when `return_attention_scores=True`.

    Example:

    >>> import numpy as np
    >>> attention = DotAttention(score_mode="general")
    >>> query = np.random.rand(2, 3, 16).astype("float32")   # [B, Tq, Dq]
    >>> memory = np.random.rand(2, 5, 12).astype("float32")  # [B, Tv, Dv]
    >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    >>> context, weights = attention(query, memory, value_mask=mask,
    ...                              return_attention_scores=True)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 12), (2, 3, 5))
    """

    def __init__(
        self,
        score_mode="dot",
        use_scale=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(dropout=dropout, **kwargs)
        if score_mode not in SCORE_MODES:
            raise ValueError(
                f"`score_mode` must be one of {SCORE_MODES}, received score_mode={score_mode!r}"
            )
        self.score_mode = score_mode
        self.use_scale = bool(use_scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _check_dimensions(self, query_dim, key_dim):
        if self.score_mode == "general" or query_dim is None or key_dim is None:
            return
        if query_dim != key_dim:
            raise ValueError(
                f"DotAttention(score_mode={self.score_mode!r}) needs the query and key "
                f"last dimensions to be equal, received {query_dim} and {key_dim}; use "
                f"score_mode='general' for different sizes"
            )

    def build_score(self, query_shape, key_shape):
        self.kernel = None
        if self.score_mode == "general":
            if query_shape[-1] is None or key_shape[-1] is None:
                raise ValueError(
                    f"DotAttention(score_mode='general') needs known last dimensions, "
                    f"received query shape {query_shape} and key shape {key_shape}"
                )
            self.kernel = self.add_weight(
                name="kernel", shape=(key_shape[-1], query_shape[-1]),
                initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            )
        self.scale = None
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

    def project_keys(self, key):
        """`W_a k` for "general", else the key: `[B, Tv, Dk] -> [B, Tv, Dq]`."""
        key = ops.cast(key, self.compute_dtype)
        if self.score_mode != "general":
            return key
        self._require_built("project_keys")
        return ops.matmul(key, self.kernel)

    def score(self, query, projected_keys):
        # In float32: under mixed_float16, q . k overflows float16 (max 65504) for
        # activations of a few hundred, and the softmax of an inf score is NaN.
        query = ops.cast(query, "float32")
        projected_keys = ops.cast(projected_keys, "float32")
        scores = ops.matmul(query, ops.swapaxes(projected_keys, -1, -2))  # --> [B, Tq, Tv]
        if self.score_mode == "scaled_dot":
            depth = ops.cast(ops.shape(projected_keys)[-1], scores.dtype)
            scores = scores / ops.sqrt(depth)
        if self.scale is not None:
            scores = scores * ops.cast(self.scale, scores.dtype)
        return scores

    def get_config(self):
        base_config = super().get_config()
        config = {
            "score_mode": self.score_mode,
            "use_scale": self.use_scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }
        return {**base_config, **config}
