"""Behaviour shared by every attention layer, parametrized over all score variants.

Every numerical assertion compares against the float64 numpy reference
(`keras_attention/testing/numpy_reference.py`) or against another way of computing the same thing
(precomputed keys vs. not, masks by hand vs. implicit Keras masks, ...).
"""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention import AdditiveAttention, DotAttention

from attention_cases import (
    CONFIG_IDS, LAYER_CONFIGS, float_array, has_weights_to_build, make_layer,
    randomize_weights, to_numpy,
)
from harness import check_layer
from keras_attention.testing.numpy_reference import layer_kind, layer_weights, reference_attention, reference_for

ATOL = 1e-5
B, TQ, TV, D, DV = 3, 4, 5, 4, 3


def _inputs(rng, tq=TQ, tv=TV):
    """query [B, Tq, D], value [B, Tv, DV], key [B, Tv, D] and masks.

    Value mask: row 0 drops its last two positions, row 1 drops everything
    (a fully masked row), row 2 drops position 0 (so with a causal mask its
    first query has no key). Query mask: one masked position in rows 0, 2.
    """
    query = float_array(rng, B, tq, D)
    value = float_array(rng, B, tv, DV)
    key = float_array(rng, B, tv, D)
    value_mask = np.ones((B, tv), bool)
    value_mask[0, -2:] = False
    value_mask[1, :] = False
    value_mask[2, 0] = False
    query_mask = np.ones((B, tq), bool)
    query_mask[0, -1] = False
    query_mask[2, 1] = False
    return query, value, key, value_mask, query_mask


def _built_layer(config_id, rng, query, value, key=None, **overrides):
    layer = make_layer(config_id, **overrides)
    layer(query, value, key=key)
    randomize_weights(layer, rng)
    return layer


# --------------------------------------------------------------------- harness
@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_harness(config_id, rng):
    query, value, key, value_mask, query_mask = _inputs(rng)
    cls, _ = LAYER_CONFIGS[config_id]
    result = check_layer(
        lambda: make_layer(config_id, dropout=0.1),
        args=(query, value),
        kwargs={"key": key, "value_mask": value_mask, "query_mask": query_mask},
        call_kwargs={"use_causal_mask": True},
        tuple_kwargs={"return_attention_scores": True},
        expect_trainable_weights=config_id != "dot",
    )
    # And the harness outputs are the right numbers, not only self-consistent.
    layer = result["layer"]
    context, weights = result["eager_tuple"]
    ref_context, ref_weights = reference_for(
        layer, query, value, key=key, value_mask=value_mask, query_mask=query_mask, causal=True
    )
    np.testing.assert_allclose(weights, ref_weights, atol=ATOL)
    np.testing.assert_allclose(context, ref_context, atol=ATOL)
    assert isinstance(layer, cls)


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_harness_single_step_query(config_id, rng):
    query, _, _, value_mask, _ = _inputs(rng)
    value = float_array(rng, B, TV, D)  # also the key: Dk == Dq
    result = check_layer(
        lambda: make_layer(config_id),
        args=(query[:, 0], value),
        kwargs={"value_mask": value_mask},
        tuple_kwargs={"return_attention_scores": True},
        expect_trainable_weights=config_id != "dot",
    )
    context, weights = result["eager_tuple"]
    ref_context, ref_weights = reference_for(
        result["layer"], query[:, 0], value, value_mask=value_mask
    )
    np.testing.assert_allclose(weights, ref_weights, atol=ATOL)
    np.testing.assert_allclose(context, ref_context, atol=ATOL)


