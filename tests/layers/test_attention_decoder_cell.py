"""AttentionDecoderCell and AttentionDecoder against an independent numpy model.

The reference below is written from the equations (Keras 3 `GRUCell` with
`reset_after=True`, `LSTMCell`, Bahdanau additive and Luong "general"
scores, `a_t = tanh(W_c [c_t; h_t])`, the Show, Attend and Tell context
gate `beta_t c_t`), in float64, reading only the layers' weights. Every
weight, bias and state is random so that zero biases or zero states cannot
hide a wrong term.
"""

import copy
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_attention import AdditiveAttention, AttentionDecoder, AttentionDecoderCell, DotAttention

ATOL = 2e-5
B, T, S, DIN, DM = 3, 5, 6, 4, 7
UNITS, A_SIZE, ATT_UNITS = 8, 6, 5


# ---------------------------------------------------------------- numpy model
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def np_gru(cell, x, states):
    """Keras 3 GRUCell, reset_after=True: bias [2, 3U] = (input bias, recurrent bias)."""
    (h,) = states
    kernel, recurrent, bias = _np(cell.kernel), _np(cell.recurrent_kernel), _np(cell.bias)
    u = h.shape[-1]
    mx = x @ kernel + bias[0]
    mh = h @ recurrent + bias[1]
    z = _sigmoid(mx[:, :u] + mh[:, :u])
    r = _sigmoid(mx[:, u:2 * u] + mh[:, u:2 * u])
    candidate = np.tanh(mx[:, 2 * u:] + r * mh[:, 2 * u:])
    new_h = z * h + (1.0 - z) * candidate
    return new_h, [new_h]


def np_lstm(cell, x, states):
    """Keras 3 LSTMCell: gates i, f, c, o; states [h, c]."""
    h, c = states
    z = x @ _np(cell.kernel) + h @ _np(cell.recurrent_kernel) + _np(cell.bias)
    u = h.shape[-1]
    i, f = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u])
    g, o = np.tanh(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
    new_c = f * c + i * g
    new_h = o * np.tanh(new_c)
    return new_h, [new_h, new_c]


def np_rnn(cell, x, states):
    if isinstance(cell, keras.layers.StackedRNNCells):
        new_states = []
        for sub, sub_states in zip(cell.cells, states):
            x, sub_new = np_rnn(sub, x, sub_states)
            new_states.append(sub_new)
        return x, new_states
    if isinstance(cell, keras.layers.GRUCell):
        return np_gru(cell, x, states)
    if isinstance(cell, keras.layers.LSTMCell):
        return np_lstm(cell, x, states)
    raise TypeError(cell)


def np_attention(attention, query, memory, memory_mask):
    """Context [B, Dm] and weights [B, S] for a query [B, Dq]."""
    if isinstance(attention, AdditiveAttention):
        hidden = (query @ _np(attention.query_kernel) + _np(attention.bias))[:, None, :]
        hidden = np.tanh(hidden + memory @ _np(attention.key_kernel))  # [B, S, U]
        scores = hidden @ _np(attention.score_vector)
    else:
        assert attention.score_mode == "general"
        scores = np.einsum("bd,bsd->bs", query, memory @ _np(attention.kernel))
    if memory_mask is not None:
        scores = np.where(memory_mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    return np.einsum("bs,bsd->bd", weights, memory), weights


def np_top_h(cell, states):
    if isinstance(cell, keras.layers.StackedRNNCells):
        return np_top_h(cell.cells[-1], states[-1])
    return states[0]


def np_gate(dc, context, query):
    """Xu et al. 2015, 4.2.1: `beta = sigmoid(w . q + b)` [B, 1] scales the context [B, Dm]."""
    gate = dc.context_gate_layer
    beta = _sigmoid(query @ _np(gate.kernel) + _np(gate.bias))  # [B, H] @ [H, 1]
    return beta * context


def np_step(dc, cell_input_fn, x, states, memory, memory_mask, apply_gate=True):
    """One step of the attention decoder cell `dc`, from the equations.

    `apply_gate=False` leaves out the context gate of a gated cell, to show
    that a test would notice it missing.
    """
    cell_states, previous = states
    gated = dc.context_gate and apply_gate
    if dc.timing == "bahdanau":
        query = np_top_h(dc.cell, cell_states)  # h_{t-1}
        context, weights = np_attention(dc.attention, query, memory, memory_mask)
        if gated:
            context = np_gate(dc, context, query)
        h, new_cell_states = np_rnn(dc.cell, cell_input_fn(x, context), cell_states)
    else:
        cell_in = cell_input_fn(x, previous) if dc.input_feeding else x
        h, new_cell_states = np_rnn(dc.cell, cell_in, cell_states)
        context, weights = np_attention(dc.attention, h, memory, memory_mask)  # query h_t
        if gated:
            context = np_gate(dc, context, h)
    if dc.attention_layer_size:
        projected = np.concatenate([context, h], -1) @ _np(dc.attention_projection.kernel)
        if dc.attention_layer_norm:
            norm = dc.attention_norm
            mean = projected.mean(-1, keepdims=True)
            variance = projected.var(-1, keepdims=True)
            projected = ((projected - mean) / np.sqrt(variance + norm.epsilon)
                         * _np(norm.gamma) + _np(norm.beta))
        activation = keras.activations.serialize(dc.attention_activation)
        attentional = np.tanh(projected) if activation == "tanh" else projected
    else:
        attentional = context
    out = attentional if dc.output_attention else h
    return out, (new_cell_states, attentional), weights


def np_concat(x, a):
    return np.concatenate([x, a], axis=-1)


def np_decode(dc, x, states, memory, memory_mask=None, inputs_mask=None, cell_input_fn=np_concat):
    """Whole sequence: states carried over padded target steps."""
    outputs, all_weights = [], []
    for t in range(x.shape[1]):
        out, new_states, weights = np_step(dc, cell_input_fn, x[:, t], states, memory,
                                           memory_mask)
        if inputs_mask is not None:
            keep = inputs_mask[:, t][:, None]
            new_states = _map2(lambda n, o: np.where(keep, n, o), new_states, states)
        states = new_states
        outputs.append(out)
        all_weights.append(weights)
    return np.stack(outputs, 1), np.stack(all_weights, 1), states


def _map2(fn, a, b):
    if isinstance(a, (list, tuple)):
        return type(a)(_map2(fn, x, y) for x, y in zip(a, b))
    return fn(a, b)


# ------------------------------------------------------------------ fixtures
def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, DIN))
    memory = rng.normal(size=(B, S, DM))
    memory_mask = np.ones((B, S), bool)
    memory_mask[0, -2:] = False
    memory_mask[2, 0] = False
    return rng, x, memory, memory_mask


