"""DotAttention against the numpy reference, and its own arguments."""

import math

import numpy as np
import pytest

import keras
from keras_attention import DotAttention

from attention_cases import case_inputs, float_array, randomize_weights, to_numpy
from keras_attention.testing.numpy_reference import attend, dot_scores, reference_for

ATOL = 1e-5

VARIANTS = {
    "dot": {"score_mode": "dot"},
    "dot_scale": {"score_mode": "dot", "use_scale": True},
    "general": {"score_mode": "general"},
    "general_scale": {"score_mode": "general", "use_scale": True},
    "scaled_dot": {"score_mode": "scaled_dot"},
    "scaled_dot_scale": {"score_mode": "scaled_dot", "use_scale": True},
}

CASES = {
    "plain": dict(tq=3, tv=5, d=4, dv=4),
    "value_mask": dict(tq=3, tv=5, d=4, dv=4, value_mask=True),
    "query_mask": dict(tq=3, tv=5, d=4, dv=4, query_mask=True),
    "causal_self": dict(tq=5, tv=5, d=4, dv=4, causal=True),
    "causal_short_query": dict(tq=3, tv=5, d=4, dv=4, causal=True, value_mask=True),
    "single_step": dict(tq=None, tv=5, d=4, dv=4, value_mask=True, query_mask=True),
    "key_differs": dict(tq=3, tv=5, d=4, dv=6, separate_key=True),
    "key_mask": dict(tq=3, tv=5, d=4, dv=6, separate_key=True, key_mask=True, value_mask=True),
    "everything": dict(tq=4, tv=4, d=4, dv=2, separate_key=True, value_mask=True,
                       query_mask=True, causal=True),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case_name", list(CASES))
def test_matches_numpy_reference(variant, case_name, rng):
    case = CASES[case_name]
    inputs = case_inputs(rng, case)
    causal = bool(case.get("causal"))
    layer = DotAttention(**VARIANTS[variant])
    layer(**inputs)  # build
    randomize_weights(layer, rng)
    context, weights = layer(**inputs, return_attention_scores=True, use_causal_mask=causal)
    ref_kwargs = {k: v for k, v in inputs.items() if k not in ("query", "value")}
    ref_context, ref_weights = reference_for(
        layer, inputs["query"], inputs["value"], causal=causal, **ref_kwargs
    )
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)
    np.testing.assert_allclose(to_numpy(context), ref_context, atol=ATOL)


@pytest.mark.parametrize("use_scale", [False, True])
def test_general_allows_different_query_and_key_sizes(use_scale, rng):
    q = float_array(rng, 2, 3, 5)
    k = float_array(rng, 2, 4, 7)
    v = float_array(rng, 2, 4, 2)
    mask = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool)
    layer = DotAttention(score_mode="general", use_scale=use_scale)
    layer(q, v, key=k)
    randomize_weights(layer, rng)
    assert tuple(layer.kernel.shape) == (7, 5)  # [Dk, Dq]
    context, weights = layer(q, v, key=k, value_mask=mask, return_attention_scores=True)
    ref_context, ref_weights = reference_for(layer, q, v, key=k, value_mask=mask)
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)
    np.testing.assert_allclose(to_numpy(context), ref_context, atol=ATOL)


