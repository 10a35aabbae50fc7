"""The training pipelines' batches (`training.core.batching.make_dataset`):
teacher-forcing targets, padding, and the fixed shapes JAX needs."""

import re

import numpy as np
import pytest
import tensorflow as tf

from training.core import batching
from training.core.text import START_ID


def clip_examples(lengths, frame_size=4):
    """Video-like examples: `{"frames": [T, S, S, 3], "lengths": T}` sources."""
    rng = np.random.default_rng(0)
    sources, targets_in, targets_out = [], [], []
    for index, length in enumerate(lengths):
        frames = rng.integers(0, 255, (length, frame_size, frame_size, 3), dtype=np.uint8)
        sources.append({"frames": frames, "lengths": np.int32(length)})
        target = np.arange(1, 3 + index % 3, dtype=np.int32) + 3
        targets_out.append(target)
        targets_in.append(batching.shift_right(target))
    return sources, targets_in, targets_out


CLIP_SPEC = {"frames": tf.TensorSpec([None, 4, 4, 3], tf.uint8),
             "lengths": tf.TensorSpec([], tf.int32)}


def test_shift_right_starts_with_start_and_drops_the_last_label():
    np.testing.assert_array_equal(batching.shift_right(np.array([7, 8, 2])), [START_ID, 7, 8])


def test_largest_shapes_of_a_nest_take_each_unknown_dimension_at_its_largest():
    sources, targets_in, _ = clip_examples([3, 5, 2])
    shapes = batching.largest_shapes(sources, CLIP_SPEC)
    assert shapes["frames"].as_list() == [5, 4, 4, 3]
    assert shapes["lengths"].as_list() == []
    assert batching.largest_shapes(targets_in, tf.TensorSpec([None], tf.int32)).as_list() == [4]
    assert batching.largest_shapes([], tf.TensorSpec([None], tf.int32)).as_list() == [1]


def test_static_shapes_pad_every_batch_of_nested_sources_to_one_shape():
    examples = clip_examples([3, 5, 2, 4, 1])
    dataset = batching.make_dataset(examples, 2, shuffle=False, source_spec=CLIP_SPEC,
                                    static_shapes=True)
    batches = list(dataset)
    assert len(batches) == 3  # the last one partial
    for inputs, target_out in batches[:2]:
        assert inputs["source"]["frames"].shape == (2, 5, 4, 4, 3)
        assert inputs["target_in"].shape == (2, 4) and target_out.shape == (2, 4)
    # The values survive the padding: the first clip's frames, then zeros.
    first = batches[0][0]["source"]
    np.testing.assert_array_equal(first["frames"][0, :3], examples[0][0]["frames"])
    assert not first["frames"][0, 3:].numpy().any()
    np.testing.assert_array_equal(first["lengths"], [3, 5])


def test_without_static_shapes_batches_pad_to_their_own_longest():
    dataset = batching.make_dataset(clip_examples([3, 2, 5, 1]), 2, shuffle=False,
                                    source_spec=CLIP_SPEC, static_shapes=False)
    assert [inputs["source"]["frames"].shape[1] for inputs, _ in dataset] == [3, 5]


def test_examples_of_unequal_counts_are_refused():
    sources, targets_in, targets_out = clip_examples([3, 2])
    with pytest.raises(ValueError, match=re.escape(
            "examples must be 3 lists of one length, received lists of [2, 2, 1]")):
        batching.make_dataset((sources, targets_in, targets_out[:1]), 2, shuffle=False,
                              source_spec=CLIP_SPEC)
    with pytest.raises(ValueError, match=re.escape(
            "examples must be 4 lists of one length, received lists of [2, 2, 2]")):
        batching.make_dataset((sources, targets_in, targets_out), 2, shuffle=False,
                              source_spec=CLIP_SPEC, extras_spec=EXTRAS_SPEC)


EXTRAS_SPEC = {"attention_target": tf.TensorSpec([None, 3], tf.float32)}