# ---------------------------------------------------------- precomputed keys
@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_precomputed_keys_equal_direct_call(config_id, rng):
    query, value, key, value_mask, _ = _inputs(rng)
    layer = _built_layer(config_id, rng, query, value, key=key)

    # Key defaults to value.
    value_as_key = float_array(rng, B, TV, D)
    direct = layer(query, value_as_key, return_attention_scores=True)
    pre = layer(query, value_as_key, projected_keys=layer.project_keys(value_as_key),
                return_attention_scores=True)
    for a, b in zip(pre, direct):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-6)

    # Separate key, masks, and step-by-step decoding with single-step queries.
    projected = layer.project_keys(key)
    direct = layer(query, value, key=key, value_mask=value_mask, return_attention_scores=True)
    for t in range(TQ):
        step = layer(query[:, t], value, projected_keys=projected, value_mask=value_mask,
                     return_attention_scores=True)
        np.testing.assert_allclose(to_numpy(step[0]), to_numpy(direct[0])[:, t], atol=1e-6)
        np.testing.assert_allclose(to_numpy(step[1]), to_numpy(direct[1])[:, t], atol=1e-6)

    # When given, projected_keys are used and `key` is not projected again.
    other_key = float_array(rng, B, TV, D)
    context, weights = layer(query, value, key=other_key, projected_keys=projected,
                             return_attention_scores=True)
    ref_context, ref_weights = reference_for(layer, query, value, key=key)
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)
    np.testing.assert_allclose(to_numpy(context), ref_context, atol=ATOL)


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_project_keys_before_build(config_id, rng):
    key = float_array(rng, B, TV, D)
    layer = make_layer(config_id)
    if has_weights_to_build(config_id):
        with pytest.raises(ValueError, match=r"project_keys\(\) needs the layer's weights"):
            layer.project_keys(key)
    else:  # dot / scaled_dot: the key is used as is; no weights needed
        np.testing.assert_array_equal(to_numpy(layer.project_keys(key)), key)
    assert not layer.weights


# ------------------------------------------------------------------- masks
def _token_inputs():
    query_tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0], [6, 0, 0, 0], [2, 2, 2, 2]])
    value_tokens = np.array(
        [[5, 6, 1, 2, 0], [3, 3, 0, 0, 0], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]]
    )  # row 2: every key masked
    return query_tokens, value_tokens


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_embedding_masks_propagate(config_id, rng):
    query_tokens, value_tokens = _token_inputs()
    query_in = keras.Input((None,), dtype="int32")
    value_in = keras.Input((None,), dtype="int32")
    query_embedding = keras.layers.Embedding(8, D, mask_zero=True)
    value_embedding = keras.layers.Embedding(8, D, mask_zero=True)
    layer = make_layer(config_id)
    context, weights = layer(query_embedding(query_in), value_embedding(value_in),
                             return_attention_scores=True)
    # The output carries the query mask: masked average pooling sees it.
    pooled = keras.layers.GlobalAveragePooling1D()(context)
    model = keras.Model([query_in, value_in], [context, weights, pooled])
    randomize_weights(layer, rng)

    got_context, got_weights, got_pooled = (to_numpy(x) for x in
                                            model([query_tokens, value_tokens]))
    query = to_numpy(query_embedding.embeddings)[query_tokens]
    value = to_numpy(value_embedding.embeddings)[value_tokens]
    query_mask, value_mask = query_tokens != 0, value_tokens != 0

    # Same as passing the masks by hand (plain arrays carry no implicit mask) ...
    by_hand = layer(query, value, query_mask=query_mask, value_mask=value_mask,
                    return_attention_scores=True)
    np.testing.assert_allclose(got_context, to_numpy(by_hand[0]), atol=1e-6)
    np.testing.assert_allclose(got_weights, to_numpy(by_hand[1]), atol=1e-6)
    # ... and as the reference.
    ref_context, ref_weights = reference_for(layer, query, value, query_mask=query_mask,
                                             value_mask=value_mask)
    np.testing.assert_allclose(got_context, ref_context, atol=ATOL)
    np.testing.assert_allclose(got_weights, ref_weights, atol=ATOL)
    # Without the masks the result differs (so the check above means something).
    unmasked = to_numpy(layer(query, value))
    assert np.max(np.abs(unmasked - got_context)) > 1e-3
    # Masked mean over unmasked query steps only.
    expected_pooled = (ref_context * query_mask[..., None]).sum(1) / query_mask.sum(1)[:, None]
    np.testing.assert_allclose(got_pooled, expected_pooled, atol=ATOL)

    # Eagerly, the implicit masks of the embedding outputs are used too, and the
    # output's mask is the query mask.
    eager_context = layer(query_embedding(query_tokens), value_embedding(value_tokens))
    np.testing.assert_allclose(to_numpy(eager_context), ref_context, atol=ATOL)
    np.testing.assert_array_equal(to_numpy(eager_context._keras_mask), query_mask)