def make_rnn(kind, units=UNITS):
    if kind == "gru":
        return keras.layers.GRUCell(units)
    if kind == "lstm":
        return keras.layers.LSTMCell(units)
    if kind == "stacked":
        return keras.layers.StackedRNNCells([keras.layers.GRUCell(5), keras.layers.LSTMCell(6)])
    raise ValueError(kind)


def make_attention(kind):
    return AdditiveAttention(ATT_UNITS) if kind == "additive" else DotAttention("general")


def make_cell(rnn="gru", attention="additive", **kwargs):
    return AttentionDecoderCell(make_rnn(rnn), make_attention(attention), **kwargs)


def randomize(layer, rng, scale=0.6):
    for w in layer.weights:
        w.assign(rng.uniform(-scale, scale, size=tuple(w.shape)).astype(w.dtype))


def random_states(dc, rng, batch=B, memory_dim=DM):
    """Random `(cell_states, attentional)` with the cell's structure."""
    return keras.tree.map_structure(
        lambda t: rng.normal(size=tuple(t.shape)) * 0.5,
        dc.get_initial_state(np.zeros((batch, S, memory_dim), "float32")),
    )


def f32(structure):
    return keras.tree.map_structure(lambda a: tf.constant(np.asarray(a), tf.float32), structure)


def assert_close(actual, expected, atol=ATOL, what=""):
    flat_a, flat_e = keras.tree.flatten(actual), keras.tree.flatten(expected)
    assert len(flat_a) == len(flat_e), what
    for i, (a, e) in enumerate(zip(flat_a, flat_e)):
        a, e = _np(a), np.asarray(e, np.float64)
        assert a.shape == e.shape, f"{what} [{i}]: {a.shape} != {e.shape}"
        np.testing.assert_allclose(a, e, atol=atol, rtol=1e-5, err_msg=f"{what} [{i}]")


# ------------------------------------------------------------ one step vs numpy
STEP_CASES = [
    (timing, feed, size, out_att, rnn, att)
    for timing, feed in (("bahdanau", False), ("luong", True), ("luong", False))
    for size in (None, A_SIZE)
    for out_att in (True, False)
    for rnn in ("gru", "lstm")
    for att in ("additive", "general")
]


@pytest.mark.parametrize("timing,input_feeding,size,output_attention,rnn,attention", STEP_CASES)
def test_one_step_matches_numpy(timing, input_feeding, size, output_attention, rnn, attention):
    rng, x, memory, memory_mask = _data()
    dc = make_cell(rnn, attention, attention_layer_size=size, timing=timing,
                   input_feeding=input_feeding, output_attention=output_attention)
    dc.build((None, DIN), (None, S, DM))
    randomize(dc, rng)
    states = random_states(dc, rng)
    keys = dc.attention.project_keys(f32(memory))
    out, new_states, weights = dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask,
                                       projected_keys=keys)
    ref_out, ref_states, ref_weights = np_step(dc, np_concat, x[:, 0], states, memory,
                                               memory_mask)
    expected_size = (size or DM) if output_attention else UNITS
    assert tuple(out.shape) == (B, expected_size) == (B, dc.output_size(DM))
    assert_close(out, ref_out, what="outputs")
    assert_close(new_states, ref_states, what="states")
    assert_close(weights, ref_weights, what="weights")
    # Without projected keys the step projects them itself: same numbers.
    out2, _, _ = dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)
    assert_close(out2, ref_out, what="outputs, keys projected in the step")
    # `call` is the step without the weights.
    out3, states3 = dc(f32(x[:, 0]), f32(states), f32(memory), memory_mask)
    assert_close((out3, states3), (ref_out, ref_states), what="call")


@pytest.mark.parametrize("activation", ["tanh", "linear"])
@pytest.mark.parametrize("timing,input_feeding", [("luong", False), ("bahdanau", False)])
def test_layer_normalized_attentional_state_matches_numpy(activation, timing, input_feeding):
    rng, x, memory, memory_mask = _data()
    dc = make_cell("gru", "general", attention_layer_size=A_SIZE, timing=timing,
                   input_feeding=input_feeding, attention_layer_norm=True,
                   attention_activation=activation)
    dc.build((None, DIN), (None, S, DM))
    randomize(dc, rng)  # gamma and beta too, so the check sees them
    states = random_states(dc, rng)
    out, new_states, weights = dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)
    ref = np_step(dc, np_concat, x[:, 0], states, memory, memory_mask)
    assert_close((out, new_states, weights), ref, what="layer-normalized step")
    # The fast path (attention batched after the RNN) applies the same norm.
    decoder = AttentionDecoder(dc, fast_path="auto" if timing == "luong" else "never")
    sequence = decoder(f32(x), f32(memory), memory_mask=memory_mask)
    assert_close(sequence, np_decode(dc, x, dc.get_initial_state(f32(memory), memory_mask),
                                     memory, memory_mask)[0], what="sequence")
    clone = AttentionDecoderCell.from_config(dc.get_config())
    assert clone.attention_layer_norm and keras.activations.serialize(
        clone.attention_activation) == activation


