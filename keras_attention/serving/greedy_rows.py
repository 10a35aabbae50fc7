"""Greedy search over an export's `decode_step`, one step at a time, in
numpy: the bookkeeping a server keeps for one request's rows while they
share decoding steps with other requests (`continuous_batching`).

It is `keras_attention.decoding.greedy_search` taken apart at the step,
with the same float32 arithmetic, so the answer equals the export's
whole-sequence greedy signature on the request alone.
"""

import numpy as np

from keras_attention.serving.step_search import StepSearch


class GreedyRows(StepSearch):
    """The greedy search of `B` rows, advanced by the caller's model steps.

    Args:
        max_length: int, the most steps (the request's longest row limit).
        start_token, end_token, pad_token: int ids (`step_signatures`).
        rows: int B.

    Shapes: `log_probs [B, V]` and `attention [B, S]` per step; `ids
    [B, T]`, `lengths [B]`, `scores [B]` and `attention [B, T, S]` at the
    end (T steps run, the end token written, not counted in `lengths`).

    Example (V = 3, the end token is 2; row 0 ends at once, row 1 after one word):

    >>> search = GreedyRows(max_length=4, start_token=1, end_token=2, pad_token=0, rows=2)
    >>> search.tokens().tolist()
    [1, 1]
    >>> lp = np.log(np.array([[.1, .2, .7], [.6, .3, .1]], "float32"))
    >>> search.advance(lp, np.ones((2, 1), "float32")) is None   # no reordering
    True
    >>> search.advance(lp[::-1], np.ones((2, 1), "float32"))
    >>> search.done, search.ids().tolist(), search.result_lengths().tolist()
    (True, [[2, 0], [0, 2]], [0, 1])
    """

    hypotheses = 1

    def __init__(self, max_length, start_token, end_token, pad_token, rows):
        super().__init__(max_length, start_token, end_token, pad_token, rows)
        self.lengths = np.zeros([rows], np.int32)
        self.scores = np.zeros([rows], np.float32)  # summed log-probabilities
        self._ids, self._attention = [], []

    def advance(self, log_probs, attention):
        """Takes one step's `log_probs [B, V]` and `attention [B, S]`;
        returns None (greedy never reorders the model state)."""
        chosen = np.argmax(log_probs, axis=-1).astype(np.int32)
        chosen_log_prob = np.take_along_axis(log_probs, chosen[:, None], axis=-1)[:, 0]
        return self.advance_chosen(chosen, chosen_log_prob, attention)

    def advance_chosen(self, chosen, chosen_log_prob, attention):
        """`advance` given the step's argmax already: `chosen [B]` (int32,
        the highest log-probability's id, or anything where a row has
        ended), `chosen_log_prob [B]` (float32, its log-probability) and
        `attention [B, S]`, as `GreedySteps` returns them for each step.
        Returns None."""
        chosen = np.where(self.finished, np.int32(self.pad_token), np.asarray(chosen, np.int32))
        self.scores = self.scores + np.where(self.finished, np.float32(0),
                                             np.asarray(chosen_log_prob, np.float32))
        ended_now = ~self.finished & (chosen == self.end_token)
        self.lengths = self.lengths + (~(self.finished | ended_now)).astype(np.int32)
        self._ids.append(chosen)
        self._attention.append(attention * (~self.finished)[:, None].astype(np.float32))
        self.finished = self.finished | ended_now
        self._tokens = chosen
        self.steps += 1
        return None

    def last_tokens(self):
        """int32 `[B]`: the tokens the last step emitted (pad once a row ended)."""
        return self._ids[-1]

    def result_lengths(self):
        """int32 `[B]`: tokens before the end token."""
        return self.lengths

    def result_scores(self):
        """float32 `[B]`: summed log-probabilities."""
        return self.scores

    def ids(self):
        """int32 `[B, T]`."""
        return np.stack(self._ids, axis=1)

    def attention(self):
        """float32 `[B, T, S]`."""
        return np.stack(self._attention, axis=1)
