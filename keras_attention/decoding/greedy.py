"""Greedy search: the most likely token at every step."""

from keras import ops

from keras_attention.decoding.single_path import single_path_search


def greedy_search(
    step_fn, initial_state, start_tokens, end_token, max_length, pad_token=0, constants=None
):
    """Decodes by taking the arg-max token at each step.

    Args:
        step_fn: `(tokens [B], state) -> (logits [B, V], state, attention
            [B, S] or None)`; with `constants`, called as
            `step_fn(tokens, state, constants)`. Pure: no Python side
            effects, it runs inside a symbolic loop.
        initial_state: Nested structure of `[B, ...]` tensors.
        start_tokens: int `[B]`, the first input tokens.
        end_token: int, the token that ends a sequence.
        max_length: int (or scalar tensor), the most tokens emitted, end
            token included.
        pad_token: int written after the end token.
        constants: Optional nested `[B, ...]` tensors passed unchanged to
            every step (for example the memory and its projected keys).

    Returns:
        A `DecodingResult` with ids `[B, T]`, lengths `[B]`, log_probs
        `[B]`, scores `[B]` (= log_probs), attention `[B, T, S]` or None.

    Example:

    >>> import numpy as np
    >>> table = np.log(np.array([[0.1, 0.6, 0.3], [0.2, 0.1, 0.7], [0.9, 0.05, 0.05]]))
    >>> def step_fn(tokens, state):   # next-token logits depend on the last token
    ...     return ops.take(table, tokens, axis=0), state, None
    >>> result = greedy_search(step_fn, (), np.array([0]), end_token=2, max_length=5)
    >>> ops.convert_to_numpy(result.ids).tolist(), int(result.lengths[0])
    ([[1, 2, 0, 0, 0]], 1)
    """
    return single_path_search(
        step_fn, initial_state, start_tokens, end_token, max_length,
        choose_token=lambda log_probs, step: ops.argmax(log_probs, axis=-1),
        pad_token=pad_token, constants=constants,
    )