def test_layer_norm_needs_a_projection():
    with pytest.raises(ValueError, match="attention_layer_size"):
        make_cell("gru", "general", attention_layer_size=None, attention_layer_norm=True)


@pytest.mark.parametrize("how", ["global policy", "dtype argument"])
def test_sublayers_take_the_cell_dtype_policy(how, dtype_policy):
    """W_c, its LayerNorm and the initial-state layers are made in `build`
    with the cell's policy, even when the global one differs by then."""
    rng, x, memory, memory_mask = _data()
    kwargs = {"dtype": "mixed_float16"} if how == "dtype argument" else {}
    if how == "global policy":
        dtype_policy("mixed_float16")
    dc = AttentionDecoderCell(
        keras.layers.GRUCell(UNITS, **kwargs), DotAttention("general", **kwargs),
        attention_layer_size=A_SIZE, attention_layer_norm=True, initial_state="mean_memory",
        input_feeding=False, context_gate=True, **kwargs,
    )
    keras.config.set_dtype_policy("float32")
    assert dc.attention_projection is None and dc.attention_norm is None  # made in build
    assert dc.context_gate_layer is None
    dc.build((None, DIN), (None, S, DM))
    sublayers = [dc.attention_projection, dc.attention_norm, dc.context_gate_layer,
                 *dc.state_initializers]
    assert [layer.dtype_policy.name for layer in sublayers] == ["mixed_float16"] * 4
    assert {w.dtype for layer in sublayers for w in layer.weights} == {"float32"}
    randomize(dc, rng)

    states = dc.get_initial_state(f32(memory), memory_mask)
    out, _, _ = dc.step(f32(x[:, 0]), states, f32(memory), memory_mask)
    assert out.dtype == "float16"
    initial = keras.tree.map_structure(_np, states)
    assert_close(out, np_step(dc, np_concat, x[:, 0], initial, memory, memory_mask)[0],
                 atol=5e-3, what="float16 step")

    # A second decoder builds the built cell again: no new sublayers.
    projection, gate, num_weights = dc.attention_projection, dc.context_gate_layer, len(dc.weights)
    sequence = AttentionDecoder(dc)(f32(x), f32(memory), memory_mask=memory_mask)  # fast path
    assert dc.attention_projection is projection and dc.context_gate_layer is gate
    assert len(dc.weights) == num_weights
    assert_close(sequence, np_decode(dc, x, initial, memory, memory_mask)[0], atol=1e-2,
                 what="float16 sequence")

    # The policy travels in the config to the sublayers of a clone.
    clone = AttentionDecoderCell.from_config(dc.get_config())
    clone.build((None, DIN), (None, S, DM))
    assert clone.attention_norm.dtype_policy.name == "mixed_float16"
    clone.set_weights(dc.get_weights())
    np.testing.assert_array_equal(
        _np(clone.step(f32(x[:, 0]), states, f32(memory), memory_mask)[0]), _np(out))


def test_bahdanau_ignores_input_feeding():
    """Bahdanau timing always feeds the context, never a_{t-1}."""
    rng, x, memory, memory_mask = _data()
    outputs = []
    for feed in (True, False):
        dc = make_cell("gru", "additive", attention_layer_size=A_SIZE, timing="bahdanau",
                       input_feeding=feed)
        dc.build((None, DIN), (None, S, DM))
        outputs.append(dc)
    outputs[1].set_weights(outputs[0].get_weights())
    states = random_states(outputs[0], np.random.default_rng(1))
    results = [dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)[0] for dc in outputs]
    ref = np_step(outputs[0], np_concat, x[:, 0], states, memory, memory_mask)[0]
    assert_close(results[0], ref)
    assert_close(results[1], ref)


@keras.saving.register_keras_serializable(package="test_attention_decoder_cell")
def add_cell_input(inputs, attention):
    """A custom cell_input_fn: inputs + a projection-free slice of the attention."""
    return inputs + ops.cast(attention[..., : inputs.shape[-1]], inputs.dtype)


def test_custom_cell_input_fn_matches_numpy_and_round_trips():
    rng, x, memory, memory_mask = _data()
    dc = make_cell("lstm", "additive", timing="luong", input_feeding=True,
                   attention_layer_size=A_SIZE, cell_input_fn=add_cell_input)
    dc.build((None, DIN), (None, S, DM))
    assert tuple(dc.cell.kernel.shape) == (DIN, 4 * UNITS)  # probed size: not Din + A
    randomize(dc, rng)
    states = random_states(dc, rng)
    out, _, _ = dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)

    def np_add(x_, a_):
        return x_ + a_[:, : x_.shape[-1]]

    assert_close(out, np_step(dc, np_add, x[:, 0], states, memory, memory_mask)[0])
    clone = AttentionDecoderCell.from_config(dc.get_config())
    assert clone.cell_input_fn is add_cell_input
    clone.build((None, DIN), (None, S, DM))
    clone.set_weights(dc.get_weights())
    assert_close(clone.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)[0], _np(out))