@pytest.mark.parametrize("config_id", CONFIG_IDS)
@pytest.mark.parametrize("policy", ["float32", "float16", "mixed_float16", "mixed_bfloat16"])
def test_fully_masked_rows_are_zero(config_id, policy, rng):
    query, value, key, value_mask, query_mask = _inputs(rng)
    ref_layer = _built_layer(config_id, rng, query, value, key=key)
    layer = make_layer(config_id, dtype=policy)
    layer(query, value, key=key)
    layer.set_weights(ref_layer.get_weights())
    context, weights = layer(query, value, key=key, value_mask=value_mask,
                             query_mask=query_mask, use_causal_mask=True,
                             return_attention_scores=True)
    context, weights = to_numpy(context).astype(np.float64), to_numpy(weights).astype(np.float64)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    # Row 1: no key at all. Row 2, first query: its only causal key is masked.
    np.testing.assert_array_equal(weights[1], 0.0)
    np.testing.assert_array_equal(context[1], 0.0)
    np.testing.assert_array_equal(weights[2, 0], 0.0)
    np.testing.assert_array_equal(context[2, 0], 0.0)
    # Masked queries: zero context.
    np.testing.assert_array_equal(context[~query_mask], 0.0)
    # Everything else against the reference.
    ref_context, ref_weights = reference_for(
        layer, query, value, key=key, value_mask=value_mask, query_mask=query_mask, causal=True
    )
    tol = ATOL if policy == "float32" else 3e-2
    np.testing.assert_allclose(weights, ref_weights, atol=tol)
    np.testing.assert_allclose(context, ref_context, atol=tol)


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_dropout(config_id, rng):
    rate = 0.5
    tv = 8
    query = float_array(rng, 2, 4, D)
    key = float_array(rng, 2, tv, D)
    value = np.tile(np.eye(tv, dtype="float32"), (2, 1, 1))  # context == dropped weights
    layer = _built_layer(config_id, rng, query, value, key=key, dropout=rate)
    _, ref_weights = reference_for(layer, query, value, key=key)

    # Inference: no dropout, deterministic.
    for training in (False, None):
        first = to_numpy(layer(query, value, key=key, training=training))
        second = to_numpy(layer(query, value, key=key, training=training))
        np.testing.assert_array_equal(first, second)
        np.testing.assert_allclose(first, ref_weights, atol=ATOL)

    # Training: each weight is either dropped or scaled by 1 / (1 - rate).
    context, weights = layer(query, value, key=key, training=True, return_attention_scores=True)
    context = to_numpy(context)
    dropped = context == 0.0
    kept = np.isclose(context, ref_weights / (1 - rate), rtol=1e-5, atol=1e-6)
    assert np.all(dropped | kept)
    assert 0.25 < dropped.mean() < 0.75, f"dropped fraction {dropped.mean()}"
    # The returned weights are the attention distribution before dropout.
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)
    # A new dropout mask at each training call.
    again = to_numpy(layer(query, value, key=key, training=True))
    assert np.any(again != context)


@pytest.mark.parametrize("dropout", [1.5, 1.0, -0.1])
@pytest.mark.parametrize("cls", [AdditiveAttention, DotAttention])
def test_bad_dropout(cls, dropout):
    kwargs = {"units": 3} if cls is AdditiveAttention else {}
    with pytest.raises(ValueError, match=re.escape(f"received dropout={dropout}")):
        cls(dropout=dropout, **kwargs)


