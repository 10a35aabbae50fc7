"""AdditiveAttention against the numpy reference, and its own arguments."""

import math

import numpy as np
import pytest

import keras
from keras_attention import AdditiveAttention

from attention_cases import case_inputs, float_array, randomize_weights, to_numpy
from keras_attention.testing.numpy_reference import additive_scores, attend, reference_for

ATOL = 1e-5

VARIANTS = {
    "bias": {"use_bias": True, "normalize": False},
    "no_bias": {"use_bias": False, "normalize": False},
    "normalized": {"use_bias": True, "normalize": True},
    "normalized_no_bias": {"use_bias": False, "normalize": True},
}

# Sizes (tq=None: single-step query [B, Dq]) and which masks / separate key to use.
CASES = {
    "plain": dict(tq=3, tv=5, dq=3, dk=3, dv=3),
    "value_mask": dict(tq=3, tv=5, dq=3, dk=3, dv=3, value_mask=True),
    "query_mask": dict(tq=3, tv=5, dq=3, dk=3, dv=3, query_mask=True),
    "causal_self": dict(tq=5, tv=5, dq=4, dk=4, dv=4, causal=True),
    "causal_short_query": dict(tq=3, tv=5, dq=4, dk=4, dv=4, causal=True, value_mask=True),
    "single_step": dict(tq=None, tv=5, dq=3, dk=3, dv=3, value_mask=True, query_mask=True),
    "key_differs": dict(tq=3, tv=5, dq=3, dk=6, dv=2, separate_key=True),
    "key_mask": dict(tq=3, tv=5, dq=3, dk=6, dv=2, separate_key=True, key_mask=True,
                     value_mask=True),
    "everything": dict(tq=4, tv=4, dq=3, dk=6, dv=2, separate_key=True, value_mask=True,
                       query_mask=True, causal=True),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case_name", list(CASES))
def test_matches_numpy_reference(variant, case_name, rng):
    case = CASES[case_name]
    inputs = case_inputs(rng, case)
    causal = bool(case.get("causal"))
    layer = AdditiveAttention(units=4, **VARIANTS[variant])
    layer(**inputs)  # build
    randomize_weights(layer, rng)
    context, weights = layer(**inputs, return_attention_scores=True, use_causal_mask=causal)
    ref_kwargs = {k: v for k, v in inputs.items() if k not in ("query", "value")}
    ref_context, ref_weights = reference_for(
        layer, inputs["query"], inputs["value"], causal=causal, **ref_kwargs
    )
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)
    np.testing.assert_allclose(to_numpy(context), ref_context, atol=ATOL)


def test_weight_names_and_shapes():
    """The reference reads weights by name: check they are the ones documented."""
    layer = AdditiveAttention(units=7, normalize=True)
    layer.build((2, 3, 4), (2, 5, 6), (2, 5, 9))
    shapes = {w.name: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "query_kernel": (4, 7), "key_kernel": (9, 7), "score_vector": (7,), "bias": (7,),
        "gain": (),
    }
    assert layer.gain is not None and layer.bias is not None
    # gain starts at 1/sqrt(units)
    np.testing.assert_allclose(to_numpy(layer.gain), 7 ** -0.5, rtol=1e-6)


def test_score_formula_by_hand(rng):
    """One score computed with scalars and math.tanh, not numpy broadcasting."""
    layer = AdditiveAttention(units=2)
    q = float_array(rng, 1, 1, 2)
    v = float_array(rng, 1, 2, 3)
    layer(q, v)
    wq = np.array([[0.5, -1.0], [2.0, 0.25]], "float32")
    wk = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]], "float32")
    vec = np.array([1.5, -0.5], "float32")
    b = np.array([0.1, -0.2], "float32")
    layer.query_kernel.assign(wq)
    layer.key_kernel.assign(wk)
    layer.score_vector.assign(vec)
    layer.bias.assign(b)
    _, weights = layer(q, v, return_attention_scores=True)
    scores = []
    for j in range(2):
        total = 0.0
        for u in range(2):
            pre = sum(q[0, 0, i] * wq[i, u] for i in range(2))
            pre += sum(v[0, j, i] * wk[i, u] for i in range(3)) + b[u]
            total += vec[u] * math.tanh(pre)
        scores.append(total)
    e = [math.exp(s - max(scores)) for s in scores]
    expected = [x / sum(e) for x in e]
    np.testing.assert_allclose(to_numpy(weights)[0, 0], expected, atol=1e-6)


