"""A small, public-API-only layer harness (Keras' `run_layer_test` is private).

`check_layer(layer_factory, args, kwargs, ...)` exercises one layer the ways a
user would, and asserts that they agree:

1. `get_config` / `from_config` round trip: the clone's config is equal, is
   JSON-serializable, and after copying the weights the clone's outputs are
   equal.
2. Eager call, `tf.function` call and a functional `keras.Model` built on
   `keras.Input`s give equal outputs (optionally also with `tuple_kwargs`,
   e.g. `return_attention_scores=True`, under which every mode must return a
   tuple of `tuple_length`).
3. `compute_output_shape` matches the eager output, the symbolic output of
   the functional call has the same shape with a `None` batch, and the
   outputs have the layer's compute dtype.
4. One `fit` step runs, has a finite loss, and changes every trainable weight.

Inputs are given as numpy arrays: `args` are passed positionally, `kwargs`
(a dict of arrays, e.g. masks or states) by keyword; `call_kwargs` are static
Python values (flags) passed to every call. Arrays may be nested (lists of
states), so the helper also suits a recurrent decoder cell
`cell(inputs, states)` returning `(output, new_states)`.
"""

import inspect
import json

import keras
import numpy as np
import tensorflow as tf


def _flatten(structure):
    return keras.tree.flatten(structure)


def _pack(structure, flat):
    return keras.tree.pack_sequence_as(structure, list(flat))


def _to_numpy(structure):
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), structure)


def assert_structures_close(actual, expected, atol=1e-6, rtol=1e-6, what=""):
    """Same nesting (tuples and lists are interchangeable) and close leaves."""
    flat_actual = _flatten(actual)
    flat_expected = _flatten(expected)
    assert len(flat_actual) == len(flat_expected), (
        f"{what}: {len(flat_actual)} outputs, expected {len(flat_expected)}"
    )
    for i, (a, e) in enumerate(zip(flat_actual, flat_expected)):
        a = np.asarray(keras.ops.convert_to_numpy(a), np.float64)
        e = np.asarray(keras.ops.convert_to_numpy(e), np.float64)
        assert a.shape == e.shape, f"{what}: output {i} shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=f"{what}: output {i}")


class _Caller:
    """Calls a layer on a flat list of tensors rebuilt into (args, kwargs)."""

    def __init__(self, args, kwargs, call_kwargs):
        self.structure = (tuple(args), dict(kwargs))
        self.flat_arrays = [np.asarray(a) for a in _flatten(self.structure)]
        self.call_kwargs = dict(call_kwargs)

    def __call__(self, layer, flat_tensors, **extra):
        args, kwargs = _pack(self.structure, flat_tensors)
        return layer(*args, **kwargs, **self.call_kwargs, **extra)

    def eager(self, layer, **extra):
        return self(layer, [tf.convert_to_tensor(a) for a in self.flat_arrays], **extra)

    def traced(self, layer, **extra):
        fn = tf.function(lambda *flat: self(layer, flat, **extra))
        return fn(*[tf.convert_to_tensor(a) for a in self.flat_arrays])

    def symbolic_inputs(self):
        return [
            keras.Input(shape=a.shape[1:], dtype=a.dtype.name, name=f"harness_input_{i}")
            for i, a in enumerate(self.flat_arrays)
        ]

    def functional(self, layer, **extra):
        inputs = self.symbolic_inputs()
        symbolic = self(layer, inputs, **extra)
        model = keras.Model(inputs, symbolic)
        return model, symbolic


def _is_tuple_output(out, length):
    return isinstance(out, tuple) and len(out) == length


def _shape_args(layer, caller):
    """Shapes for `compute_output_shape`: positional args, then `<kwarg>_shape` it accepts."""
    args, kwargs = caller.structure
    shape_of = lambda a: tuple(np.shape(a))  # noqa: E731
    positional = [keras.tree.map_structure(shape_of, a) if isinstance(a, (list, tuple))
                  else shape_of(a) for a in args]
    params = inspect.signature(layer.compute_output_shape).parameters
    keyword = {
        f"{name}_shape": shape_of(value)
        for name, value in kwargs.items()
        if f"{name}_shape" in params
    }
    return positional, keyword


def _shapes(out):
    if isinstance(out, (tuple, list)):
        return [_shapes(o) for o in out]
    return tuple(out.shape)


def _normalize_shapes(shape):
    if isinstance(shape, (tuple, list)) and shape and isinstance(shape[0], (tuple, list)):
        return [_normalize_shapes(s) for s in shape]
    return tuple(shape)