# ---------------------------------------------------------------- gradients
def _reference_loss(layer, weights, query, value, key, value_mask, probes):
    """The loss of the gradient test, computed with the numpy reference."""
    kind = layer_kind(layer)
    extra = {"score_mode": layer.score_mode} if kind == "dot" else {}
    context, attn = reference_attention(kind, weights, query, value, key=key,
                                        value_mask=value_mask, **extra)
    return float(np.sum(context * probes[0]) + np.sum(attn * probes[1]))


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_gradients(config_id, rng):
    query, value, key, value_mask, _ = _inputs(rng)  # includes a fully masked row
    layer = _built_layer(config_id, rng, query, value, key=key)
    probes = (float_array(rng, B, TQ, DV), float_array(rng, B, TQ, TV))
    q, v, k = (tf.constant(x) for x in (query, value, key))
    with tf.GradientTape() as tape:
        tape.watch([q, v, k])
        context, weights = layer(q, v, key=k, value_mask=value_mask,
                                 return_attention_scores=True)
        loss = tf.reduce_sum(context * probes[0]) + tf.reduce_sum(weights * probes[1])
    trainable = list(layer.trainable_weights)
    grads = tape.gradient(loss, [w.value for w in trainable] + [q, v, k])
    names = [w.name for w in trainable] + ["query", "value", "key"]
    for name, g in zip(names, grads):
        assert g is not None, f"no gradient for {name}"
        g = to_numpy(g)
        assert np.all(np.isfinite(g)), f"non-finite gradient for {name}"
        assert np.any(g != 0), f"zero gradient for {name}"
    # No gradient reaches the fully masked row's inputs.
    np.testing.assert_array_equal(to_numpy(grads[-3])[1], 0.0)

    # Directional derivatives against central differences of the numpy reference.
    ref_weights = layer_weights(layer)
    name_of = {w.name: w for w in trainable}
    eps = 1e-5
    for name, g in zip(names, grads):
        direction = rng.normal(size=g.shape)
        analytic = float(np.sum(to_numpy(g) * direction))

        def loss_at(sign):
            w = dict(ref_weights)
            ins = {"query": query, "value": value, "key": key}
            if name in name_of:
                w[name] = ref_weights[name] + sign * eps * direction
            else:
                ins[name] = ins[name].astype(np.float64) + sign * eps * direction
            return _reference_loss(layer, w, ins["query"], ins["value"], ins["key"],
                                   value_mask, probes)

        numeric = (loss_at(1) - loss_at(-1)) / (2 * eps)
        assert np.isclose(analytic, numeric, rtol=2e-3, atol=1e-4), (
            f"d loss / d {name}: autodiff {analytic}, central difference {numeric}"
        )


# ---------------------------------------------------------- mixed precision
@pytest.mark.parametrize("config_id", CONFIG_IDS)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(config_id, policy, rng, dtype_policy):
    query, value, key, value_mask, query_mask = _inputs(rng)
    value_mask[1, 2] = True  # every row has a key: every weight row sums to one
    ref_layer = _built_layer(config_id, rng, query, value, key=key)
    compute_dtype = policy.split("_")[1]

    dtype_policy(policy)
    layer = make_layer(config_id)
    assert layer.compute_dtype == compute_dtype
    layer(query, value, key=key)
    assert all(w.dtype == "float32" for w in layer.weights)
    layer.set_weights(ref_layer.get_weights())

    tol = 1e-2 if policy == "mixed_float16" else 4e-2
    for scale in (1.0, 1e3):  # 1e3: q . k ~ 1e6 overflows float16
        q, v, k = (x * np.float32(scale) for x in (query, value, key))
        kwargs = {"key": k, "value_mask": value_mask, "query_mask": query_mask}
        context, weights = layer(q, v, return_attention_scores=True, **kwargs)
        assert keras.backend.standardize_dtype(context.dtype) == compute_dtype
        context = to_numpy(context).astype(np.float64)
        weights = to_numpy(weights).astype(np.float64)
        assert np.all(np.isfinite(context)), f"non-finite context at scale {scale}"
        assert np.all(np.isfinite(weights)), f"non-finite weights at scale {scale}"
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=tol)
        ref_context, ref_weights = (to_numpy(x) for x in
                                    ref_layer(q, v, return_attention_scores=True, **kwargs))
        np.testing.assert_allclose(weights, ref_weights, atol=tol)
        np.testing.assert_allclose(context, ref_context, atol=tol * scale)


# --------------------------------------------------------------------- XLA
@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_xla_matches_eager(config_id, rng):
    query, value, key, value_mask, query_mask = _inputs(rng, tq=TV)
    layer = _built_layer(config_id, rng, query, value, key=key)

    def attend(q, v, k, vm, qm):
        return layer(q, v, key=k, value_mask=vm, query_mask=qm, use_causal_mask=True,
                     return_attention_scores=True)

    def step(q, v, projected, vm):
        return layer(q, v, projected_keys=projected, value_mask=vm,
                     return_attention_scores=True)

    args = [tf.constant(x) for x in (query, value, key, value_mask, query_mask)]
    eager = attend(*args)
    compiled = tf.function(attend, jit_compile=True)(*args)
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-5)
    projected = layer.project_keys(key)
    step_args = (tf.constant(query[:, 1]), args[1], projected, args[3])
    eager_step = step(*step_args)
    compiled_step = tf.function(step, jit_compile=True)(*step_args)
    for a, b in zip(compiled_step, eager_step):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-5)


