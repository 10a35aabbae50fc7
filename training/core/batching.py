"""tf.data pipelines every task shares: targets shifted for teacher forcing,
batches bucketed by a length the task defines, a stream that can be resumed
at any step."""

import numpy as np
import tensorflow as tf

from training.core.text import START_ID


def encode_targets(texts, vocabulary, chunk_size=4096):
    """Target strings -> `(targets_in, targets_out)`, lists of int32 arrays:
    `[START] + y` (the decoder input) and `y + [END]` (the labels)."""
    targets_in, targets_out = [], []
    for start in range(0, len(texts), chunk_size):
        ids = vocabulary.encode(tf.constant(texts[start:start + chunk_size]), add_end=True)
        for row in ids.numpy():
            row = row[row != 0]
            targets_out.append(row.astype("int32"))
            targets_in.append(shift_right(row))
    return targets_in, targets_out


def shift_right(target_out):
    """`y + [END]` -> `[START] + y`: the decoder input of teacher forcing."""
    return np.concatenate([[START_ID], target_out[:-1]]).astype("int32")


def target_length(source, target_in, target_out):
    """Default bucketing length: the target's."""
    return tf.shape(target_out)[0]


def make_dataset(examples, batch_size, shuffle, seed=None, repeat=False, drop_remainder=None,
                 bucket_boundaries=(), length_fn=target_length,
                 source_spec=tf.TensorSpec([None], tf.int32), static_shapes=None,
                 extras_spec=None):
    """Batches of `({"source": [B, ...], "target_in": [B, T]}, target_out [B, T])`.

    Args:
        examples: `(sources, targets_in, targets_out)`, equal-length lists
            (sources: arrays matching `source_spec`; targets: int32 `[T]`),
            and with `extras_spec` a fourth list: per example a dict of
            more model inputs (e.g. `"attention_target"` `[T, S]`), padded
            with zeros and added to each batch's inputs dict.
        batch_size: Examples per batch.
        shuffle: A new order each pass, drawn from `seed` and the pass's
            number alone: every iterator of the dataset gives the same
            stream (Keras may open more than one), on every process and
            every run with that seed.
        repeat: Repeat forever (training); else one pass that declares its
            number of batches, so Keras averages metrics over the right count.
        drop_remainder: Drop a last partial batch (default: when repeating;
            several replicas need full batches).
        bucket_boundaries: Lengths that split batches by `length_fn(source,
            target_in, target_out)`, so similar lengths share a batch (less
            padding). Empty: plain padded batches.
        source_spec: A `tf.TensorSpec` of one source (token ids, an image ...).
        static_shapes: Pad every batch to a few fixed shapes: to its bucket's
            upper boundary (or, without buckets, to the longest example), so
            a compiled step is reused. Default: on the JAX backend, which
            compiles a step anew for each new shape (TensorFlow's traced
            steps take any length).
        extras_spec: A dict of `tf.TensorSpec`s of the fourth list's dicts.
    """
    if static_shapes is None:
        from training.core.config import keras_backend

        static_shapes = keras_backend() == "jax"
    if drop_remainder is None:
        drop_remainder = repeat
    parts = 3 if extras_spec is None else 4
    if len(examples) != parts or len({len(part) for part in examples}) != 1:
        raise ValueError(f"examples must be {parts} lists of one length, received lists of "
                         f"{[len(part) for part in examples]}")

    target_spec = tf.TensorSpec([None], tf.int32)
    signature = (source_spec, target_spec, target_spec) + (
        () if extras_spec is None else (extras_spec,))
    if shuffle:
        dataset = _shuffled_passes(examples, signature, seed, repeat)
    else:
        def generator():
            yield from zip(*examples)

        dataset = tf.data.Dataset.from_generator(generator, output_signature=signature).cache()
        if repeat:
            dataset = dataset.repeat()
    if bucket_boundaries:
        boundaries = list(bucket_boundaries)
        if static_shapes:  # every length below the last boundary, padded to boundary - 1
            longest = max((len(x) for part in examples for x in part if np.ndim(x) == 1),
                          default=1)
            boundaries = [b for b in boundaries if b <= longest] + [longest + 1]
        dataset = dataset.bucket_by_sequence_length(
            lambda source, target_in, target_out, *extras: length_fn(source, target_in,
                                                                     target_out),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            drop_remainder=drop_remainder,
            pad_to_bucket_boundary=bool(static_shapes),
        )
    elif static_shapes:
        padded = tuple(largest_shapes(part, spec) for part, spec in zip(examples, signature))
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded,
                                       drop_remainder=drop_remainder)
    else:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        lambda source, target_in, target_out, *extras: (
            {"source": source, "target_in": target_in, **(extras[0] if extras else {})},
            target_out
        )
    )
    if not repeat:
        batches = sum(1 for _ in dataset)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _shuffled_passes(examples, signature, seed, repeat):
    """The examples pass after pass (one pass unless `repeat`), pass p in
    the order `permutation(seed, p)`.

    (tf.data's `shuffle(reshuffle_each_iteration=True)` draws each new
    iterator's order from a generator the iterators share, so the stream
    depended on how many iterators had been opened before, and when.)
    """
    count = len(examples[0])
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])

    def one_pass(pass_number):
        order = np.random.default_rng([seed, int(pass_number)]).permutation(count)
        for index in order:
            yield tuple(part[index] for part in examples)

    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    return passes.flat_map(lambda number: tf.data.Dataset.from_generator(
        one_pass, args=(number,), output_signature=signature))


def largest_shapes(values, spec):
    """The padded shape(s) that fit every one of `values`: `spec`'s shape (a
    nest of `tf.TensorSpec`s, `values` a list of matching nests of arrays),
    each unknown dimension the largest of the values' along it (1 for none).
    """
    specs = tf.nest.flatten(spec)
    leaves = [tf.nest.flatten(value) for value in values]
    shapes = []
    for index, leaf_spec in enumerate(specs):
        dims = leaf_spec.shape.as_list()
        for axis, dim in enumerate(dims):
            if dim is None:
                dims[axis] = max((np.shape(leaf[index])[axis] for leaf in leaves), default=1)
        shapes.append(tf.TensorShape(dims))
    return tf.nest.pack_sequence_as(spec, shapes)
