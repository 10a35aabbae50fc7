"""Sentence pairs -> id arrays -> tf.data batches bucketed by length."""

import tensorflow as tf

from training.core import batching

BUCKET_BOUNDARIES = (8, 12, 16, 20, 24, 30, 36, 44, 52, 64, 80)


def encode_pairs(pairs, source_vocabulary, target_vocabulary, chunk_size=4096):
    """(source, target) strings -> `(sources, targets_in, targets_out)`, lists
    of int32 id arrays: source ids, `[START] + y` and `y + [END]`."""
    sources = []
    for start in range(0, len(pairs), chunk_size):
        chunk = pairs[start:start + chunk_size]
        for row in source_vocabulary.encode(tf.constant([s for s, _ in chunk])).numpy():
            sources.append(row[row != 0])
    targets_in, targets_out = batching.encode_targets(
        [t for _, t in pairs], target_vocabulary, chunk_size)
    return sources, targets_in, targets_out


def drop_long_pairs(encoded, max_tokens):
    """Keeps pairs with 1..max_tokens source words and at most max_tokens
    target words (the end token aside)."""
    keep = [i for i, (source, target_out) in enumerate(zip(encoded[0], encoded[2]))
            if 0 < len(source) <= max_tokens and len(target_out) <= max_tokens + 1]
    return tuple([part[i] for i in keep] for part in encoded)


def pair_length(source, target_in, target_out):
    """Bucketing length of a pair: its longer side."""
    return tf.maximum(tf.shape(source)[0], tf.shape(target_out)[0])


def make_dataset(encoded, batch_size, shuffle, seed=None, repeat=False, drop_remainder=None,
                 bucket_boundaries=BUCKET_BOUNDARIES):
    """Batches of `({"source": [B, S], "target_in": [B, T]}, target_out [B, T])`,
    pairs of similar length together (see `batching.make_dataset`)."""
    return batching.make_dataset(
        encoded, batch_size, shuffle, seed=seed, repeat=repeat, drop_remainder=drop_remainder,
        bucket_boundaries=bucket_boundaries, length_fn=pair_length)
