"""Beam search over an export's `decode_step`, one step at a time, in numpy:
the bookkeeping a server keeps for one request's rows while they share
decoding steps with other requests (`continuous_batching`).

It is `keras_attention.decoding.beam_search` (GNMT length penalty, no
coverage penalty: what the exports use) taken apart at the step, with the
same float32 arithmetic and the same tie order as `top_k` (the lower index
first), so the answer equals the export's whole-sequence beam signature on
the request alone.
"""

import numpy as np

from keras_attention.serving.step_search import StepSearch

_IMPOSSIBLE = np.float32(-1e9)  # as keras_attention.decoding.beam_search


def top_k_indices(scores, k):
    """Indices `[B, k]` of the `k` largest of each row of `scores [B, M]`,
    largest first, ties in index order (what `tf.math.top_k` returns).

    Example:

    >>> top_k_indices(np.array([[1., 3., 3., 2.]]), 3).tolist()
    [[1, 2, 3]]
    """
    picked = np.empty((scores.shape[0], k), np.int64)
    for row, values in enumerate(scores):
        threshold = np.partition(values, values.size - k)[values.size - k]
        candidates = np.flatnonzero(values >= threshold)  # ascending: ties by index
        order = np.argsort(-values[candidates], kind="stable")
        picked[row] = candidates[order[:k]]
    return picked


class BeamRows(StepSearch):
    """The beam search of `B` rows with `K` beams each, advanced by the
    caller's model steps.

    Args:
        max_length: int, the most steps (the request's longest row limit).
        start_token, end_token, pad_token: int ids (`step_signatures`).
        rows: int B.
        beam_width: int K.
        num_hypotheses: int N <= K, hypotheses answered per row.
        length_penalty: GNMT alpha.

    The model state of the `B*K` rows (the K beams of a row adjacent) is the
    caller's: it repeats each row's initial state K times and, after every
    `advance`, reorders the rows by the returned parent indices.

    Shapes: `log_probs [B*K, V]` and `attention [B*K, S]` per step; at the
    end `ids [B*N, T]`, `lengths [B*N]`, `scores [B*N]` and `attention
    [B*N, T, S]`, best first within a row.

    Example (V = 3, end token 2, one row, two beams):

    >>> table = np.log(np.array([[.1, .5, .4], [.1, .1, .8], [.0, .0, 1.]]) + 1e-9)
    >>> search = BeamRows(4, start_token=0, end_token=2, pad_token=0, rows=1,
    ...                   beam_width=2, num_hypotheses=2, length_penalty=0.0)
    >>> while not search.done:
    ...     parents = search.advance(table[search.tokens()].astype("float32"),
    ...                              np.ones((2, 1), "float32"))
    >>> search.ids().tolist(), search.result_lengths().tolist()
    ([[2, 0], [1, 2]], [0, 1])
    """

    def __init__(self, max_length, start_token, end_token, pad_token, rows, beam_width,
                 num_hypotheses, length_penalty):
        super().__init__(max_length, start_token, end_token, pad_token, rows * beam_width)
        self.batch, self.width = int(rows), int(beam_width)
        self.hypotheses = int(num_hypotheses)
        self.length_penalty = np.float32(length_penalty)
        self.finished = np.zeros([self.batch, self.width], bool)
        # Only the first of the K identical beams may be extended at first.
        first_only = np.where(np.arange(self.width) == 0, np.float32(0), _IMPOSSIBLE)
        self.log_probs = np.tile(first_only[None].astype(np.float32), (self.batch, 1))
        self.generated = np.zeros([self.batch, self.width], np.int32)
        self.scores = np.zeros([self.batch, self.width], np.float32)
        self._ids = np.zeros([self.batch * self.width, 0], np.int32)
        self._attention = None  # [B*K, T, S]

    def advance(self, log_probs, attention):
        """Takes one step's `log_probs [B*K, V]` and `attention [B*K, S]`;
        returns the parent row `[B*K]` of each kept hypothesis (the model
        state's new order)."""
        batch, width = self.batch, self.width
        vocab_size = log_probs.shape[-1]
        step_log_probs = log_probs.reshape(batch, width, vocab_size).astype(np.float32)
        # A finished hypothesis has one extension, the end token at no cost.
        only_end = np.where(np.arange(vocab_size) == self.end_token, np.float32(0), _IMPOSSIBLE)
        step_log_probs = np.where(self.finished[..., None], only_end, step_log_probs)
        live = ~self.finished
        candidate_log_probs = self.log_probs[..., None] + step_log_probs  # --> [B, K, V]
        candidate_lengths = self.generated + live.astype(np.int32)  # --> [B, K]
        penalty = np.power((np.float32(5) + candidate_lengths.astype(np.float32))
                           / np.float32(6), self.length_penalty)
        scores = (candidate_log_probs / penalty[..., None]).reshape(batch, -1)
        top = top_k_indices(scores, width)  # --> [B, K] into K*V
        parents = (top // vocab_size).astype(np.int32)
        tokens = (top % vocab_size).astype(np.int32)
        rows = (np.arange(batch)[:, None] * width + parents).reshape(-1)  # --> [B*K]
        parent_finished = np.take_along_axis(self.finished, parents, axis=1)
        emitted = np.where(parent_finished, np.int32(self.pad_token), tokens).reshape(-1)
        kept = attention[rows] * (~parent_finished).reshape(-1, 1).astype(np.float32)
        self._ids = np.concatenate([self._ids[rows], emitted[:, None]], axis=1)
        self._attention = kept[:, None] if self._attention is None else np.concatenate(
            [self._attention[rows], kept[:, None]], axis=1)
        self.finished = parent_finished | (tokens == self.end_token)
        self.log_probs = np.take_along_axis(candidate_log_probs.reshape(batch, -1), top, axis=1)
        self.generated = np.take_along_axis(candidate_lengths, parents, axis=1)
        self.scores = np.take_along_axis(scores, top, axis=1)
        self._tokens = tokens.reshape(-1)
        self.steps += 1
        return rows

    def _best(self, values):
        """`[B*K, ...]` -> the N best of each row, `[B*N, ...]`."""
        values = values.reshape(self.batch, self.width, *values.shape[1:])
        return values[:, :self.hypotheses].reshape(-1, *values.shape[2:])

    def ids(self):
        """int32 `[B*N, T]`, best first within a row."""
        return self._best(self._ids)

    def result_lengths(self):
        """int32 `[B*N]`: tokens before the end token."""
        return (self.generated - self.finished.astype(np.int32))[:, :self.hypotheses].reshape(-1)

    def result_scores(self):
        """float32 `[B*N]`: GNMT scores."""
        return self.scores[:, :self.hypotheses].reshape(-1)

    def attention(self):
        """float32 `[B*N, T, S]`."""
        return self._best(self._attention)