# ------------------------------------------------- whole sequence: three paths
SEQ_CASES = [
    ("bahdanau", False, "gru", "additive"),
    ("bahdanau", False, "lstm", "general"),
    ("luong", True, "gru", "general"),
    ("luong", True, "lstm", "additive"),
    ("luong", False, "gru", "additive"),
    ("luong", False, "lstm", "general"),
]


def _target_mask():
    mask = np.ones((B, T), bool)
    mask[0, -2:] = False  # trailing padding
    mask[1, 2] = False  # a padded step in the middle
    mask[2, :] = False  # nothing at all: the final state is the initial one
    return mask


def _decoder_pair(timing, feed, rnn, attention, rng, **cell_kwargs):
    """Step-path and auto decoders with equal random weights."""
    decoders = []
    for fast_path in ("never", "auto"):
        dc = make_cell(rnn, attention, attention_layer_size=A_SIZE, timing=timing,
                       input_feeding=feed, **cell_kwargs)
        decoders.append(AttentionDecoder(dc, fast_path=fast_path))
        decoders[-1].build((None, T, DIN), (None, S, DM))
    randomize(decoders[0], rng)
    decoders[1].set_weights(decoders[0].get_weights())
    return decoders


def _check_both_paths(slow, auto, x, memory, memory_mask, inputs_mask, initial, reference):
    """Both decoders against the numpy `(outputs, weights, final states)` at
    real target steps, and against each other everywhere (padding included).
    Returns `{"step path": (out, weights, states), "auto path": ...}`."""
    ref_out, ref_w, ref_states = reference
    valid = np.ones((B, T), bool) if inputs_mask is None else inputs_mask
    results = {}
    for name, decoder in (("step path", slow), ("auto path", auto)):
        out, weights, states = decoder(
            f32(x), f32(memory), memory_mask=memory_mask, inputs_mask=inputs_mask,
            initial_state=f32(initial), return_attention_scores=True, return_state=True,
        )
        results[name] = (out, weights, states)
        assert_close(_np(out)[valid], ref_out[valid], what=f"{name} outputs")
        assert_close(_np(weights)[valid], ref_w[valid], what=f"{name} weights")
        assert_close(states, ref_states, what=f"{name} final state")
    assert_close(results["auto path"], keras.tree.map_structure(_np, results["step path"]),
                 what="auto vs step path")
    return results


@pytest.mark.parametrize("timing,input_feeding,rnn,attention", SEQ_CASES)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_sequence_paths_agree_with_numpy(timing, input_feeding, rnn, attention, masked):
    rng, x, memory, memory_mask = _data()
    slow, auto = _decoder_pair(timing, input_feeding, rnn, attention, rng)
    assert not slow.uses_fast_path
    assert auto.uses_fast_path == (timing == "luong" and not input_feeding)
    inputs_mask = _target_mask() if masked else None
    m_mask = memory_mask if masked else None
    initial = random_states(slow.cell, rng)[0]  # an explicit initial cell state
    initial_state = (initial, np.zeros((B, slow.cell.attentional_size(DM))))
    ref_out, ref_w, ref_states = np_decode(slow.cell, x, initial_state, memory, m_mask,
                                           inputs_mask)
    results = _check_both_paths(slow, auto, x, memory, m_mask, inputs_mask, initial,
                                (ref_out, ref_w, ref_states))

    # The manual step loop (what decoding runs) agrees too.
    dc = slow.cell
    states = f32(initial_state)
    keys = dc.attention.project_keys(f32(memory))
    for t in range(T):
        out, new_states, weights = dc.step(f32(x[:, t]), states, f32(memory), m_mask,
                                           projected_keys=keys)
        assert_close(out, _np(results["step path"][0])[:, t], what=f"step {t}")
        assert_close(weights, _np(results["step path"][1])[:, t], what=f"weights {t}")
        if inputs_mask is not None:
            keep = inputs_mask[:, t][:, None]
            new_states = keras.tree.map_structure(lambda n, o: tf.where(keep, n, o),
                                                  new_states, states)
        states = new_states
    assert_close(states, ref_states, what="manual step loop final state")


@pytest.mark.parametrize("fast_path", ["never", "always"])
def test_attention_weights_are_a_distribution_over_unmasked_memory(fast_path):
    rng, x, memory, memory_mask = _data()
    memory_mask[1, :] = False
    memory_mask[1, 3] = True  # a single allowed position
    decoder = AttentionDecoder(
        make_cell("gru", "general", attention_layer_size=A_SIZE, input_feeding=False),
        fast_path=fast_path,
    )
    _, weights = decoder(f32(x * 3.0), f32(memory * 3.0), memory_mask=memory_mask,
                         return_attention_scores=True)
    weights = _np(weights)  # [B, T, S]
    assert weights.shape == (B, T, S)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[~np.broadcast_to(memory_mask[:, None, :], weights.shape)] == 0.0)
    assert np.all(weights >= 0.0)
    np.testing.assert_allclose(weights[1, :, 3], 1.0, atol=1e-6)
    # Unmasked positions really share the mass (the softmax is not degenerate).
    assert np.all(weights[0][:, memory_mask[0]] > 0.0)


def test_memory_mask_from_implicit_keras_mask():
    """A memory from `Embedding(mask_zero=True)` masks itself."""
    rng = np.random.default_rng(0)
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    embedding = keras.layers.Embedding(8, DM, mask_zero=True)
    memory = embedding(ids)
    decoder = AttentionDecoder(make_cell("gru", "additive", input_feeding=False))
    x = tf.constant(rng.normal(size=(2, 3, DIN)), tf.float32)
    _, implicit = decoder(x, memory, return_attention_scores=True)
    _, explicit = decoder(x, memory, memory_mask=ids != 0, return_attention_scores=True)
    _, unmasked = decoder(x, tf.identity(memory), return_attention_scores=True)  # no mask
    assert_close(implicit, _np(explicit))
    assert np.all(_np(implicit)[0, :, 3:] == 0.0)
    assert np.all(_np(unmasked)[0, :, 3:] > 0.0)


