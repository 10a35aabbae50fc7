"""Scripted step functions for the decoding tests, and numpy references.

Two stub "models", each with a keras.ops step function (runs eagerly, in
`tf.function` and under XLA: the tables are tensors) and a numpy twin
`np_step(row, step, prefix, prev_token) -> (log_probs [V], attention [S])`
used by the references:

* `ScriptedModel`: `log_probs = table[row, step, prev_token]` and
  `attention = attn[row, step, prev_token]`. Its state is
  `{"row": int32 [B], "step": int32 [B]}`, both batch-first, so beam search
  tiles and reorders them; `row` selects each batch element's own tables.
* `PrefixModel`: the next-token distribution depends on the *whole* emitted
  prefix, which the step function keeps in its (nested) state
  `{"row": [B], "inner": (step [B], history [B, T])}`. Its "attention" is
  an encoding of that history (`history[j] + 1` in slot j, `step + 1` in
  the last slot), so the recorded attention of a hypothesis shows what the
  state held at every step.

The references (`greedy_reference`, `enumerate_sequences`, `gnmt_score`,
`evaluate_ids`) are plain Python/numpy, written from the documented
conventions, not from the library code.
"""

import math
from typing import NamedTuple

import numpy as np
from keras import ops

VOCAB = 4  # tokens 0..3
END = 3
PAD = 0
MAX_LENGTH = 4
MEMORY = 5  # memory positions S


def log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis=-1):
    return np.exp(log_softmax(x, axis))


# --------------------------------------------------------------------------- models


class ScriptedModel:
    """`table[row, step, prev_token, V]` log-probabilities, `attn[row, step, prev_token, S]`."""

    def __init__(self, log_probs, attention=None):
        log_probs = np.asarray(log_probs, np.float32)
        self.num_rows, self.max_steps, self.vocab_size, _ = log_probs.shape
        self.log_probs = log_probs
        self.attention = None if attention is None else np.asarray(attention, np.float32)
        self._log_probs_flat = ops.convert_to_tensor(log_probs.reshape(-1, self.vocab_size))
        self._attention_flat = None
        if self.attention is not None:
            self.memory_length = self.attention.shape[-1]
            self._attention_flat = ops.convert_to_tensor(
                self.attention.reshape(-1, self.memory_length)
            )

    # -- keras side
    def initial_state(self, rows):
        rows = np.asarray(rows, np.int32)
        return {
            "row": ops.convert_to_tensor(rows),
            "step": ops.zeros((len(rows),), "int32"),
        }

    def _flat_index(self, row, step, tokens):
        step = ops.minimum(step, self.max_steps - 1)
        return (row * self.max_steps + step) * self.vocab_size + ops.cast(tokens, "int32")

    def _lookup(self, row, step, tokens):
        index = self._flat_index(row, step, tokens)
        logits = ops.take(self._log_probs_flat, index, axis=0)
        attention = None
        if self._attention_flat is not None:
            attention = ops.take(self._attention_flat, index, axis=0)
        return logits, attention

    def step_fn(self, tokens, state):
        logits, attention = self._lookup(state["row"], state["step"], tokens)
        return logits, {"row": state["row"], "step": state["step"] + 1}, attention

    def constants_step_fn(self, expected_rows):
        """A step reading its row index from `constants["row"]`; the state holds
        only the step counter. Fails unless the constants arrive with
        `expected_rows` rows (B*K for beam search: the search tiles them)."""

        def step_fn(tokens, state, constants):
            for name in ("row", "memory"):
                rows = constants[name].shape[0]
                if rows != expected_rows:
                    raise AssertionError(
                        f"constants[{name!r}] has {rows} rows, expected {expected_rows}"
                    )
            if tokens.shape[0] != expected_rows:
                raise AssertionError(
                    f"tokens have {tokens.shape[0]} rows, expected {expected_rows}"
                )
            # Use the memory too, so untiled or reordered constants would show.
            row = constants["row"] + ops.cast(ops.sum(constants["memory"], axis=(1, 2)), "int32")
            logits, attention = self._lookup(row, state["step"], tokens)
            return logits, {"step": state["step"] + 1}, attention

        return step_fn

    def constants_for(self, rows):
        rows = np.asarray(rows, np.int32)
        return {
            "row": ops.convert_to_tensor(rows),
            "memory": ops.zeros((len(rows), 3, 2), "float32"),
        }

    # -- numpy side
    def np_step(self, row, step, prefix, prev_token):
        step = min(step, self.max_steps - 1)
        attention = None if self.attention is None else self.attention[row, step, prev_token]
        return self.log_probs[row, step, prev_token], attention


