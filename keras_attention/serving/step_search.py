"""What the server's step-by-step searches share (`GreedyRows`,
`BeamRows`): the step count, the length limit and the next tokens."""

import numpy as np


class StepSearch:
    """A search of some rows advanced one model step at a time by its caller.

    Subclasses set `self.finished` (bool, any shape) and implement
    `advance(log_probs, attention)`.

    Example (a search that has run no step yet):

    >>> search = StepSearch(max_length=3, start_token=1, end_token=2, pad_token=0, rows=2)
    >>> search.tokens().tolist(), search.rows, search.done
    ([1, 1], 2, False)
    """

    def __init__(self, max_length, start_token, end_token, pad_token, rows):
        self.max_length = max(int(max_length), 1)
        self.end_token, self.pad_token = int(end_token), int(pad_token)
        self.steps = 0
        self.finished = np.zeros([rows], bool)
        self._tokens = np.full([rows], start_token, np.int32)

    @property
    def rows(self):
        """Rows this search feeds to each model step."""
        return len(self._tokens)

    @property
    def done(self):
        return self.steps >= self.max_length or bool(self.finished.all())

    def tokens(self):
        """int32 `[rows]`: the next step's input tokens."""
        return self._tokens