# ------------------------------------------------------------- initial states
@pytest.mark.parametrize("rnn", ["gru", "lstm", "stacked"])
def test_mean_memory_initial_state_matches_numpy(rnn):
    rng, x, memory, memory_mask = _data()
    dc = make_cell(rnn, "additive", initial_state="mean_memory", timing="bahdanau")
    dc.build((None, DIN), (None, S, DM))
    randomize(dc, rng)  # biases of the initializers too
    cell_states, attentional = dc.get_initial_state(f32(memory), memory_mask)
    mean = (memory * memory_mask[..., None]).sum(1) / memory_mask.sum(1, keepdims=True)
    flat = keras.tree.flatten(cell_states)
    assert len(flat) == len(dc.state_initializers) == {"gru": 1, "lstm": 2, "stacked": 3}[rnn]
    for state, dense in zip(flat, dc.state_initializers):
        expected = np.tanh(mean @ _np(dense.kernel) + _np(dense.bias))
        assert_close(state, expected, what=dense.name)
    assert_close(attentional, np.zeros((B, DM)))
    # No mask: the plain mean.
    no_mask = keras.tree.flatten(dc.get_initial_state(f32(memory))[0])[0]
    dense = dc.state_initializers[0]
    assert_close(no_mask, np.tanh(memory.mean(1) @ _np(dense.kernel) + _np(dense.bias)))

    # The decoder starts from it: equal to numpy from the same initial state.
    decoder = AttentionDecoder(dc)
    out = decoder(f32(x), f32(memory), memory_mask=memory_mask)
    initial = keras.tree.map_structure(_np, (cell_states, attentional))
    assert_close(out, np_decode(dc, x, initial, memory, memory_mask)[0])


def test_explicit_initial_cell_state_overrides_default():
    rng, x, memory, memory_mask = _data()
    dc = make_cell("lstm", "general", initial_state="mean_memory", input_feeding=True,
                   attention_layer_size=A_SIZE)
    dc.build((None, DIN), (None, S, DM))
    randomize(dc, rng)
    explicit = [rng.normal(size=(B, UNITS)), rng.normal(size=(B, UNITS))]
    cell_states, _ = dc.get_initial_state(f32(memory), memory_mask,
                                          initial_cell_state=f32(explicit))
    assert_close(cell_states, explicit)
    out = AttentionDecoder(dc)(f32(x), f32(memory), memory_mask=memory_mask,
                               initial_state=f32(explicit))
    expected = np_decode(dc, x, (explicit, np.zeros((B, A_SIZE))), memory, memory_mask)[0]
    assert_close(out, expected)
    zeros_cell = make_cell("gru", "general")
    zeros_cell.build((None, DIN), (None, S, DM))
    zero_states, zero_att = zeros_cell.get_initial_state(f32(memory))
    assert_close((zero_states, zero_att), ([np.zeros((B, UNITS))], np.zeros((B, DM))))


# ------------------------------------------------------------ StackedRNNCells
@pytest.mark.parametrize("timing,feed", [("bahdanau", False), ("luong", True), ("luong", False)])
def test_stacked_cells_match_numpy(timing, feed):
    """Query = the top cell's h (the LSTM's, size 6; the GRU below has 5)."""
    rng, x, memory, memory_mask = _data()
    dc = make_cell("stacked", "additive", timing=timing, input_feeding=feed,
                   attention_layer_size=A_SIZE)
    assert dc.query_size == 6
    decoder = AttentionDecoder(dc)
    decoder.build((None, T, DIN), (None, S, DM))
    randomize(decoder, rng)
    assert tuple(dc.attention.query_kernel.shape) == (6, ATT_UNITS)
    initial = random_states(dc, rng)
    out, weights, states = decoder(f32(x), f32(memory), memory_mask=memory_mask,
                                   initial_state=f32(initial[0]),
                                   return_attention_scores=True, return_state=True)
    ref_initial = (initial[0], np.zeros((B, A_SIZE)))
    ref_out, ref_w, ref_states = np_decode(dc, x, ref_initial, memory, memory_mask)
    assert_close((out, weights, states), (ref_out, ref_w, ref_states))


# ------------------------------------------- context gate (Xu et al. 2015, 4.2.1)
@pytest.mark.parametrize("output_attention", [True, False])
@pytest.mark.parametrize("size", [None, A_SIZE])
@pytest.mark.parametrize("timing,input_feeding,rnn,attention", [
    ("bahdanau", False, "gru", "additive"), ("luong", True, "lstm", "general"),
    ("luong", False, "gru", "general"),
])
def test_gated_step_matches_numpy(timing, input_feeding, rnn, attention, size, output_attention):
    rng, x, memory, memory_mask = _data()
    dc = make_cell(rnn, attention, attention_layer_size=size, timing=timing,
                   input_feeding=input_feeding, output_attention=output_attention,
                   context_gate=True)
    dc.build((None, DIN), (None, S, DM))
    assert tuple(dc.context_gate_layer.kernel.shape) == (UNITS, 1)  # f_beta: query --> beta
    randomize(dc, rng)  # the gate's bias too
    states = random_states(dc, rng)
    out, new_states, weights = dc.step(f32(x[:, 0]), f32(states), f32(memory), memory_mask)
    ref = np_step(dc, np_concat, x[:, 0], states, memory, memory_mask)
    assert_close((out, new_states, weights), ref, what="gated step")
    # The weights stay the unscaled distribution over the unmasked memory.
    np.testing.assert_allclose(_np(weights).sum(-1), 1.0, atol=1e-5)
    # beta is well inside (0, 1) here: a gate left out would not match.
    ungated = np_step(dc, np_concat, x[:, 0], states, memory, memory_mask, apply_gate=False)
    gap = max(np.abs(a - b).max() for a, b in zip(keras.tree.flatten(ref[:2]),
                                                  keras.tree.flatten(ungated[:2])))
    assert gap > 1e-2