def test_scores_by_hand():
    """dot, scaled_dot and general scores of tiny integer inputs, computed by hand."""
    q = np.array([[[1.0, 2.0]]], "float32")  # [1, 1, 2]
    k = np.array([[[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], "float32")  # [1, 3, 2]
    v = np.eye(3, dtype="float32")[None]  # context == weights
    expected_scores = {
        "dot": [3.0, 2.0, 3.0],
        "scaled_dot": [3.0 / math.sqrt(2), 2.0 / math.sqrt(2), 3.0 / math.sqrt(2)],
        # kernel [[0, 1], [1, 0]] swaps the key's coordinates: (0,3), (1,0), (1,1)
        "general": [6.0, 1.0, 3.0],
    }
    for mode, scores in expected_scores.items():
        layer = DotAttention(score_mode=mode)
        layer(q, v, key=k)
        if mode == "general":
            layer.kernel.assign(np.array([[0.0, 1.0], [1.0, 0.0]], "float32"))
        context = to_numpy(layer(q, v, key=k))[0, 0]
        e = np.exp(np.array(scores) - max(scores))
        np.testing.assert_allclose(context, e / e.sum(), atol=1e-6, err_msg=mode)


def test_use_scale_multiplies_scores(rng):
    q = float_array(rng, 2, 3, 4)
    v = float_array(rng, 2, 5, 4)
    layer = DotAttention(score_mode="dot", use_scale=True)
    layer(q, v)
    assert [w.name for w in layer.trainable_weights] == ["scale"]
    np.testing.assert_allclose(to_numpy(layer.scale), 1.0)  # initialized to 1
    layer.scale.assign(2.5)
    _, weights = layer(q, v, return_attention_scores=True)
    _, ref_weights = attend(2.5 * dot_scores(q, v), v)
    np.testing.assert_allclose(to_numpy(weights), ref_weights, atol=ATOL)


def test_weights_per_mode():
    def names(**kwargs):
        layer = DotAttention(**kwargs)
        layer.build((2, 3, 4), (2, 5, 6), (2, 5, 4))
        return {w.name: tuple(w.shape) for w in layer.weights}

    assert names(score_mode="dot") == {}
    assert names(score_mode="scaled_dot") == {}
    assert names(score_mode="general") == {"kernel": (4, 4)}
    assert names(score_mode="scaled_dot", use_scale=True) == {"scale": ()}


def test_project_keys(rng):
    k = float_array(rng, 2, 5, 4)
    q = float_array(rng, 2, 3, 6)
    for mode in ("dot", "scaled_dot"):
        layer = DotAttention(score_mode=mode)
        np.testing.assert_array_equal(to_numpy(layer.project_keys(k)), k)  # identity, no weights
    layer = DotAttention(score_mode="general")
    layer(q, k)
    randomize_weights(layer, rng)
    np.testing.assert_allclose(
        to_numpy(layer.project_keys(k)), k @ to_numpy(layer.kernel), atol=1e-5
    )


@pytest.mark.parametrize("score_mode", ["foo", "Dot", "", None, "additive"])
def test_bad_score_mode(score_mode):
    with pytest.raises(ValueError, match=r"`score_mode` must be one of .*received score_mode="):
        DotAttention(score_mode=score_mode)


@pytest.mark.parametrize("score_mode", ["dot", "scaled_dot"])
def test_dot_needs_equal_query_and_key_sizes(score_mode, rng):
    q = float_array(rng, 2, 3, 4)
    v = float_array(rng, 2, 5, 6)
    with pytest.raises(ValueError, match=r"received 4 and 6; use score_mode='general'"):
        DotAttention(score_mode=score_mode)(q, v)
    with pytest.raises(ValueError, match=r"received 4 and 6"):
        DotAttention(score_mode=score_mode)(keras.Input((3, 4)), keras.Input((5, 6)))


@pytest.mark.parametrize("dtype", ["float32", "float16", "mixed_float16", "mixed_bfloat16"])
def test_masked_key_never_wins_a_large_score_gap(dtype):
    """Scores -30000 (allowed) and 40000 (masked), both float16-representable:
    a fixed offset of 65504 on masked scores used to leave the masked key the
    winner under float16 policies."""
    q = np.array([[[200.0]]], "float32")
    k = np.array([[[-150.0], [200.0]]], "float32")
    v = np.array([[[1.0], [2.0]]], "float32")
    mask = np.array([[True, False]])
    context, weights = DotAttention(dtype=dtype)(q, v, key=k, value_mask=mask,
                                                 return_attention_scores=True)
    np.testing.assert_array_equal(to_numpy(weights).astype("float32"), [[[1.0, 0.0]]])
    np.testing.assert_array_equal(to_numpy(context).astype("float32"), [[[1.0]]])


@pytest.mark.parametrize("score_mode", ["dot", "scaled_dot"])
def test_precomputed_keys_without_key_check_the_keys_not_the_value(score_mode, rng):
    """value [.., 3] differs from query/key [.., 4]: with `projected_keys` and no
    `key`, the size check is on the keys (it used to compare Dq with Dv)."""
    q = float_array(rng, 2, 3, 4)
    k = float_array(rng, 2, 5, 4)
    v = float_array(rng, 2, 5, 3)
    layer = DotAttention(score_mode=score_mode)  # unbuilt: build sees projected_keys too
    context = layer(q, v, projected_keys=layer.project_keys(k))
    ref_context, _ = reference_for(layer, q, v, key=k)
    np.testing.assert_allclose(to_numpy(context), ref_context, atol=ATOL)
    symbolic = layer(keras.Input((3, 4)), keras.Input((5, 3)), projected_keys=keras.Input((5, 4)))
    assert tuple(symbolic.shape) == (None, 3, 3)
    # Keys of the wrong size are still rejected, naming the sizes.
    with pytest.raises(ValueError, match=r"received 4 and 6"):
        layer(q, v, projected_keys=float_array(rng, 2, 5, 6))
