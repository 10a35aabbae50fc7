"""Layer configurations and inputs shared by the attention layer tests."""

import keras
import numpy as np

from keras_attention import AdditiveAttention, DotAttention

# Every score variant: both additive flavours, and each Luong score mode.
LAYER_CONFIGS = {
    "additive": (AdditiveAttention, {"units": 5}),
    "additive_normalized_nobias": (
        AdditiveAttention, {"units": 5, "use_bias": False, "normalize": True},
    ),
    "dot": (DotAttention, {"score_mode": "dot"}),
    "general": (DotAttention, {"score_mode": "general"}),
    "scaled_dot": (DotAttention, {"score_mode": "scaled_dot", "use_scale": True}),
}
CONFIG_IDS = list(LAYER_CONFIGS)


def make_layer(config_id, **overrides):
    cls, kwargs = LAYER_CONFIGS[config_id]
    return cls(**{**kwargs, **overrides})


def has_weights_to_build(config_id):
    """Whether `project_keys` needs weights (a key projection)."""
    cls, kwargs = LAYER_CONFIGS[config_id]
    return cls is AdditiveAttention or kwargs.get("score_mode") == "general"


def randomize_weights(layer, rng, scale=0.7):
    """Replace every weight with random values, so that zero biases, unit
    gains and unit scales do not hide a wrong formula. Scalars (gain, scale)
    are drawn in [0.5, 1.5] to stay positive and away from 0 and 1."""
    new = []
    for w in layer.get_weights():
        if w.ndim == 0:
            new.append(np.asarray(rng.uniform(0.5, 1.5), w.dtype))
        else:
            new.append((scale * rng.normal(size=w.shape)).astype(w.dtype))
    layer.set_weights(new)


def float_array(rng, *shape, scale=1.0):
    return (scale * rng.normal(size=shape)).astype("float32")


def attention_inputs(rng, batch=2, tq=3, tv=5, dq=4, dk=4, dv=4, separate_key=False):
    """Query, value, optional key and masks. The value mask of batch row 0
    masks its last two positions; the query mask masks one position per row."""
    query = float_array(rng, batch, tq, dq)
    value = float_array(rng, batch, tv, dv)
    key = float_array(rng, batch, tv, dk) if separate_key else None
    value_mask = np.ones((batch, tv), bool)
    value_mask[0, -2:] = False
    query_mask = np.ones((batch, tq), bool)
    query_mask[0, -1] = False
    if batch > 1:
        query_mask[1, 0] = False
    return query, value, key, value_mask, query_mask


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def case_inputs(rng, case, batch=3):
    """Inputs for a case dict: sizes `tq` (None: single step), `tv`, `dq`/`dk`
    (or one `d` for both), `dv`; flags `separate_key`, `value_mask`,
    `key_mask`, `query_mask`."""
    tq, tv = case["tq"], case["tv"]
    query_shape = (batch, case.get("dq", case.get("d"))) if tq is None else (batch, tq, case.get("dq", case.get("d")))
    inputs = {
        "query": float_array(rng, *query_shape),
        "value": float_array(rng, batch, tv, case["dv"]),
    }
    if case.get("separate_key"):
        inputs["key"] = float_array(rng, batch, tv, case.get("dk", case.get("d")))
    if case.get("value_mask"):
        mask = np.ones((batch, tv), bool)
        mask[0, -2:] = False
        mask[2, 1] = False
        inputs["value_mask"] = mask
    if case.get("key_mask"):
        mask = np.ones((batch, tv), bool)
        mask[1, 0] = False
        inputs["key_mask"] = mask
    if case.get("query_mask"):
        if tq is None:
            inputs["query_mask"] = np.array([True, False, True])
        else:
            mask = np.ones((batch, tq), bool)
            mask[0, -1] = False
            mask[1, 0] = False
            inputs["query_mask"] = mask
    return inputs