@pytest.mark.parametrize("timing,input_feeding,rnn,attention", [
    ("bahdanau", False, "lstm", "additive"), ("luong", True, "gru", "general"),
    ("luong", False, "gru", "additive"), ("luong", False, "lstm", "general"),
])
def test_gated_sequence_paths_agree_with_numpy(timing, input_feeding, rnn, attention):
    rng, x, memory, memory_mask = _data()
    slow, auto = _decoder_pair(timing, input_feeding, rnn, attention, rng, context_gate=True)
    assert auto.uses_fast_path == (timing == "luong" and not input_feeding)
    inputs_mask = _target_mask()
    initial = random_states(slow.cell, rng)[0]
    ref_out, ref_w, ref_states = np_decode(slow.cell, x, (initial, np.zeros((B, A_SIZE))),
                                           memory, memory_mask, inputs_mask)
    _check_both_paths(slow, auto, x, memory, memory_mask, inputs_mask, initial,
                      (ref_out, ref_w, ref_states))


@pytest.mark.parametrize("timing,input_feeding,size", [
    ("bahdanau", False, A_SIZE), ("luong", True, A_SIZE), ("luong", False, A_SIZE),
    ("luong", True, None),
])
def test_closed_gate_removes_the_context(timing, input_feeding, size):
    """beta -> 0 (gate bias -1e4): the decoder is an ungated twin with the
    same weights whose context is zero (an all-zero memory); beta -> 1
    (bias +1e4): the ungated twin over the real memory."""
    rng, x, memory, memory_mask = _data()
    gated, plain = (
        AttentionDecoder(make_cell("gru", "additive", attention_layer_size=size, timing=timing,
                                   input_feeding=input_feeding, context_gate=gate))
        for gate in (True, False)
    )
    for decoder in (gated, plain):
        decoder.build((None, T, DIN), (None, S, DM))
    randomize(gated, rng)
    for name in ("cell", "attention", "attention_projection"):
        if getattr(plain.cell, name) is not None:
            getattr(plain.cell, name).set_weights(getattr(gated.cell, name).get_weights())

    def run(decoder, mem):  # --> (outputs [B, T, O], weights [B, T, S], final states)
        return keras.tree.map_structure(_np, decoder(
            f32(x), f32(mem), memory_mask=memory_mask, return_attention_scores=True,
            return_state=True))

    half_open = run(gated, memory)
    bias = gated.cell.context_gate_layer.bias
    bias.assign(np.full((1,), -1e4, "float32"))
    closed = run(gated, memory)
    # Weights differ (the twin attends over zeros); outputs and states do not.
    zero_context = run(plain, np.zeros_like(memory))
    assert_close((closed[0], closed[2]), (zero_context[0], zero_context[2]), what="closed gate")
    assert np.abs(closed[0] - half_open[0]).max() > 1e-2  # the gate did change the outputs
    bias.assign(np.full((1,), 1e4, "float32"))
    assert_close(run(gated, memory), run(plain, memory), what="open gate")


def test_context_gate_config_round_trip():
    rng, x, memory, memory_mask = _data()
    dc = make_cell("lstm", "additive", attention_layer_size=A_SIZE, timing="bahdanau",
                   context_gate=True)
    dc.build((None, DIN), (None, S, DM))
    randomize(dc, rng)
    config = dc.get_config()
    json.dumps(config)
    assert config["context_gate"] is True
    clone = AttentionDecoderCell.from_config(config)
    assert clone.context_gate is True and clone.get_config() == config
    clone.build((None, DIN), (None, S, DM))
    assert len(clone.weights) == len(dc.weights)
    clone.set_weights(dc.get_weights())
    states = f32(random_states(dc, rng))
    keras.tree.map_structure(
        np.testing.assert_array_equal,
        keras.tree.map_structure(_np, clone.step(f32(x[:, 0]), states, f32(memory), memory_mask)),
        keras.tree.map_structure(_np, dc.step(f32(x[:, 0]), states, f32(memory), memory_mask)),
    )
    # Through the decoder's config too.
    decoder = AttentionDecoder.from_config(AttentionDecoder(dc).get_config())
    assert decoder.cell.context_gate is True
    # Off by default; configs written before the option load ungated.
    assert make_cell().get_config()["context_gate"] is False
    legacy = {k: v for k, v in config.items() if k != "context_gate"}
    assert AttentionDecoderCell.from_config(legacy).context_gate is False


# --------------------------------------------------------------- serialization
def _sequence_inputs():
    _, x, memory, memory_mask = _data()
    return f32(x), f32(memory), memory_mask, _target_mask()