def test_normalize_is_scale_invariant(rng):
    """With normalize=True only the direction of v matters (and the gain)."""
    q = float_array(rng, 2, 3, 4)
    v = float_array(rng, 2, 5, 4)
    layer = AdditiveAttention(units=6, normalize=True)
    layer(q, v)
    randomize_weights(layer, rng)
    before = to_numpy(layer(q, v))
    layer.score_vector.assign(layer.score_vector * 10.0)
    after = to_numpy(layer(q, v))
    np.testing.assert_allclose(after, before, atol=1e-6)
    # Without normalize, scaling v sharpens the weights: the output changes.
    plain = AdditiveAttention(units=6)
    plain(q, v)
    randomize_weights(plain, rng)
    before = to_numpy(plain(q, v))
    plain.score_vector.assign(plain.score_vector * 10.0)
    assert np.max(np.abs(to_numpy(plain(q, v)) - before)) > 1e-2


def test_project_keys_matches_reference(rng):
    layer = AdditiveAttention(units=4)
    q = float_array(rng, 2, 3, 5)
    v = float_array(rng, 2, 6, 2)
    k = float_array(rng, 2, 6, 7)
    layer(q, v, key=k)
    projected = to_numpy(layer.project_keys(k))
    np.testing.assert_allclose(projected, k @ to_numpy(layer.key_kernel), atol=1e-5)
    # Scores through the precomputed keys are the reference scores of the given key.
    _, weights = layer(q, v, projected_keys=layer.project_keys(k), return_attention_scores=True)
    w = {name: to_numpy(getattr(layer, name)) for name in
         ("query_kernel", "key_kernel", "score_vector", "bias")}
    scores = additive_scores(q, k, w["query_kernel"], w["key_kernel"], w["score_vector"],
                             bias=w["bias"])
    _, ref_weights = attend(scores, v)
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)


def test_regularizers_add_losses(rng):
    layer = AdditiveAttention(units=3, kernel_regularizer=keras.regularizers.L2(0.1),
                              bias_regularizer=keras.regularizers.L1(0.2),
                              bias_initializer="random_normal")
    layer(float_array(rng, 2, 3, 4), float_array(rng, 2, 5, 4))
    w = {name: to_numpy(getattr(layer, name)).astype(np.float64) for name in
         ("query_kernel", "key_kernel", "score_vector", "bias")}
    expected = (0.1 * sum(np.sum(w[n] ** 2) for n in ("query_kernel", "key_kernel",
                                                      "score_vector"))
                + 0.2 * np.sum(np.abs(w["bias"])))
    assert np.isclose(float(sum(to_numpy(x) for x in layer.losses)), expected, rtol=1e-5)


def test_initializers_are_used():
    layer = AdditiveAttention(units=3, kernel_initializer="ones", bias_initializer="zeros")
    layer.build((2, 3, 4), (2, 5, 4))
    np.testing.assert_array_equal(to_numpy(layer.query_kernel), np.ones((4, 3)))
    np.testing.assert_array_equal(to_numpy(layer.score_vector), np.ones(3))
    np.testing.assert_array_equal(to_numpy(layer.bias), np.zeros(3))


@pytest.mark.parametrize("units", [0, -3, 2.5, "4", None])
def test_bad_units(units):
    with pytest.raises(ValueError, match=r"`units` must be a positive integer, received units="):
        AdditiveAttention(units=units)


def test_unknown_last_dimension_rejected():
    layer = AdditiveAttention(units=3)
    with pytest.raises(ValueError, match=r"needs known last dimensions.*\(2, 3, None\)"):
        layer.build((2, 3, None), (2, 5, 4))
