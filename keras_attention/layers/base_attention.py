"""Shared machinery of every attention layer: masks, softmax, dropout, weights."""

import keras
from keras import ops


class BaseAttention(keras.layers.Layer):
    """Base class of the attention layers: everything but the score.

    Subclasses implement two hooks and never override `call`:

    - `project_keys(key) -> projected_keys` (default: identity), the part of
      the score that depends on the keys only. A decoder calls it once per
      source sequence and passes the result back through `projected_keys`,
      so the memory is not projected again at every decoding step.
    - `score(query, projected_keys) -> [B, Tq, Tv]` unnormalized scores.

    Args:
        dropout: Float in [0, 1), fraction of the attention weights to drop
            during training.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `[B, Tq, Dq]`, or a single step `[B, Dq]`.
        value: `[B, Tv, Dv]`, the memory that is summed.
        key: Optional `[B, Tv, Dk]`; defaults to `value`.
        query_mask: Optional boolean `[B, Tq]` (`[B]` for a single step).
            Outputs at masked query positions are zero.
        value_mask: Optional boolean `[B, Tv]`; False marks padding that
            receives no attention. Filled in by Keras from an implicit mask
            (for example `Embedding(mask_zero=True)`).
        key_mask: Optional `[B, Tv]`, combined with `value_mask`.
        projected_keys: Optional output of `project_keys(key)`; when given,
            `key` is not projected again.
        return_attention_scores: If True, return `(context, weights)`.
        training: Whether dropout is active.
        use_causal_mask: If True, query position i attends to value
            positions <= i only (self-attention in a decoder).

    Returns:
        context `[B, Tq, Dv]` (`[B, Dv]` for a single-step query) and, when
        `return_attention_scores=True`, weights `[B, Tq, Tv]` (`[B, Tv]`).
        Weights of a row whose keys are all masked are zero, and so is its
        context.

    Example:

    >>> import numpy as np
    >>> class NegativeDistance(BaseAttention):   # score = -||q - k||^2
    ...     def score(self, query, projected_keys):
    ...         difference = ops.expand_dims(query, 2) - ops.expand_dims(projected_keys, 1)
    ...         return -ops.sum(difference * difference, axis=-1)  # --> [B, Tq, Tv]
    >>> query = np.zeros((1, 2, 3), "float32")                       # [B, Tq, Dq]
    >>> memory = np.array([[[0, 0, 0], [9, 9, 9]]], "float32")       # [B, Tv, Dv]
    >>> context, weights = NegativeDistance()(query, memory, return_attention_scores=True)
    >>> tuple(context.shape), ops.convert_to_numpy(weights).tolist()   # the nearest key wins
    ((1, 2, 3), [[[1.0, 0.0], [1.0, 0.0]]])
    >>> mask = np.array([[False, True]])   # padding at position 0: only the far key is left
    >>> ops.convert_to_numpy(NegativeDistance()(query, memory, value_mask=mask)).tolist()
    [[[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]]
    """

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received dropout={dropout}")
        self.dropout = float(dropout)
        self.supports_masking = True
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    # ----------------------------------------------------------------- hooks
    def project_keys(self, key):
        """Key-only part of the score. `[B, Tv, Dk] -> [B, Tv, D']`."""
        return key

    def score(self, query, projected_keys):
        """Unnormalized scores `[B, Tq, Tv]` from `[B, Tq, Dq]` and keys."""
        raise NotImplementedError

    def _check_dimensions(self, query_dim, key_dim):
        """Hook for variants with constraints between Dq and Dk."""

    def _require_built(self, method):
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__}.{method}() needs the layer's weights: call "
                f"`layer.build(query_shape, value_shape)` or call the layer once first."
            )

    # ------------------------------------------------------------ machinery
    def build(self, query_shape, value_shape, key_shape=None, projected_keys_shape=None):
        query_shape, value_shape, key_shape = self._validate_shapes(
            query_shape, value_shape, key_shape, projected_keys_shape
        )
        self.build_score(query_shape, key_shape)
        self.built = True

    def build_score(self, query_shape, key_shape):
        """Create score weights. Shapes are rank 3 `[B, T, D]`."""

    def _validate_shapes(self, query_shape, value_shape, key_shape, projected_keys_shape=None):
        query_shape = tuple(query_shape)
        value_shape = tuple(value_shape)
        returned_key_shape = value_shape if key_shape is None else tuple(key_shape)
        # Without `key`, the score sees the precomputed keys, not `value`.
        if key_shape is None and projected_keys_shape is not None:
            key_shape = projected_keys_shape
        key_shape = returned_key_shape if key_shape is None else tuple(key_shape)
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"{self.__class__.__name__}: `query` must have rank 2 [batch, dim] or 3 "
                f"[batch, time, dim], received shape {query_shape}"
            )
        if len(value_shape) != 3:
            raise ValueError(
                f"{self.__class__.__name__}: `value` must have rank 3 [batch, time, dim], "
                f"received shape {value_shape}"
            )
        if len(key_shape) != 3:
            raise ValueError(
                f"{self.__class__.__name__}: `key` must have rank 3 [batch, time, dim], "
                f"received shape {key_shape}"
            )
        if key_shape[1] is not None and value_shape[1] is not None:
            if key_shape[1] != value_shape[1]:
                raise ValueError(
                    f"{self.__class__.__name__}: `key` and `value` must have the same "
                    f"length, received key shape {key_shape} and value shape {value_shape}"
                )
        batches = {s[0] for s in (query_shape, value_shape, key_shape) if s[0] is not None}
        if len(batches) > 1:
            raise ValueError(
                f"{self.__class__.__name__}: batch sizes differ: query shape {query_shape}, "
                f"value shape {value_shape}, key shape {key_shape}"
            )
        if len(query_shape) == 2:
            query_shape = (query_shape[0], 1, query_shape[1])
        self._check_dimensions(query_shape[-1], key_shape[-1])
        return query_shape, value_shape, returned_key_shape

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        projected_keys=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        self._validate_shapes(
            tuple(query.shape), tuple(value.shape), None if key is None else tuple(key.shape),
            None if projected_keys is None else tuple(projected_keys.shape),
        )
        single_step = len(query.shape) == 2
        query = ops.cast(query, self.compute_dtype)
        if single_step:
            query = ops.expand_dims(query, 1)  # --> [B, 1, Dq]
            if query_mask is not None:
                query_mask = ops.expand_dims(query_mask, 1)
        if key is None:
            key = value
        if projected_keys is None:
            projected_keys = self.project_keys(key)
        scores = self.score(query, projected_keys)  # --> [B, Tq, Tv]

        mask = self._combined_mask(value_mask, key_mask, query, value, use_causal_mask)
        weights = self.normalize_scores(scores, mask)  # float32 [B, Tq, Tv]
        weights = ops.cast(weights, self.compute_dtype)
        dropped = self._dropout_layer(weights, training=training)
        context = ops.matmul(dropped, ops.cast(value, self.compute_dtype))  # --> [B, Tq, Dv]
        if query_mask is not None:
            context = context * ops.cast(ops.expand_dims(query_mask, -1), context.dtype)
        if single_step:
            context = ops.squeeze(context, 1)
            weights = ops.squeeze(weights, 1)
        if return_attention_scores:
            return context, weights
        return context

    @staticmethod
    def _combined_mask(value_mask, key_mask, query, value, use_causal_mask):
        """Boolean `[B, Tq|1, Tv]` mask of allowed positions, or None."""
        mask = None
        for m in (value_mask, key_mask):
            if m is not None:
                m = ops.expand_dims(ops.cast(m, "bool"), 1)  # --> [B, 1, Tv]
                mask = m if mask is None else ops.logical_and(mask, m)
        if use_causal_mask:
            query_length = ops.shape(query)[1]
            value_length = ops.shape(value)[1]
            rows = ops.expand_dims(ops.arange(query_length), 1)
            cols = ops.expand_dims(ops.arange(value_length), 0)
            causal = ops.expand_dims(cols <= rows, 0)  # --> [1, Tq, Tv]
            mask = causal if mask is None else ops.logical_and(mask, causal)
        return mask

    def normalize_scores(self, scores, mask):
        """Masked softmax in float32; rows with no allowed key give zeros.

        Args:
            scores: `[B, Tq, Tv]` unnormalized scores, any float dtype.
            mask: Boolean, broadcastable to `scores`, True where allowed.
        Returns:
            float32 weights `[B, Tq, Tv]`.
        """
        scores = ops.cast(scores, "float32")
        if mask is None:
            return ops.softmax(scores, axis=-1)
        # Replace masked scores, do not offset them: with `scores - 65504` (the
        # float16 bias) a masked key still won once scores differed by more
        # than 65504. The lowest finite float32 always loses, and being finite
        # an all-masked row stays NaN-free (zeroed below).
        scores = ops.where(ops.cast(mask, "bool"), scores, -3.4028234663852886e38)
        weights = ops.softmax(scores, axis=-1)  # max-subtracted inside softmax
        any_allowed = ops.any(mask, axis=-1, keepdims=True)
        return weights * ops.cast(any_allowed, "float32")

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return tuple(query_shape[:-1]) + (value_shape[-1],)

    def compute_output_spec(
        self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
        projected_keys=None, return_attention_scores=False, training=None, use_causal_mask=False,
    ):
        self._validate_shapes(
            tuple(query.shape), tuple(value.shape), None if key is None else tuple(key.shape),
            None if projected_keys is None else tuple(projected_keys.shape),
        )
        output_shape = self.compute_output_shape(query.shape, value.shape)
        context = keras.KerasTensor(output_shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return context
        weights_shape = tuple(query.shape[:-1]) + (value.shape[1],)
        return context, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        base_config = super().get_config()
        return {**base_config, "dropout": self.dropout}
