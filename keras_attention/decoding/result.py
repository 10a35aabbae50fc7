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
    """

    ids: Any
    lengths: Any
    log_probs: Any
    scores: Any
    attention: Any
