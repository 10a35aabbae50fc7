"""tf.data input pipelines: strings -> ids, length buckets, batches."""

import numpy as np
import tensorflow as tf

from training.translation.text_processing import START_ID


def encode_pairs(pairs, source_vocabulary, target_vocabulary, batch_size=4096):
    """(source, target) strings -> lists of int32 id arrays.

    Returns `(sources, targets_in, targets_out)`: source ids, `[START] + y`,
    and `y + [END]`, one numpy array per pair.
    """
    sources, targets_in, targets_out = [], [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        source_ids = source_vocabulary.encode(tf.constant([s for s, _ in chunk]))
        target_ids = target_vocabulary.encode(tf.constant([t for _, t in chunk]), add_end=True)
        for source_row, target_row in zip(source_ids.numpy(), target_ids.numpy()):
            source_row = source_row[source_row != 0]
            target_row = target_row[target_row != 0]
            sources.append(source_row)
            targets_out.append(target_row)
            targets_in.append(_shift_right(target_row))
    return sources, targets_in, targets_out


def drop_long_pairs(encoded, max_tokens):
    """Keeps pairs with 1..max_tokens source words and at most max_tokens
    target words (the end token aside)."""
    keep = [i for i, (source, target_out) in enumerate(zip(encoded[0], encoded[2]))
            if 0 < len(source) <= max_tokens and len(target_out) <= max_tokens + 1]
    return tuple([part[i] for i in keep] for part in encoded)


def _shift_right(target_out):
    return np.concatenate([[START_ID], target_out[:-1]]).astype("int32")


def make_dataset(encoded, batch_size, shuffle, seed=None, repeat=False, drop_remainder=None,
                 bucket_boundaries=(8, 12, 16, 20, 24, 30, 36, 44, 52, 64, 80)):
    """Batches of `({"source": [B, S], "target_in": [B, T]}, target_out [B, T])`.

    Pairs of similar target length share a batch (less padding). With
    `shuffle`, the order is drawn from `seed` anew each pass, the same on
    every run with that seed. A finite dataset declares its number of
    batches, so Keras averages its metrics over the right count.
    `drop_remainder` (default: when repeating) drops partial batches, which
    several replicas need.
    """
    if drop_remainder is None:
        drop_remainder = repeat
    sources, targets_in, targets_out = encoded

    def generator():
        yield from zip(sources, targets_in, targets_out)

    spec = tf.TensorSpec([None], tf.int32)
    dataset = tf.data.Dataset.from_generator(generator, output_signature=(spec, spec, spec))
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if bucket_boundaries:
        dataset = dataset.bucket_by_sequence_length(
            lambda source, target_in, target_out: tf.maximum(tf.shape(source)[0],
                                                             tf.shape(target_out)[0]),
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            drop_remainder=drop_remainder,
        )
    else:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        lambda source, target_in, target_out: (
            {"source": source, "target_in": target_in}, target_out
        )
    )
    if not repeat:
        batches = sum(1 for _ in dataset)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)
