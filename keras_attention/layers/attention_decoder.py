"""Runs an AttentionDecoderCell over a whole target sequence (teacher forcing)."""

import keras
from keras import ops

from keras_attention.layers.attention_decoder_cell import AttentionDecoderCell, _state_structure

FAST_PATH_MODES = ("auto", "always", "never")


@keras.saving.register_keras_serializable(package="keras_attention")
class AttentionDecoder(keras.layers.Layer):
    """Teacher-forced decoder over a memory, with an optional fast path.

    The cell path runs `cell.step` at every target position inside a
    symbolic loop (`keras.ops.scan`), the memory projected once. The fast
    path, valid when the cell input is the target alone (Luong timing
    without input feeding), runs the wrapped RNN over the whole target
    first and then attends from all steps in one batched call. Both give
    the same numbers; the fast path is much faster to train.

    Args:
        cell: An `AttentionDecoderCell`.
        fast_path: `"auto"` (use it when valid), `"always"` (raise when not
            valid) or `"never"`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: `[B, T, Din]` decoder inputs (embedded shifted targets).
        memory: `[B, S, Dm]` encoder annotations.
        memory_mask: Optional boolean `[B, S]`; filled in from the
            memory's implicit Keras mask when not given.
        inputs_mask: Optional boolean `[B, T]` target padding mask: states
            are carried unchanged over padded positions.
        initial_state: Optional cell state structure, else the cell's
            `get_initial_state(memory, memory_mask)`.
        return_attention_scores: Also return weights `[B, T, S]`.
        return_state: Also return the final `(cell_states, attentional)`.
        training: Whether dropout is active.

    Returns:
        outputs `[B, T, O]`; then weights `[B, T, S]` if asked; then the
        final state if asked (a tuple when more than one is returned).

    Example:

    >>> import keras, numpy as np
    >>> from keras_attention import AttentionDecoderCell, DotAttention
    >>> cell = AttentionDecoderCell(keras.layers.GRUCell(16),
    ...     DotAttention("general"), attention_layer_size=16, input_feeding=False)
    >>> decoder = AttentionDecoder(cell)
    >>> targets = np.random.rand(2, 5, 8).astype("float32")   # [B, T, Din]
    >>> memory = np.random.rand(2, 7, 12).astype("float32")   # [B, S, Dm]
    >>> outputs, weights = decoder(targets, memory, return_attention_scores=True)
    >>> tuple(outputs.shape), tuple(weights.shape)
    ((2, 5, 16), (2, 5, 7))
    """

    def __init__(self, cell, fast_path="auto", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cell, AttentionDecoderCell):
            raise TypeError(f"`cell` must be an AttentionDecoderCell, received {type(cell).__name__}")
        if fast_path not in FAST_PATH_MODES:
            raise ValueError(f"`fast_path` must be one of {FAST_PATH_MODES}, received {fast_path!r}")
        if fast_path == "always" and not cell.supports_fast_path:
            raise ValueError(
                "fast_path='always' needs timing='luong' and input_feeding=False; received "
                f"timing={cell.timing!r}, input_feeding={cell.input_feeding}"
            )
        self.cell = cell
        self.fast_path = fast_path
        self.supports_masking = True

    @property
    def uses_fast_path(self):
        return self.fast_path != "never" and self.cell.supports_fast_path

    def build(self, inputs_shape, memory_shape, initial_state_shape=None):
        if len(inputs_shape) != 3:
            raise ValueError(
                f"AttentionDecoder: `inputs` must be [batch, time, dim], received shape "
                f"{tuple(inputs_shape)}"
            )
        self.cell.build((inputs_shape[0], inputs_shape[-1]), memory_shape)
        self.built = True

    def call(
        self,
        inputs,
        memory,
        memory_mask=None,
        inputs_mask=None,
        initial_state=None,
        return_attention_scores=False,
        return_state=False,
        training=None,
    ):
        cell = self.cell
        states = cell.get_initial_state(memory, memory_mask, initial_cell_state=initial_state)
        projected_keys = cell.attention.project_keys(memory)  # once per memory
        if self.uses_fast_path:
            outputs, weights, states = self._run_fast(
                inputs, memory, memory_mask, inputs_mask, states, projected_keys, training
            )
        else:
            outputs, weights, states = self._run_steps(
                inputs, memory, memory_mask, inputs_mask, states, projected_keys, training
            )
        results = [outputs]
        if return_attention_scores:
            results.append(weights)
        if return_state:
            results.append(states)
        return results[0] if len(results) == 1 else tuple(results)

    def _run_steps(self, inputs, memory, memory_mask, inputs_mask, states, projected_keys, training):
        steps = _time_major_steps(inputs, inputs_mask, self.cell.compute_dtype)

        # Keras' TensorFlow scan needs its per-step outputs to mirror the
        # carry, so the outputs ride in the carry and are stacked from it.
        def body(carry, x):
            states, _, _ = carry
            x_t, mask_t = _split_step(x)
            out, new_states, weights = self.cell.step(
                x_t, states, memory, memory_mask, projected_keys=projected_keys, training=training
            )
            new_states = _keep_where(mask_t, new_states, states)
            new_carry = (new_states, out, ops.cast(weights, out.dtype))
            return new_carry, new_carry

        batch_size, memory_length = ops.shape(memory)[0], ops.shape(memory)[1]
        dtype = self.cell.compute_dtype
        init = (
            states,
            ops.zeros((batch_size, self.cell.output_size(memory.shape[-1])), dtype=dtype),
            ops.zeros((batch_size, memory_length), dtype=dtype),
        )
        (states, _, _), (_, outputs, weights) = ops.scan(body, init, steps)
        outputs = ops.swapaxes(outputs, 0, 1)  # --> [B, T, O]
        weights = ops.swapaxes(weights, 0, 1)  # --> [B, T, S]
        return outputs, weights, states

    def _run_fast(self, inputs, memory, memory_mask, inputs_mask, states, projected_keys, training):
        cell = self.cell
        cell_states, initial_attentional = states
        steps = _time_major_steps(inputs, inputs_mask, cell.compute_dtype)

        def body(carry, x):
            states, _ = carry
            x_t, mask_t = _split_step(x)
            h, new_states = cell.cell(x_t, states, training=training)
            new_carry = (_keep_where(mask_t, new_states, states), h)
            return new_carry, new_carry

        batch_size = ops.shape(memory)[0]
        init = (cell_states, ops.zeros((batch_size, cell.query_size), dtype=cell.compute_dtype))
        (cell_states, _), (_, cell_outputs) = ops.scan(body, init, steps)
        cell_outputs = ops.swapaxes(cell_outputs, 0, 1)  # --> [B, T, H]
        context, weights = cell.attention(  # all steps in one call
            cell_outputs, memory, value_mask=memory_mask, projected_keys=projected_keys,
            return_attention_scores=True, training=training,
        )  # --> [B, T, Dm], [B, T, S]
        context = cell.gate_context(context, cell_outputs)  # beta [B, T, 1]: every step at once
        attentional = cell.attentional_state(context, cell_outputs)  # --> [B, T, A]
        outputs = attentional if cell.output_attention else cell_outputs
        final_attentional = attentional[:, -1]
        if inputs_mask is not None:
            # As the step path: the state of the last unpadded step (the
            # initial one when a row has none), not that of the last step.
            mask = ops.cast(inputs_mask, "bool")  # --> [B, T]
            positions = ops.arange(ops.shape(mask)[1], dtype="int32")
            last = ops.max(ops.where(mask, positions[None, :], -1), axis=1)  # --> [B]
            picked = ops.take_along_axis(
                attentional, ops.maximum(last, 0)[:, None, None], axis=1
            )[:, 0]
            final_attentional = ops.where(
                (last >= 0)[:, None], picked, ops.cast(initial_attentional, picked.dtype)
            )
        return outputs, weights, (cell_states, final_attentional)

    def compute_output_spec(
        self, inputs, memory, memory_mask=None, inputs_mask=None, initial_state=None,
        return_attention_scores=False, return_state=False, training=None,
    ):
        return _symbolic_outputs(self, inputs, memory, return_attention_scores, return_state)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "fast_path": self.fast_path,
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


