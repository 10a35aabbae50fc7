"""A repetition guard for any decoding method: no n-gram twice.

Weak models loop ("y jesús lloró jesús jesús lloró ..."). Blocking every
token that would complete an n-gram the output already holds (fairseq's
and Hugging Face's `no_repeat_ngram_size`) stops the loops at the source.
It wraps the step function, so greedy, sampling and beam search all get
it; the history lives in the decoding state, so beam search tiles and
reorders it with the beams. keras.ops only (stock ops in an export).
"""

from keras import ops

BLOCKED_LOGIT = -1e9


def block_repeated_ngrams(step_fn, ngram_size, max_length):
    """Wraps `step_fn` so no output repeats an n-gram of `ngram_size` tokens.

    The wrapped function's state is `(state, history [B, max_length + 1],
    steps [B])`: the tokens fed so far (the start token first) and how many.
    Start a search with `initial_guard_state(state, batch_size, max_length)`.

    Args:
        step_fn: `(tokens [B], state, constants) -> (logits [B, V], state,
            attention)`.
        ngram_size: int >= 1; 1 forbids any token twice.
        max_length: the search's `max_length` (an int, or a scalar tensor
            in a TensorFlow graph).

    Returns:
        The wrapped `step_fn(tokens, (state, history, steps), constants)`.

    Example:

    >>> import numpy as np
    >>> from keras_attention.decoding import greedy_search
    >>> def loop_fn(tokens, state, constants):  # always prefers 3, then 4
    ...     return ops.convert_to_tensor(np.log([[.01, .01, .02, .6, .36]] * 1)), state, None
    >>> guarded = block_repeated_ngrams(loop_fn, 1, 4)
    >>> result = greedy_search(guarded, initial_guard_state((), 1, 4), np.array([1]),
    ...                        end_token=2, max_length=4, constants=())
    >>> ops.convert_to_numpy(result.ids).tolist()
    [[3, 4, 2, 0]]
    """
    if int(ngram_size) < 1:
        raise ValueError(f"`ngram_size` must be at least 1, received {ngram_size}")
    n = int(ngram_size)

    def guarded_step(tokens, state, constants):
        inner_state, history, steps = state
        positions = ops.arange(ops.shape(history)[1], dtype="int32")  # --> [L]
        history = ops.where(positions[None, :] == steps[:, None],
                            ops.cast(tokens, "int32")[:, None], history)  # --> [B, L]
        steps = steps + 1
        logits, inner_state, attention = step_fn(tokens, inner_state, constants)
        banned = _banned_tokens(history, steps, n, ops.shape(logits)[-1])  # --> [B, V]
        logits = ops.where(banned, ops.cast(BLOCKED_LOGIT, logits.dtype), logits)
        return logits, (inner_state, history, steps), attention

    return guarded_step


def initial_guard_state(state, batch_size, max_length):
    """`(state, history, steps)` for the first step of a guarded search."""
    # The start token and every emitted token.
    history = ops.zeros((batch_size, max_length + 1), "int32")
    return state, history, ops.zeros((batch_size,), "int32")


def _banned_tokens(history, steps, n, vocab_size):
    """bool `[B, V]`: tokens that would complete an n-gram already in
    `history[:, 1:steps]` (the start token is no output word)."""
    batch = ops.shape(history)[0]
    windows = ops.shape(history)[1] - n + 1  # n-gram start positions j (maybe a tensor)
    if isinstance(windows, int) and windows <= 0:
        return ops.zeros((batch, vocab_size), "bool")
    starts = ops.arange(windows, dtype="int32")  # --> [W]
    # An earlier n-gram j..j+n-1 of emitted words, complete before the new token.
    match = ops.logical_and(starts[None, :] >= 1,
                            starts[None, :] + n <= steps[:, None])  # --> [B, W]
    match = ops.logical_and(match, (steps >= n)[:, None])
    for k in range(n - 1):
        # The new n-gram's k-th token: history[steps - n + 1 + k].
        index = ops.maximum(steps - n + 1 + k, 0)[:, None]
        current = ops.take_along_axis(history, index, axis=1)  # --> [B, 1]
        match = ops.logical_and(match, history[:, k:k + windows] == current)
    following = history[:, n - 1:n - 1 + windows]  # --> [B, W] the token each match bans
    rows = ops.broadcast_to(ops.arange(batch, dtype="int32")[:, None], ops.shape(following))
    indices = ops.stack([ops.reshape(rows, (-1,)), ops.reshape(following, (-1,))], axis=1)
    counts = ops.scatter(indices, ops.reshape(ops.cast(match, "int32"), (-1,)),
                         (batch, vocab_size))  # --> [B, V]
    return counts > 0