@pytest.mark.parametrize("timing,feed,rnn,att,init", [
    ("bahdanau", False, "lstm", "additive", "mean_memory"),
    ("luong", True, "gru", "general", "zeros"),
    ("luong", False, "stacked", "additive", "zeros"),
])
def test_config_round_trip(timing, feed, rnn, att, init):
    rng = np.random.default_rng(3)
    x, memory, memory_mask, inputs_mask = _sequence_inputs()
    dc = make_cell(rnn, att, attention_layer_size=A_SIZE, timing=timing, input_feeding=feed,
                   output_attention=False, initial_state=init)
    decoder = AttentionDecoder(dc, fast_path="never", name="dec")
    decoder.build((None, T, DIN), (None, S, DM))
    randomize(decoder, rng)

    # The cell alone.
    config = dc.get_config()
    json.dumps(config)
    original = copy.deepcopy(config)
    cell_clone = AttentionDecoderCell.from_config(config)
    assert config == original  # not consumed: it deserializes again
    AttentionDecoderCell.from_config(config)
    assert cell_clone.get_config() == config
    assert type(cell_clone.cell) is type(dc.cell) and type(cell_clone.attention) is type(
        dc.attention)
    cell_clone.build((None, DIN), (None, S, DM))
    cell_clone.set_weights(dc.get_weights())
    states = dc.get_initial_state(memory, memory_mask)
    assert_close(cell_clone.step(x[:, 0], states, memory, memory_mask),
                 keras.tree.map_structure(_np, dc.step(x[:, 0], states, memory, memory_mask)))

    # The decoder.
    config = decoder.get_config()
    json.dumps(config)
    original = copy.deepcopy(config)
    clone = AttentionDecoder.from_config(config)
    assert config == original
    assert clone.get_config() == config and clone.fast_path == "never"
    clone.build((None, T, DIN), (None, S, DM))
    clone.set_weights(decoder.get_weights())
    kwargs = dict(memory_mask=memory_mask, inputs_mask=inputs_mask,
                  return_attention_scores=True, return_state=True)
    assert_close(clone(x, memory, **kwargs),
                 keras.tree.map_structure(_np, decoder(x, memory, **kwargs)))


def _functional_model(timing, feed, fast_path, layer_norm=False, context_gate=False):
    xi = keras.Input((None, DIN), name="x")
    mi = keras.Input((None, DM), name="memory")
    mm = keras.Input((None,), dtype="bool", name="memory_mask")
    tm = keras.Input((None,), dtype="bool", name="inputs_mask")
    dc = make_cell("lstm", "additive", attention_layer_size=A_SIZE, timing=timing,
                   input_feeding=feed, initial_state="mean_memory",
                   attention_layer_norm=layer_norm, context_gate=context_gate)
    out, weights, (cell_states, attentional) = AttentionDecoder(dc, fast_path=fast_path)(
        xi, mi, memory_mask=mm, inputs_mask=tm, return_attention_scores=True, return_state=True
    )
    outputs = {"out": out, "weights": weights, "h": cell_states[0], "c": cell_states[1],
               "attentional": attentional}
    return keras.Model({"x": xi, "memory": mi, "memory_mask": mm, "inputs_mask": tm}, outputs)