# ----------------------------------------------------------- serialization
@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_serialize_deserialize_without_custom_objects(config_id, rng):
    query, value, key, _, _ = _inputs(rng)
    layer = make_layer(config_id, dropout=0.25, name="my_attention")
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    cls = type(layer)
    assert serialized["registered_name"] == f"keras_attention>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls
    assert restored.get_config() == layer.get_config()
    assert restored.name == "my_attention" and restored.dropout == 0.25
    layer(query, value, key=key)
    randomize_weights(layer, rng)
    restored(query, value, key=key)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(restored(query, value, key=key)),
                               to_numpy(layer(query, value, key=key)), atol=1e-6)


def _functional_model(config_id, rng):
    query_in = keras.Input((TQ, D), name="query")
    value_in = keras.Input((TV, DV), name="value")
    key_in = keras.Input((TV, D), name="key")
    mask_in = keras.Input((TV,), dtype="bool", name="value_mask")
    layer = make_layer(config_id, dropout=0.1)
    context, weights = layer(query_in, value_in, key=key_in, value_mask=mask_in,
                             return_attention_scores=True)
    output = keras.layers.Dense(2, name="head")(context)
    model = keras.Model([query_in, value_in, key_in, mask_in], [output, weights])
    randomize_weights(layer, rng)
    return model, layer


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_keras_file_roundtrip_without_custom_objects(config_id, rng, tmp_path):
    query, value, key, value_mask, _ = _inputs(rng)
    value_mask[1, 0] = True
    model, layer = _functional_model(config_id, rng)
    inputs = [query, value, key, value_mask]
    expected = [to_numpy(x) for x in model(inputs)]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    restored = [lay for lay in loaded.layers if isinstance(lay, type(layer))]
    assert len(restored) == 1 and restored[0].get_config() == layer.get_config()
    for got, want in zip(loaded(inputs), expected):
        np.testing.assert_allclose(to_numpy(got), want, atol=1e-6)
    # The restored attention weights are still the reference's.
    _, ref_weights = reference_for(restored[0], query, value, key=key, value_mask=value_mask)
    np.testing.assert_allclose(expected[1], ref_weights, atol=ATOL)


@pytest.mark.parametrize("config_id", CONFIG_IDS)
def test_export_saved_model(config_id, rng, tmp_path):
    query, value, key, value_mask, _ = _inputs(rng)
    model, _ = _functional_model(config_id, rng)
    inputs = [query, value, key, value_mask]
    expected = [to_numpy(x) for x in model(inputs)]
    path = str(tmp_path / "saved_model")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    got = reloaded.serve([tf.constant(x) for x in inputs])
    assert len(got) == 2
    for g, want in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), want, atol=1e-6)
    # Another batch size through the same signature.
    got_one = reloaded.serve([tf.constant(x[:1]) for x in inputs])
    for g, want in zip(got_one, expected):
        np.testing.assert_allclose(g.numpy(), want[:1], atol=1e-6)


# --------------------------------------------------------------- bad inputs
def _shape_text(shape):
    return re.escape(str(tuple(shape)))


GOOD_Q, GOOD_V = (2, 3, 4), (2, 5, 4)
# name: (query shape, value shape, key shape, message pattern from the shapes)
BAD_INPUTS = {
    "rank4_query": ((2, 3, 4, 4), GOOD_V, None,
                    lambda q, v, k: r"`query` must have rank 2 \[batch, dim\] or 3 "
                    r"\[batch, time, dim\], received shape " + _shape_text(q)),
    "rank1_query": ((4,), GOOD_V, None,
                    lambda q, v, k: r"`query` must have rank 2 .*received shape "
                    + _shape_text(q)),
    "rank2_value": (GOOD_Q, (2, 4), None,
                    lambda q, v, k: r"`value` must have rank 3 .*received shape "
                    + _shape_text(v)),
    "rank2_key": (GOOD_Q, GOOD_V, (2, 4),
                  lambda q, v, k: r"`key` must have rank 3 .*received shape " + _shape_text(k)),
    "batch_mismatch": ((3, 3, 4), GOOD_V, None,
                       lambda q, v, k: r"batch sizes differ: query shape " + _shape_text(q)
                       + r", value shape " + _shape_text(v)),
    "key_batch_mismatch": (GOOD_Q, GOOD_V, (1, 5, 4),
                           lambda q, v, k: r"batch sizes differ: .*key shape "
                           + _shape_text(k)),
    "key_value_length": (GOOD_Q, GOOD_V, (2, 6, 4),
                         lambda q, v, k: r"`key` and `value` must have the same length, "
                         r"received key shape " + _shape_text(k) + r" and value shape "
                         + _shape_text(v)),
}


