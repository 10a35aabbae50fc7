"""What every decoding method returns."""

from typing import Any, NamedTuple


class DecodingResult(NamedTuple):
    """Output of a decoding method (a NamedTuple, so it nests in graphs).

    Shapes for a batch of B inputs, a maximum length T and a memory of S
    positions; beam search with `num_hypotheses=N` adds an axis N after B.

    Attributes:
        ids: int32 `[B, T]` (`[B, N, T]`): the tokens, the end token after the
            last one when the sequence ended, then `pad_token`.
        lengths: int32 `[B]` (`[B, N]`): tokens before the end token.
        log_probs: float32 `[B]` (`[B, N]`): summed log-probabilities of the
            tokens, the end token included.
        scores: float32 `[B]` (`[B, N]`): what the method ranked by (equal
            to `log_probs` for greedy search and sampling; length and
            coverage penalties applied for beam search).
        attention: float32 `[B, T, S]` (`[B, N, T, S]`) attention weights of
            each emitted token (zeros after the end), or None when the step
            function returns None.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from keras_attention.decoding import greedy_search
    >>> def step_fn(tokens, state):   # B=2, V=3 (2 ends), S=4: next token is tokens + 1
    ...     return ops.one_hot((tokens + 1) % 3, 3) * 5.0, state, ops.full((2, 4), 0.25)
    >>> result = greedy_search(step_fn, (), np.array([0, 1]), end_token=2, max_length=3)
    >>> result._fields
    ('ids', 'lengths', 'log_probs', 'scores', 'attention')
    >>> ops.convert_to_numpy(result.ids).tolist(), ops.convert_to_numpy(result.lengths).tolist()
    ([[1, 2, 0], [2, 0, 0]], [1, 0])
    >>> tuple(result.log_probs.shape), tuple(result.attention.shape)   # [B], [B, T, S]
    ((2,), (2, 3, 4))
    """

    ids: Any
    lengths: Any
    log_probs: Any
    scores: Any
    attention: Any