@pytest.mark.parametrize("static_shapes", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_more_inputs_are_padded_into_each_batch(static_shapes, shuffle):
    """A fourth list of per-example inputs (the attention targets `[T, S]` of
    a caption) joins each batch's inputs dict, zero-padded along T like the
    targets, and stays with its own example."""
    sources, targets_in, targets_out = clip_examples([3, 5, 2, 4])
    extras = [{"attention_target": np.full((len(t), 3), index + 1, "float32")}
              for index, t in enumerate(targets_out)]
    dataset = batching.make_dataset((sources, targets_in, targets_out, extras), 2,
                                    shuffle=shuffle, seed=3, source_spec=CLIP_SPEC,
                                    static_shapes=static_shapes, extras_spec=EXTRAS_SPEC)
    seen = []
    for inputs, target_out in dataset:
        assert sorted(inputs) == ["attention_target", "source", "target_in"]
        target = inputs["attention_target"].numpy()
        assert target.shape == (*target_out.shape, 3)
        for row, labels in zip(target, target_out.numpy()):
            index = int(row[0, 0]) - 1  # which example this row is
            seen.append(index)
            np.testing.assert_array_equal(labels[:len(targets_out[index])], targets_out[index])
            np.testing.assert_array_equal(row[:len(targets_out[index])], index + 1)
            assert not row[len(targets_out[index]):].any()
    assert sorted(seen) == [0, 1, 2, 3]


@pytest.mark.parametrize("process", [0, 1])
def test_each_process_of_two_takes_its_half_of_nested_batches(process, monkeypatch):
    """`distribution.local_rows` on a video task's batches (dict sources):
    process i of 2 keeps rows [i*B/2, (i+1)*B/2) of every leaf, and the
    dataset keeps its declared number of batches."""
    from training.core import distribution

    examples = clip_examples([3, 5, 2, 4, 1, 6, 2, 3])
    dataset = batching.make_dataset(examples, 4, shuffle=False, source_spec=CLIP_SPEC,
                                    static_shapes=True)
    monkeypatch.setattr(distribution, "_STATE",
                        {"active": True, "process_id": process, "num_processes": 2})
    local = distribution.local_rows(dataset)
    assert local.cardinality().numpy() == dataset.cardinality().numpy() == 2
    for (whole, whole_y), (mine, mine_y) in zip(dataset, local):
        rows = slice(2 * process, 2 * process + 2)
        np.testing.assert_array_equal(mine["source"]["frames"], whole["source"]["frames"][rows])
        np.testing.assert_array_equal(mine["source"]["lengths"],
                                      whole["source"]["lengths"][rows])
        np.testing.assert_array_equal(mine["target_in"], whole["target_in"][rows])
        np.testing.assert_array_equal(mine_y, whole_y[rows])


def stream_of_lengths(dataset, batches):
    """Each batch's clip lengths, the first `batches` batches of one iterator."""
    return [x["source"]["lengths"].numpy().tolist() for x, _ in dataset.take(batches)]


def test_a_shuffled_stream_is_the_same_from_every_iterator_and_every_dataset():
    """Every iterator gives one stream (Keras opens one to peek at a batch,
    then another to train on: the stream may not depend on that), equal
    for two datasets of one seed; each pass is a new order of every
    example once."""
    lengths = list(range(1, 13))
    make = lambda seed: batching.make_dataset(  # noqa: E731
        clip_examples(lengths), 4, shuffle=True, seed=seed, repeat=True, source_spec=CLIP_SPEC)
    dataset = make(7)
    first = stream_of_lengths(dataset, 9)  # 3 passes of 3 batches
    assert stream_of_lengths(dataset, 9) == first
    assert stream_of_lengths(make(7), 9) == first
    passes = [sorted(sum(first[i:i + 3], [])) for i in (0, 3, 6)]
    assert passes == [lengths] * 3
    orders = [sum(first[i:i + 3], []) for i in (0, 3, 6)]
    assert len({tuple(order) for order in orders}) == 3
    assert stream_of_lengths(make(8), 9) != first