def _symbolic_outputs(layer, inputs, memory, return_attention_scores, return_state):
    cell = layer.cell
    batch, steps = inputs.shape[0], inputs.shape[1]
    memory_size, dim = memory.shape[1], memory.shape[-1]
    attentional_size = cell.attentional_size(dim)
    out_size = cell.output_size(dim)
    results = [keras.KerasTensor((batch, steps, out_size), dtype=layer.compute_dtype)]
    if return_attention_scores:
        results.append(keras.KerasTensor((batch, steps, memory_size), dtype=layer.compute_dtype))
    if return_state:
        cell_states = keras.tree.map_structure(
            lambda size: keras.KerasTensor((batch, size), dtype=layer.compute_dtype),
            _state_structure(cell.cell),
        )
        results.append(
            (cell_states, keras.KerasTensor((batch, attentional_size), dtype=layer.compute_dtype))
        )
    return results[0] if len(results) == 1 else tuple(results)


def _time_major_steps(inputs, inputs_mask, dtype):
    """`[T, B, Din + 1]`: the inputs time-major, the step mask as a last channel.

    One scanned tensor, not two: Keras' TensorFlow `scan` fails
    (`'NoneType' object has no attribute 'assert_is_compatible_with'`) on
    several `xs` whose time length is unknown when traced, as in an export
    or a `tf.function` retraced for another target length.
    """
    inputs = ops.cast(inputs, dtype)
    if inputs_mask is None:
        mask = ops.ones_like(inputs[..., :1])
    else:
        mask = ops.expand_dims(ops.cast(ops.cast(inputs_mask, "bool"), dtype), -1)
    return ops.swapaxes(ops.concatenate([inputs, mask], axis=-1), 0, 1)


def _split_step(x):
    """`[B, Din + 1] -> (inputs [B, Din], step mask [B] bool)`."""
    return x[:, :-1], x[:, -1] > 0.5


def _keep_where(step_mask, new_states, old_states):
    """Carry old states over padded target positions. step_mask: [B]."""
    keep = ops.expand_dims(step_mask, -1)
    return keras.tree.map_structure(lambda new, old: ops.where(keep, new, old), new_states, old_states)