@pytest.mark.parametrize("timing,feed,fast_path,layer_norm,gate", [
    ("bahdanau", False, "auto", True, False), ("luong", False, "auto", True, False),
    ("luong", False, "never", False, False),
    ("bahdanau", False, "auto", False, True), ("luong", False, "auto", True, True),
])
def test_saved_keras_and_savedmodel_reload(tmp_path, timing, feed, fast_path, layer_norm, gate):
    rng = np.random.default_rng(4)
    x, memory, memory_mask, inputs_mask = _sequence_inputs()
    model = _functional_model(timing, feed, fast_path, layer_norm, gate)
    randomize(model, rng)
    inputs = {"x": x, "memory": memory, "memory_mask": tf.constant(memory_mask),
              "inputs_mask": tf.constant(inputs_mask)}
    expected = keras.tree.map_structure(_np, model(inputs))
    # Independent check of the functional graph against numpy.
    (decoder,) = [layer for layer in model.layers if isinstance(layer, AttentionDecoder)]
    dc = decoder.cell
    initial = keras.tree.map_structure(_np, dc.get_initial_state(memory, memory_mask))
    ref_out, _, ref_states = np_decode(dc, _np(x), initial, _np(memory), memory_mask, inputs_mask)
    assert_close(expected["out"][inputs_mask], ref_out[inputs_mask])
    assert_close([expected["h"], expected["c"]], ref_states[0])

    path = str(tmp_path / "decoder.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # no custom_objects: registered classes
    (reloaded_decoder,) = [layer for layer in reloaded.layers
                           if isinstance(layer, AttentionDecoder)]
    assert reloaded_decoder.cell.context_gate is gate
    if gate:  # the gate's weights were loaded, not left at their initial values
        np.testing.assert_array_equal(_np(reloaded_decoder.cell.context_gate_layer.bias),
                                      _np(dc.context_gate_layer.bias))
    # Same weights, same graph, same machine: the very same numbers.
    keras.tree.map_structure(np.testing.assert_array_equal,
                             keras.tree.map_structure(_np, reloaded(inputs)), expected)
    # Weights alone into a fresh model (its projection, norm and initial
    # state layers are made when the graph builds it).
    weights_path = str(tmp_path / "decoder.weights.h5")
    model.save_weights(weights_path)
    fresh = _functional_model(timing, feed, fast_path, layer_norm, gate)
    assert len(fresh.weights) == len(model.weights)
    fresh.load_weights(weights_path)
    keras.tree.map_structure(np.testing.assert_array_equal,
                             keras.tree.map_structure(_np, fresh(inputs)), expected)

    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    loaded = tf.saved_model.load(export_dir)
    assert_close(loaded.serve(inputs), expected, what="SavedModel reload")
    # A different target length through the same exported signature.
    short = dict(inputs, x=x[:, :3], inputs_mask=tf.constant(inputs_mask[:, :3]))
    assert_close(loaded.serve(short),
                 keras.tree.map_structure(_np, model(short)), what="SavedModel, T=3")


@pytest.mark.parametrize("fast_path", ["never", "auto"])
def test_unknown_time_length_in_tf_function(fast_path):
    """Traced with a None time axis (exports, retracing for a new length)."""
    x, memory, memory_mask, inputs_mask = _sequence_inputs()
    decoder = AttentionDecoder(make_cell("gru", "additive", input_feeding=False,
                                         attention_layer_size=A_SIZE), fast_path=fast_path)
    fn = tf.function(
        lambda x, m, mm, tm: decoder(x, m, memory_mask=mm, inputs_mask=tm, return_state=True),
        input_signature=[tf.TensorSpec([None, None, DIN]), tf.TensorSpec([None, None, DM]),
                         tf.TensorSpec([None, None], tf.bool),
                         tf.TensorSpec([None, None], tf.bool)],
    )
    for steps in (T, 2):
        eager = decoder(x[:, :steps], memory, memory_mask=memory_mask,
                        inputs_mask=inputs_mask[:, :steps], return_state=True)
        traced = fn(x[:, :steps], memory, memory_mask, inputs_mask[:, :steps])
        assert_close(traced, keras.tree.map_structure(_np, eager))


# ------------------------------------------------------- keys projected once
@pytest.mark.parametrize("timing,feed", [("bahdanau", False), ("luong", True), ("luong", False)])
def test_keys_projected_once_per_call(monkeypatch, timing, feed):
    x, memory, memory_mask, _ = _sequence_inputs()
    dc = make_cell("gru", "additive", timing=timing, input_feeding=feed)
    decoder = AttentionDecoder(dc, fast_path="never")
    decoder.build((None, T, DIN), (None, S, DM))
    projections, steps = [], []
    project_keys, step = dc.attention.project_keys, dc.step

    def counting_project_keys(key):
        projections.append(1)
        return project_keys(key)

    def counting_step(*args, **kwargs):
        steps.append(1)
        return step(*args, **kwargs)

    monkeypatch.setattr(dc.attention, "project_keys", counting_project_keys)
    monkeypatch.setattr(dc, "step", counting_step)
    decoder(x, memory, memory_mask=memory_mask)  # eager: the scan body runs T times
    assert len(steps) == T  # so a projection inside the step would be counted T times
    assert len(projections) == 1
    decoder(x, memory, memory_mask=memory_mask)
    assert len(projections) == 2 and len(steps) == 2 * T
    # The fast path also projects once.
    if dc.supports_fast_path:
        AttentionDecoder(dc, fast_path="always")(x, memory, memory_mask=memory_mask)
        assert len(projections) == 3 and len(steps) == 2 * T


def test_step_without_projected_keys_projects_them(monkeypatch):
    """The counter of the test above does see a projection made inside a step."""
    x, memory, memory_mask, _ = _sequence_inputs()
    dc = make_cell("gru", "additive", input_feeding=False)
    dc.build((None, DIN), (None, S, DM))
    calls = []
    project_keys = dc.attention.project_keys
    monkeypatch.setattr(dc.attention, "project_keys",
                        lambda key: calls.append(1) or project_keys(key))
    states = dc.get_initial_state(memory)
    dc.step(x[:, 0], states, memory)
    assert len(calls) == 1
    dc.step(x[:, 0], states, memory, projected_keys=project_keys(memory))
    assert len(calls) == 1


# ---------------------------------------------------------------------- errors
def test_errors():
    gru, att = keras.layers.GRUCell(4), AdditiveAttention(3)
    with pytest.raises(ValueError, match="timing"):
        AttentionDecoderCell(gru, att, timing="bahdanu")
    with pytest.raises(ValueError, match="initial_state"):
        AttentionDecoderCell(gru, att, initial_state="random")
    with pytest.raises(ValueError, match="attention_layer_size"):
        AttentionDecoderCell(gru, att, attention_layer_size=0)
    with pytest.raises(ValueError, match="recurrent cell"):
        AttentionDecoderCell(keras.layers.Dense(4), att)
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="context_gate"):
            AttentionDecoderCell(gru, att, context_gate=bad)
    with pytest.raises(TypeError, match="layer"):
        AttentionDecoderCell({"class_name": "GRUCell"}, att)
    feeding = AttentionDecoderCell(gru, att, input_feeding=True)
    with pytest.raises(ValueError, match="fast_path='always'.*input_feeding=True"):
        AttentionDecoder(feeding, fast_path="always")
    with pytest.raises(ValueError, match="fast_path='always'.*timing='bahdanau'"):
        AttentionDecoder(AttentionDecoderCell(gru, att, timing="bahdanau", input_feeding=False),
                         fast_path="always")
    with pytest.raises(ValueError, match="fast_path"):
        AttentionDecoder(feeding, fast_path="sometimes")
    with pytest.raises(TypeError, match="AttentionDecoderCell"):
        AttentionDecoder(keras.layers.GRUCell(4))
    with pytest.raises(ValueError, match="memory"):
        AttentionDecoderCell(keras.layers.GRUCell(4), AdditiveAttention(3)).build(
            (None, 2), (None, 5))
    with pytest.raises(ValueError, match=r"\[batch, time, dim\]"):
        AttentionDecoder(AttentionDecoderCell(keras.layers.GRUCell(4), AdditiveAttention(3)))(
            np.zeros((2, 3), "float32"), np.zeros((2, 5, 6), "float32"))
