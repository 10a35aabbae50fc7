"""Independent float64 numpy implementation of the attention layers.

Written from the formulas (not from the layer code), and imported both by the
TensorFlow tests and by the JAX-backend subprocess, so it must not import
TensorFlow. `layer_weights` is the only function that touches Keras.

Conventions: query `[B, Tq, Dq]`, key `[B, Tv, Dk]`, value `[B, Tv, Dv]`,
masks are boolean with True meaning "keep".
"""

import numpy as np


def additive_scores(query, key, query_kernel, key_kernel, score_vector, bias=None, gain=None):
    """Bahdanau: `v^T tanh(W_q q + W_k k + b)`, `v <- g v / ||v||` when `gain` is given."""
    query = np.asarray(query, np.float64)
    key = np.asarray(key, np.float64)
    projected_query = query @ np.asarray(query_kernel, np.float64)  # [B, Tq, U]
    projected_key = key @ np.asarray(key_kernel, np.float64)  # [B, Tv, U]
    hidden = projected_query[:, :, None, :] + projected_key[:, None, :, :]  # [B, Tq, Tv, U]
    if bias is not None:
        hidden = hidden + np.asarray(bias, np.float64)
    v = np.asarray(score_vector, np.float64)
    if gain is not None:
        v = float(gain) * v / np.sqrt(np.sum(v * v))
    return np.tanh(hidden) @ v  # [B, Tq, Tv]


def dot_scores(query, key, score_mode="dot", kernel=None, scale=None):
    """Luong: `q.k` (dot), `q.(W k)` (general, W `[Dk, Dq]`), `q.k / sqrt(Dk)` (scaled_dot)."""
    query = np.asarray(query, np.float64)
    key = np.asarray(key, np.float64)
    if score_mode == "general":
        key = key @ np.asarray(kernel, np.float64)  # [B, Tv, Dq]
    scores = np.einsum("bqd,bkd->bqk", query, key)
    if score_mode == "scaled_dot":
        scores = scores / np.sqrt(key.shape[-1])
    if scale is not None:
        scores = scores * float(scale)
    return scores


def masked_softmax(scores, allowed):
    """Softmax over the last axis restricted to `allowed`; rows with nothing allowed -> 0."""
    scores = np.asarray(scores, np.float64)
    allowed = np.broadcast_to(np.asarray(allowed, bool), scores.shape)
    weights = np.zeros_like(scores)
    for index in np.ndindex(scores.shape[:-1]):
        keep = allowed[index]
        if not keep.any():
            continue
        row = scores[index][keep]
        e = np.exp(row - row.max())
        out = np.zeros(scores.shape[-1])
        out[keep] = e / e.sum()
        weights[index] = out
    return weights


def attend(
    scores, value, value_mask=None, query_mask=None, causal=False, key_mask=None,
):
    """Weights and context from unnormalized scores `[B, Tq, Tv]`.

    Returns `(context [B, Tq, Dv], weights [B, Tq, Tv])` in float64.
    """
    scores = np.asarray(scores, np.float64)
    value = np.asarray(value, np.float64)
    batch, tq, tv = scores.shape
    allowed = np.ones((batch, tq, tv), bool)
    for m in (value_mask, key_mask):
        if m is not None:
            allowed &= np.asarray(m, bool)[:, None, :]
    if causal:
        allowed &= np.tril(np.ones((tq, tv), bool))[None]
    weights = masked_softmax(scores, allowed)
    context = weights @ value
    if query_mask is not None:
        context = context * np.asarray(query_mask, np.float64)[:, :, None]
    return context, weights


def reference_attention(
    kind, weights, query, value, key=None, value_mask=None, query_mask=None,
    key_mask=None, causal=False, **score_kwargs,
):
    """Full layer reference. `kind` is "additive" or "dot"; `weights` from `layer_weights`.

    A rank-2 query `[B, Dq]` (single step) gives `[B, Dv]` / `[B, Tv]` outputs.

    Example:

    >>> query = np.array([[[1.0, 0.0]]])               # [B, Tq, Dq] = [1, 1, 2]
    >>> value = np.array([[[1.0, 0.0], [0.0, 1.0]]])   # [B, Tv, Dv] = [1, 2, 2]
    >>> context, weights = reference_attention("dot", {}, query, value, score_mode="dot")
    >>> weights.round(4).tolist(), context.shape       # softmax of the scores [1, 0]
    ([[[0.7311, 0.2689]]], (1, 1, 2))
    >>> masked = reference_attention("dot", {}, query, value, value_mask=[[False, True]],
    ...                              score_mode="dot")
    >>> [array.tolist() for array in masked]           # all weight on the one key left
    [[[[0.0, 1.0]]], [[[0.0, 1.0]]]]
    """
    query = np.asarray(query)
    single_step = query.ndim == 2
    if single_step:
        query = query[:, None, :]
        if query_mask is not None:
            query_mask = np.asarray(query_mask)[:, None]
    key = value if key is None else key
    if kind == "additive":
        scores = additive_scores(
            query, key, weights["query_kernel"], weights["key_kernel"],
            weights["score_vector"], bias=weights.get("bias"), gain=weights.get("gain"),
        )
    elif kind == "dot":
        scores = dot_scores(
            query, key, score_mode=score_kwargs["score_mode"],
            kernel=weights.get("kernel"), scale=weights.get("scale"),
        )
    else:
        raise ValueError(f"unknown kind {kind!r}")
    context, attn = attend(
        scores, value, value_mask=value_mask, query_mask=query_mask,
        causal=causal, key_mask=key_mask,
    )
    if single_step:
        context, attn = context[:, 0], attn[:, 0]
    return context, attn


_WEIGHT_NAMES = {
    "additive": ("query_kernel", "key_kernel", "score_vector", "bias", "gain"),
    "dot": ("kernel", "scale"),
}


def layer_kind(layer):
    name = type(layer).__name__
    return {"AdditiveAttention": "additive", "DotAttention": "dot"}[name]


def layer_weights(layer):
    """The layer's weights as float64 numpy arrays, by attribute name (absent -> missing)."""
    from keras import ops  # only here: the rest of the module is pure numpy

    out = {}
    for name in _WEIGHT_NAMES[layer_kind(layer)]:
        variable = getattr(layer, name, None)
        if variable is not None:
            out[name] = np.asarray(ops.convert_to_numpy(variable), np.float64)
    return out


def reference_for(layer, query, value, **kwargs):
    """`reference_attention` with the kind, score mode and weights read from `layer`."""
    kind = layer_kind(layer)
    extra = {"score_mode": layer.score_mode} if kind == "dot" else {}
    return reference_attention(kind, layer_weights(layer), query, value, **kwargs, **extra)