def random_scripted_model(
    seed, num_rows=4, max_steps=MAX_LENGTH, vocab_size=VOCAB, memory_length=MEMORY,
    logit_scale=1.5, end_at=None, with_attention=True, masked_positions=None,
):
    """A `ScriptedModel` with random tables.

    end_at: optional {row: step or None}: that row's end token gets a very
        low logit everywhere except at `step` (where it gets a very high one),
        so greedy search ends exactly there (None: never).
    masked_positions: {row: [positions]} whose attention is exactly zero
        (default: row 1 masks the last position, row 3 the first and fourth).
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(num_rows, max_steps, vocab_size, vocab_size)) * logit_scale
    for row, step in (end_at or {}).items():
        logits[row, :, :, END] = -8.0
        if step is not None:
            logits[row, step, :, END] = 8.0
    attention = None
    if with_attention:
        scores = rng.normal(size=(num_rows, max_steps, vocab_size, memory_length)) * 2.0
        if masked_positions is None:
            masked_positions = {1: [memory_length - 1], 3: [0, 3]}
        allowed = np.ones(scores.shape, bool)
        for row, positions in masked_positions.items():
            if row < num_rows:
                allowed[row, ..., positions] = False
        scores = np.where(allowed, scores, -np.inf)
        attention = np.where(allowed, softmax(scores), 0.0)
        assert np.all(attention[~allowed] == 0.0)
    return ScriptedModel(log_softmax(logits), attention)


class PrefixModel:
    """Next-token log-probabilities indexed by the whole emitted prefix.

    `table[row, code(prefix), V]` with `code` unique per prefix of length
    < max_steps. The state is nested: `{"row": [B], "inner": (step [B],
    history [B, T])}`; at step t the step function first writes its input
    token (the token emitted at step t-1) into `history[t-1]`, so
    `history[:t]` must be the hypothesis' emitted prefix.
    """

    def __init__(self, seed, num_rows=3, max_steps=MAX_LENGTH, vocab_size=VOCAB, logit_scale=1.5):
        self.num_rows, self.max_steps, self.vocab_size = num_rows, max_steps, vocab_size
        self.offsets = np.cumsum([0] + [vocab_size**t for t in range(max_steps)])[:-1]
        self.num_codes = int(sum(vocab_size**t for t in range(max_steps)))
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(num_rows, self.num_codes, vocab_size)) * logit_scale
        self.log_probs = log_softmax(logits).astype(np.float32)
        self.memory_length = max_steps + 1
        self._table = ops.convert_to_tensor(self.log_probs.reshape(-1, vocab_size))
        self._offsets = ops.convert_to_tensor(self.offsets.astype(np.int32))
        self._powers = ops.convert_to_tensor(
            np.array([vocab_size**j for j in range(max_steps)], np.int32)
        )

    def code(self, prefix):
        position_values = sum(t * self.vocab_size**j for j, t in enumerate(prefix))
        return int(self.offsets[len(prefix)] + position_values)

    def initial_state(self, rows):
        rows = np.asarray(rows, np.int32)
        return {
            "row": ops.convert_to_tensor(rows),
            "inner": (
                ops.zeros((len(rows),), "int32"),
                ops.zeros((len(rows), self.max_steps), "int32"),
            ),
        }

    def step_fn(self, tokens, state):
        row = state["row"]
        step, history = state["inner"]
        tokens = ops.cast(tokens, "int32")
        positions = ops.arange(self.max_steps, dtype="int32")[None, :]  # --> [1, T]
        t = ops.minimum(step, self.max_steps - 1)[:, None]  # --> [B, 1]
        write = ops.logical_and(ops.equal(positions, t - 1), t >= 1)
        history = ops.where(write, tokens[:, None], history)
        known = positions < t
        code = ops.take(self._offsets, t[:, 0]) + ops.sum(
            ops.where(known, history * self._powers[None, :], 0), axis=1
        )
        logits = ops.take(self._table, row * self.num_codes + code, axis=0)
        encoding = ops.concatenate(
            [
                ops.cast(ops.where(known, history + 1, 0), "float32"),
                ops.cast(t + 1, "float32"),
            ],
            axis=1,
        )  # --> [B, T + 1]
        return logits, {"row": row, "inner": (step + 1, history)}, encoding

    def np_step(self, row, step, prefix, prev_token):
        assert len(prefix) == step
        encoding = np.zeros(self.memory_length, np.float32)
        encoding[: len(prefix)] = np.asarray(prefix) + 1
        encoding[-1] = step + 1
        return self.log_probs[row, self.code(prefix)], encoding


# --------------------------------------------------------------------------- references


class Hypothesis(NamedTuple):
    tokens: tuple  # emitted tokens, the end token included when it ended
    log_prob: float
    attention: np.ndarray  # [len(tokens), S] or None
    ended: bool

    @property
    def length(self):  # tokens before the end token
        return len(self.tokens) - int(self.ended)

    def padded_ids(self, max_length, pad_token=PAD):
        return np.array(list(self.tokens) + [pad_token] * (max_length - len(self.tokens)))

    def padded_attention(self, max_length):
        out = np.zeros((max_length, self.attention.shape[-1]))
        out[: len(self.tokens)] = self.attention
        return out


def gnmt_score(hypothesis, alpha, beta):
    """Wu et al. 2016: log P / lp + cp with lp = ((5 + |Y|) / 6)^alpha, |Y| the
    number of generated tokens (the end token counts), and
    cp = beta * sum over memory positions i whose total attention is > 0 of
    log(min(total_i, 1))."""
    num_generated = len(hypothesis.tokens)
    lp = ((5.0 + num_generated) / 6.0) ** alpha
    cp = 0.0
    if beta:
        totals = np.sum(np.asarray(hypothesis.attention, np.float64), axis=0)
        cp = beta * sum(math.log(min(total, 1.0)) for total in totals if total > 0.0)
    return hypothesis.log_prob / lp + cp


def evaluate_ids(model, row, start_token, ids, end_token=END, max_length=MAX_LENGTH):
    """The hypothesis that emitting `ids` (a padded row) describes."""
    tokens, log_prob, rows = [], 0.0, []
    prev = start_token
    for step in range(max_length):
        step_log_probs, attention = model.np_step(row, step, list(tokens), prev)
        token = int(ids[step])
        tokens.append(token)
        log_prob += float(step_log_probs[token])
        rows.append(attention)
        prev = token
        if token == end_token:
            break
    attention = None if rows[0] is None else np.array(rows, np.float64)
    return Hypothesis(tuple(tokens), log_prob, attention, tokens[-1] == end_token)


def greedy_reference(model, rows, start_tokens, end_token=END, max_length=MAX_LENGTH):
    """Arg-max token at every step, per batch row."""
    hypotheses = []
    for row, start in zip(rows, start_tokens):
        tokens, prev = [], int(start)
        for step in range(max_length):
            step_log_probs, _ = model.np_step(row, step, list(tokens), prev)
            prev = int(np.argmax(step_log_probs))
            tokens.append(prev)
            if prev == end_token:
                break
        hypotheses.append(evaluate_ids(model, row, int(start), tokens + [PAD] * max_length,
                                       end_token, max_length))
    return hypotheses


def enumerate_sequences(model, row, start_token, end_token=END, max_length=MAX_LENGTH):
    """Every sequence the model can emit: ended by the end token, or cut at max_length."""
    results = []

    def extend(prefix, log_prob, attention_rows):
        step = len(prefix)
        prev = prefix[-1] if prefix else start_token
        step_log_probs, attention = model.np_step(row, step, list(prefix), prev)
        for token in range(len(step_log_probs)):
            tokens = prefix + (token,)
            total = log_prob + float(step_log_probs[token])
            rows = attention_rows + [attention]
            if token == end_token or len(tokens) == max_length:
                attention_array = None if attention is None else np.array(rows, np.float64)
                results.append(Hypothesis(tokens, total, attention_array, token == end_token))
            else:
                extend(tokens, total, rows)

    extend((), 0.0, [])
    return results


def exhaustive_ranking(model, row, start_token, alpha, beta, end_token=END, max_length=MAX_LENGTH):
    """[(score, hypothesis)] for every sequence, best first."""
    scored = [(gnmt_score(h, alpha, beta), h)
              for h in enumerate_sequences(model, row, start_token, end_token, max_length)]
    scored.sort(key=lambda pair: -pair[0])
    return scored


def count_sequences(vocab_size=VOCAB, max_length=MAX_LENGTH):
    """Sequences ending with the end token at steps 1..T, plus the unended ones of length T."""
    others = vocab_size - 1
    return sum(others**t for t in range(max_length)) + others**max_length


def to_numpy(result):
    """DecodingResult -> dict of numpy arrays (attention may be None)."""
    return {
        name: None if value is None else ops.convert_to_numpy(value)
        for name, value in result._asdict().items()
    }