def check_layer(
    layer_factory,
    args,
    kwargs=None,
    call_kwargs=None,
    tuple_kwargs=None,
    tuple_length=2,
    fit_output_index=0,
    expect_trainable_weights=True,
    learning_rate=0.5,
    atol=1e-6,
    rtol=1e-6,
):
    """Run the harness checks; returns `{"layer", "eager", "eager_tuple"}`.

    Args:
        layer_factory: `() -> layer`, a fresh unbuilt layer.
        args: Tuple of numpy arrays passed positionally (batch first).
        kwargs: Dict of numpy arrays (or nests of them) passed by keyword.
        call_kwargs: Static keyword arguments of every call.
        tuple_kwargs: Extra static keyword arguments under which the layer
            must return a tuple of `tuple_length` (None: not checked).
        fit_output_index: Which flat output the `fit` step's loss uses.
        expect_trainable_weights: Whether the layer must have trainable
            weights (and `fit` must change each of them).
        learning_rate: SGD learning rate of the `fit` step.
        atol, rtol: Tolerance between the call modes.
    """
    caller = _Caller(args, kwargs or {}, call_kwargs or {})
    layer = layer_factory()
    name = type(layer).__name__

    # --- eager, tf.function, functional -----------------------------------
    eager = caller.eager(layer)
    traced = caller.traced(layer)
    assert_structures_close(traced, eager, atol, rtol, f"{name}: tf.function vs eager")
    model, symbolic = caller.functional(layer)
    functional = model([tf.convert_to_tensor(a) for a in caller.flat_arrays])
    assert_structures_close(functional, eager, atol, rtol, f"{name}: functional vs eager")

    # --- shapes and dtypes --------------------------------------------------
    positional, keyword = _shape_args(layer, caller)
    expected_shape = _normalize_shapes(layer.compute_output_shape(*positional, **keyword))
    assert _shapes(eager) == expected_shape, (
        f"{name}: compute_output_shape {expected_shape} != eager output shape {_shapes(eager)}"
    )
    for sym, real in zip(_flatten(symbolic), _flatten(eager)):
        assert tuple(sym.shape) == (None,) + tuple(real.shape)[1:], (
            f"{name}: symbolic shape {sym.shape} vs eager {real.shape}"
        )
        assert keras.backend.standardize_dtype(sym.dtype) == keras.backend.standardize_dtype(
            real.dtype
        ), f"{name}: symbolic dtype {sym.dtype} vs eager {real.dtype}"
    for out in _flatten(eager):
        if keras.backend.is_float_dtype(out.dtype):
            assert keras.backend.standardize_dtype(out.dtype) == layer.compute_dtype

    # --- tuple outputs (e.g. return_attention_scores=True) ------------------
    eager_tuple = None
    if tuple_kwargs is not None:
        eager_tuple = caller.eager(layer, **tuple_kwargs)
        traced_tuple = caller.traced(layer, **tuple_kwargs)
        # A second layer with the same weights: Keras 3.15's `Function` checks a
        # graph with the output count of a layer's *first* call, so calling one
        # layer symbolically with 1 and then 2 outputs fails ("Output with path
        # `1` is not connected to `inputs`"), a Keras limitation.
        tuple_layer = layer_factory()
        caller.eager(tuple_layer)
        tuple_layer.set_weights(layer.get_weights())
        tuple_model, symbolic_tuple = caller.functional(tuple_layer, **tuple_kwargs)
        functional_tuple = tuple_model([tf.convert_to_tensor(a) for a in caller.flat_arrays])
        for mode, out in (("eager", eager_tuple), ("tf.function", traced_tuple),
                          ("functional (symbolic)", symbolic_tuple)):
            assert _is_tuple_output(out, tuple_length), (
                f"{name}: {mode} call with {tuple_kwargs} returned {type(out).__name__} "
                f"of length {len(out) if isinstance(out, (tuple, list)) else 1}, "
                f"expected a {tuple_length}-tuple"
            )
        assert isinstance(functional_tuple, (tuple, list)) and len(functional_tuple) == (
            tuple_length
        ), f"{name}: functional model returned {type(functional_tuple).__name__}"
        assert_structures_close(traced_tuple, eager_tuple, atol, rtol,
                                f"{name}: tf.function vs eager {tuple_kwargs}")
        assert_structures_close(functional_tuple, eager_tuple, atol, rtol,
                                f"{name}: functional vs eager {tuple_kwargs}")
        # The first output does not depend on asking for the others.
        assert_structures_close(_flatten(eager_tuple)[0], _flatten(eager)[0], atol, rtol,
                                f"{name}: first output with vs without {tuple_kwargs}")

    # --- config round trip ------------------------------------------------
    config = layer.get_config()
    json.dumps(config)  # must be JSON-serializable
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, f"{name}: from_config(get_config()) changed the config"
    caller.eager(clone)  # build
    weights = layer.get_weights()
    assert len(clone.get_weights()) == len(weights)
    clone.set_weights(weights)
    assert_structures_close(caller.eager(clone), eager, atol, rtol, f"{name}: clone vs original")

    # --- one fit step (on a copy: `layer` keeps the weights of `eager`) -----
    fit_layer = layer_factory()
    caller.eager(fit_layer)
    fit_layer.set_weights(weights)
    trainable = list(fit_layer.trainable_weights)
    if expect_trainable_weights:
        assert trainable, f"{name} has no trainable weights"
    else:
        assert not trainable, f"{name} has unexpected trainable weights {trainable}"
    if trainable:
        fit_inputs = caller.symbolic_inputs()
        fit_output = _flatten(caller(fit_layer, fit_inputs))[fit_output_index]
        fit_model = keras.Model(fit_inputs, fit_output)
        fit_model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
        before = [np.array(keras.ops.convert_to_numpy(w)) for w in trainable]
        target = np.random.default_rng(0).normal(size=tuple(fit_output.shape[1:]))
        batch = caller.flat_arrays[0].shape[0]
        targets = np.broadcast_to(target, (batch,) + target.shape).astype("float32")
        history = fit_model.fit(
            caller.flat_arrays, targets, batch_size=batch, epochs=1, verbose=0, shuffle=False
        )
        loss = history.history["loss"]
        assert len(loss) == 1 and np.isfinite(loss[0]), f"{name}: fit loss {loss}"
        for w, old in zip(trainable, before):
            new = keras.ops.convert_to_numpy(w)
            assert np.all(np.isfinite(new)), f"{name}: {w.path} not finite after fit"
            assert np.any(new != old), f"{name}: fit step did not change {w.path}"

    return {"layer": layer, "eager": _to_numpy(eager), "eager_tuple": _to_numpy(eager_tuple)}
