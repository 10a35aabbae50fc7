"""Several greedy decoding steps in one TensorFlow call, over an export's
`decode_step`: what the server's continuous batching runs while every row
in its batch decodes greedily and none is streamed.

Each `decode_step` call from Python costs a signature call (about 1.5 ms
on 2 CPU cores for the main translator) on top of its arithmetic; inside
one graph the steps cost their arithmetic alone (12 rows: 1.9 ms a step
against 3.4 ms). Requests then join and leave the batch every few steps
instead of every step.

Each step chooses as `GreedyRows.advance` does (the first highest
log-probability; the pad token once a row has ended), so stepping through
the returned ids with `GreedyRows.advance_chosen` gives the same search.
"""


class GreedySteps:
    """Runs `steps` greedy steps of `decode_step` inside one `tf.function`.

    Args:
        step_function: `decode_step(tokens=..., **state_and_constants)` ->
            dict with `log_probs [B, V]`, `attention [B, S]` and the new state.
        input_specs: name -> `tf.TensorSpec` of the state and constants
            (`step_signatures.decode_step.inputs` of the export's metadata).
        state_names: The names among them that each step returns anew.
        end_token, pad_token: int ids.

    Calling it with `tokens [B]` (int32), `finished [B]` (bool), `inputs`
    (name -> tensor, the state and constants) and `steps` (int) returns
    `(ids [B, steps], log_probs [B, steps], attention [B, steps, S], state)`:
    the chosen ids and their log-probabilities and attention rows as numpy,
    the state after the last step as tensors.

    Example (a step whose best next token is the previous one + 1; V = 4,
    the end token 3; for an export: `GreedySteps.of_model(model)`):

    >>> import tensorflow as tf
    >>> def step(tokens, count):
    ...     log_probs = tf.math.log(tf.one_hot(tokens + 1, 4) * 0.9 + 0.025)
    ...     return {"log_probs": log_probs, "attention": tf.ones([tf.size(tokens), 1]),
    ...             "count": count + 1}
    >>> steps = GreedySteps(step, {"count": tf.TensorSpec([None], tf.int32)}, ["count"],
    ...                     end_token=3, pad_token=0)
    >>> ids, log_probs, attention, state = steps(
    ...     [1, 2], [False, False], {"count": tf.zeros([2], tf.int32)}, 3)
    >>> ids.tolist(), attention.shape, state["count"].numpy().tolist()
    ([[2, 3, 0], [3, 0, 0]], (2, 3, 1), [3, 3])
    """

    def __init__(self, step_function, input_specs, state_names, end_token, pad_token):
        import tensorflow as tf

        self.step_function, self.state_names = step_function, tuple(state_names)
        self.end_token, self.pad_token = int(end_token), int(pad_token)
        self._function = tf.function(
            self._run, autograph=False,
            input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.bool),
                             dict(input_specs), tf.TensorSpec([], tf.int32)])

    @classmethod
    def of_model(cls, model, step_name="decode_step"):
        """The `GreedySteps` of an `ExportedModel`'s step-level signatures."""
        import tensorflow as tf

        step = model.metadata["step_signatures"][step_name]
        specs = {name: tf.TensorSpec([None if size == -1 else size for size in spec["shape"]],
                                     tf.as_dtype(spec["dtype"]))
                 for name, spec in step["inputs"].items() if name != "tokens"}
        return cls(model.function(step_name), specs, step["state"], step["end_token"],
                   step["pad_token"])

    def __call__(self, tokens, finished, inputs, steps):
        import tensorflow as tf

        ids, log_probs, attention, state = self._function(
            tf.constant(tokens, tf.int32), tf.constant(finished, tf.bool), inputs,
            tf.constant(steps, tf.int32))
        return ids.numpy(), log_probs.numpy(), attention.numpy(), state

    def _run(self, tokens, finished, inputs, steps):
        import tensorflow as tf

        constants = {name: value for name, value in inputs.items()
                     if name not in self.state_names}
        state = {name: inputs[name] for name in self.state_names}
        arrays = [tf.TensorArray(dtype, size=steps, element_shape=shape)
                  for dtype, shape in ((tf.int32, [None]), (tf.float32, [None]),
                                       (tf.float32, [None, None]))]

        def body(step, tokens, finished, state, ids, log_probs, attention):
            out = self.step_function(tokens=tokens, **state, **constants)
            best = tf.argmax(out["log_probs"], axis=-1, output_type=tf.int32)  # the first max
            best_log_prob = tf.gather(out["log_probs"], best, batch_dims=1)
            chosen = tf.where(finished, tf.constant(self.pad_token, tf.int32), best)
            finished = finished | (chosen == self.end_token)
            return (step + 1, chosen, finished, {name: out[name] for name in self.state_names},
                    ids.write(step, chosen), log_probs.write(step, best_log_prob),
                    attention.write(step, tf.cast(out["attention"], tf.float32)))

        _, _, _, state, ids, log_probs, attention = tf.while_loop(
            lambda step, *_: step < steps, body,
            (tf.constant(0), tokens, finished, state, *arrays))
        return (tf.transpose(ids.stack()), tf.transpose(log_probs.stack()),
                tf.transpose(attention.stack(), [1, 0, 2]), state)