@pytest.mark.parametrize("config_id", CONFIG_IDS)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_shapes(config_id, case, rng):
    query_shape, value_shape, key_shape, pattern = BAD_INPUTS[case]
    query = float_array(rng, *query_shape)
    value = float_array(rng, *value_shape)
    key = None if key_shape is None else float_array(rng, *key_shape)
    expected = pattern(query_shape, value_shape, key_shape)

    # Unbuilt layer (build validates) and built layer (call validates).
    with pytest.raises(ValueError, match=expected):
        make_layer(config_id)(query, value, key=key)
    built = make_layer(config_id)
    built(float_array(rng, *GOOD_Q), float_array(rng, *GOOD_V))
    with pytest.raises(ValueError, match=expected):
        built(query, value, key=key)

    # Symbolic (functional API), unbuilt and built: the batch size is known
    # when the case is about batch sizes, else None.
    keep_batch = "batch" in case

    def symbolic_shape(shape):
        if shape is None or keep_batch:
            return shape
        return (None,) + tuple(shape[1:])

    shapes = [symbolic_shape(s) for s in (query_shape, value_shape, key_shape)]
    sym = [None if s is None else keras.Input(batch_shape=s) for s in shapes]
    for layer in (make_layer(config_id), built):
        with pytest.raises(ValueError, match=pattern(*shapes)):
            layer(sym[0], sym[1], key=sym[2])


# ----------------------------------------------------------------- learning
@pytest.mark.slow
@pytest.mark.parametrize("config_id", ["additive", "dot", "general", "scaled_dot"])
def test_learns_to_reverse_a_sequence(config_id):
    """Output position i must emit input token T-1-i: only a sharp, learned
    alignment of query position i with key position T-1-i solves it.

    Queries are learned embeddings of the output positions; keys are token
    plus position embeddings; values are token embeddings only, so position
    information reaches the output through the attention weights alone.
    """
    keras.utils.set_random_seed(7)
    vocab, length, dim = 10, 6, 16
    data_rng = np.random.default_rng(7)

    def batch(n):
        tokens = data_rng.integers(0, vocab, size=(n, length))
        positions = np.tile(np.arange(length), (n, 1))
        return [tokens, positions], tokens[:, ::-1]

    tokens_in = keras.Input((length,), dtype="int32")
    positions_in = keras.Input((length,), dtype="int32")
    token_embedding = keras.layers.Embedding(vocab, dim)(tokens_in)
    key_positions = keras.layers.Embedding(length, dim)(positions_in)
    queries = keras.layers.Embedding(length, dim)(positions_in)
    keys = keras.layers.Add()([token_embedding, key_positions])
    layer = make_layer(config_id, **({"units": dim} if "additive" in config_id else {}))
    context, weights = layer(queries, token_embedding, key=keys, return_attention_scores=True)
    probabilities = keras.layers.Dense(vocab, activation="softmax")(context)
    model = keras.Model([tokens_in, positions_in], probabilities)
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    x_train, y_train = batch(2000)
    x_test, y_test = batch(500)
    model.fit(x_train, y_train, batch_size=100, epochs=4, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    # (Uniform attention, i.e. a bag of tokens, reaches about 0.34.)
    assert accuracy >= 0.95, f"{config_id}: held-out accuracy {accuracy:.3f} < 0.95"
    # The alignment learned is the reversal: position i attends to T-1-i.
    attention = to_numpy(keras.Model([tokens_in, positions_in], weights)(x_test))
    on_target = attention[:, np.arange(length), np.arange(length)[::-1]].mean()
    assert on_target >= 0.8, f"{config_id}: mean weight on the reversed position {on_target:.3f}"
