"""Decoding methods over a step function `(tokens, state) -> (logits, state, attention)`.

They know nothing about models, run in symbolic loops with a maximum length
(so they work in `tf.function`, under XLA and in exported SavedModels) and
use stock ops only. `get(name)` picks one by name (`names()` lists them,
`register` adds one).
"""

from keras_attention.decoding.beam_search import beam_search
from keras_attention.decoding.greedy import greedy_search
from keras_attention.decoding.registry import get, names, register
from keras_attention.decoding.repetition import block_repeated_ngrams, initial_guard_state
from keras_attention.decoding.result import DecodingResult
from keras_attention.decoding.sampling import sampling_search

__all__ = [
    "DecodingResult", "beam_search", "block_repeated_ngrams", "get", "greedy_search",
    "initial_guard_state", "names", "register", "sampling_search",
]
