"""The generated video clips: determinism, events seen in the pixels, captions, order, splits.

Events are checked against the frames with a colour classifier written here
(channel rules, independent of the module's palette) and centroids of the
classified pixels; captions with a parser written here, independent of the
module's caption builder.
"""

import collections
import doctest
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from training.video import clips
from training.video.clips import NO_EVENT, default_splits, generate_clips, vocabulary

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COLOUR_WORDS = {"red", "green", "blue", "yellow", "white"}
SHAPE_WORDS = {"circle", "square", "triangle"}
DIRECTION_WORDS = {"left", "right", "up", "down"}
VERB_KINDS = {"appears": "appear", "moves": "move", "turns": "change_colour",
              "disappears": "disappear"}


# ------------------------------------------------------------ helpers
def parse_caption(caption):
    """Parse ``EVENT ( , then EVENT )*`` with ``EVENT = ART COLOUR SHAPE VERB [ARG]``.

    Returns one dict per event: article, colour, shape, kind, argument and the
    positions of its colour, shape, verb and argument words.  Raises ValueError
    on anything outside the grammar.
    """
    words = caption.split(" ")
    position = 0
    events = []

    def take(allowed):
        nonlocal position
        if position >= len(words) or words[position] not in allowed:
            raise ValueError(f"expected one of {sorted(allowed)} at word {position} of {caption!r}")
        position += 1
        return words[position - 1]

    while True:
        article = take({"a", "the"})
        first = position
        colour, shape = take(COLOUR_WORDS), take(SHAPE_WORDS)
        kind = VERB_KINDS[take(set(VERB_KINDS))]
        argument = None
        if kind == "move":
            argument = take(DIRECTION_WORDS)
        elif kind == "change_colour":
            argument = take(COLOUR_WORDS)
        events.append(dict(article=article, colour=colour, shape=shape, kind=kind,
                           argument=argument, positions=tuple(range(first, position))))
        if position == len(words):
            return events
        take({","}), take({"then"})


def colour_masks(frames):
    """``{colour: bool [..., H, W]}`` by channel rules (exclusive), independent of the palette."""
    r, g, b = (frames[..., channel].astype(np.int16) for channel in range(3))
    return {
        "white": (r > 180) & (g > 180) & (b > 180),
        "yellow": (r > 150) & (g > 150) & (b < 100),
        "red": (r > 150) & (g < 100) & (b < 100),
        "green": (g > 130) & (r < 100) & (b < 100),
        "blue": (b > 150) & (r < 100) & (g < 140),
    }


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def clip_digest(clip):
    return hashlib.sha256(clip.caption.encode() + clip.frames.tobytes()).hexdigest()


def object_colours(clip):
    """Each object's first colour: the colour its earliest event names."""
    first = {}
    for event in clip.events:
        first.setdefault(event.object_index, event.colour)
    return first


def signature(clip):
    """The events in order, each as (object's first colour, shape, kind, argument)."""
    first = object_colours(clip)
    return tuple((first[e.object_index], e.shape, e.kind, e.direction or e.new_colour)
                 for e in clip.events)


@pytest.fixture(scope="module")
def varied_clips():
    return generate_clips(300, seed=11, frame_count=(8, 32))


@pytest.fixture(scope="module")
def many_clips():
    return generate_clips(1500, seed=6)


# ------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_clips():
    first = generate_clips(30, seed=5, frame_count=(8, 24), noise=0.03)
    second = generate_clips(30, seed=5, frame_count=(8, 24), noise=0.03)
    for a, b in zip(first, second, strict=True):
        assert a.frames.tobytes() == b.frames.tobytes()
        assert a.caption == b.caption and a.events == b.events


def test_different_seeds_give_different_clips():
    first = {clip_digest(c) for c in generate_clips(40, seed=1)}
    second = {clip_digest(c) for c in generate_clips(40, seed=2)}
    assert len(first) == 40 and not first & second


def test_longer_run_extends_shorter_run():
    short = generate_clips(7, seed=3)
    long = generate_clips(30, seed=3)
    for a, b in zip(short, long[:7], strict=True):
        assert a.frames.tobytes() == b.frames.tobytes() and a.caption == b.caption


@pytest.mark.parametrize("frame_size, frame_count", [(16, 8), (32, 16), (48, (8, 32))])
def test_frame_shapes_and_dtype(frame_size, frame_count):
    lengths = set()
    for clip in generate_clips(60, seed=2, frame_size=frame_size, frame_count=frame_count):
        assert clip.frames.dtype == np.uint8
        assert clip.frames.shape[1:] == (frame_size, frame_size, 3)
        lengths.add(len(clip.frames))
        assert 1 <= len(clip.events) <= 3
    low, high = (frame_count, frame_count) if isinstance(frame_count, int) else frame_count
    assert min(lengths) >= low and max(lengths) <= high
    assert len(lengths) > 5 or low == high


# ------------------------------------------------------------ events in the pixels
def test_frames_change_exactly_within_event_spans(varied_clips):
    for clip in varied_clips:
        frame_count = len(clip.frames)
        spans = [(e.start_frame, e.end_frame) for e in clip.events]
        assert spans == sorted(spans)
        assert 1 <= spans[0][0] and spans[-1][1] <= frame_count
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
        assert all(2 <= end - start <= 8 for start, end in spans)
        in_span = np.zeros(frame_count, bool)
        for start, end in spans:
            in_span[start:end] = True
        changed = (clip.frames[1:] != clip.frames[:-1]).any(axis=(1, 2, 3))
        # Frame t changes from frame t - 1 exactly when t lies in a span.
        assert (changed == in_span[1:]).all(), (clip.caption, spans, changed)


def check_event_in_pixels(clip, event, masks):
    start, end = event.start_frame, event.end_frame
    before, after = start - 1, end - 1  # the frames showing the shape before and after
    counts = masks[event.colour].sum(axis=(1, 2))
    if event.kind == "appear":
        assert (counts[:start] == 0).all()
        assert (np.diff(counts[before:end]) > 0).all()  # grows every frame of the span
    elif event.kind == "disappear":
        assert counts[after] == 0 and (counts[end:] == 0).all()
        assert (np.diff(counts[before:end]) < 0).all()  # shrinks every frame of the span
    elif event.kind == "move":
        assert (counts[before:end] == counts[before]).all() and counts[before] > 0
        centres = np.array([centroid(masks[event.colour][t]) for t in range(before, end)])
        step_x, step_y = {"left": (-1, 0), "right": (1, 0), "up": (0, -1),
                          "down": (0, 1)}[event.direction]
        moved = np.diff(centres, axis=0)
        # Every frame of the span moves the shape at least a pixel, along one axis.
        along, across = (moved[:, 0], moved[:, 1]) if step_x else (moved[:, 1], moved[:, 0])
        assert (along * (step_x or step_y) >= 1).all(), (event, centres)
        assert (across == 0).all()
    else:
        new = masks[event.new_colour]
        old = masks[event.colour]
        assert counts[before] > 0 and new[before].sum() == 0
        assert old[after].sum() == 0
        # The same pixels, in the new colour.
        assert np.array_equal(old[before], new[after])


def test_each_event_is_seen_in_the_frames(varied_clips):
    seen = collections.Counter()
    for clip in varied_clips:
        masks = colour_masks(clip.frames)
        for event in clip.events:
            check_event_in_pixels(clip, event, masks)
            seen[event.kind] += 1
    assert set(seen) == set(clips.KINDS)


def test_shapes_are_drawn_whole_and_last_until_they_disappear(varied_clips):
    fill = {"square": 1.0, "circle": np.pi / 4, "triangle": 0.5}
    for clip in varied_clips[:150]:
        masks = colour_masks(clip.frames)
        last = len(clip.frames) - 1
        for event in clip.events:
            # A still frame where the named shape is whole: before the event,
            # or after it for an appearance.
            frame = event.end_frame - 1 if event.kind == "appear" else event.start_frame - 1
            mask = masks[event.colour][frame]
            ys, xs = np.nonzero(mask)
            side = clips.object_side(clip.frames.shape[1])
            # A triangle's apex row may hold no pixel centre: one row short.
            assert xs.max() - xs.min() + 1 == side and 0 <= side - (ys.max() - ys.min() + 1) <= 1
            nearest = min(fill, key=lambda shape: abs(fill[shape] - mask.sum() / side**2))
            assert nearest == event.shape, (clip.caption, event)
        # A shape that nothing makes disappear is still there at the end.
        gone = {e.object_index for e in clip.events if e.kind == "disappear"}
        final = {}
        for event in clip.events:
            final[event.object_index] = event.new_colour or event.colour
        for obj, colour in final.items():
            assert (masks[colour][last].sum() > 0) == (obj not in gone)


def test_shapes_never_touch(varied_clips):
    for clip in varied_clips[:150]:
        masks = colour_masks(clip.frames)
        colours = {e.colour for e in clip.events} | {e.new_colour for e in clip.events} - {None}
        for t in range(len(clip.frames)):
            boxes = []
            for colour in colours:
                ys, xs = np.nonzero(masks[colour][t])
                if len(xs):
                    boxes.append((xs.min(), ys.min(), xs.max(), ys.max()))
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


# ------------------------------------------------------------ captions
def test_caption_tells_the_events_in_order(varied_clips):
    for clip in varied_clips:
        parsed = parse_caption(clip.caption)
        assert len(parsed) == len(clip.events)
        colours = {}       # object -> its colour now
        mentioned = set()
        for words, event in zip(parsed, clip.events, strict=True):
            assert (words["colour"], words["shape"], words["kind"]) == (
                event.colour, event.shape, event.kind)
            assert words["argument"] == (event.direction or event.new_colour)
            assert words["article"] == ("the" if event.object_index in mentioned else "a")
            mentioned.add(event.object_index)
            # Named by its colour at the time of the event.
            assert colours.get(event.object_index, event.colour) == event.colour
            if event.kind == "change_colour":
                colours[event.object_index] = event.new_colour
        # No colour names two shapes: "the blue circle" is one shape.
        owners = {}
        for event in clip.events:
            for colour in (event.colour, event.new_colour):
                if colour:
                    assert owners.setdefault(colour, event.object_index) == event.object_index


def test_word_positions_point_at_the_event_words(varied_clips):
    for clip in varied_clips:
        parsed = parse_caption(clip.caption)
        words = clip.words
        for event, expected in zip(clip.events, parsed, strict=True):
            assert event.word_positions == expected["positions"]
            named = [words[p] for p in event.word_positions]
            assert named[:3] == [event.colour, event.shape,
                                 {v: k for k, v in VERB_KINDS.items()}[event.kind]]
            assert named[3:] == [a for a in (event.direction, event.new_colour) if a]
        for word, owner in zip(words, clip.word_events, strict=True):
            assert (owner == NO_EVENT) == (word in {"a", "the", ",", "then"})


def test_captions_are_what_the_tokenizer_makes_of_them(varied_clips):
    import tensorflow as tf
    from training.core import text

    captions = [clip.caption for clip in varied_clips]
    normalized = [t.decode() for t in text.normalize(tf.constant(captions)).numpy()]
    assert normalized == captions
    assert all(c == c.lower().strip() and "  " not in c for c in captions)


def test_vocabulary_covers_exactly_the_caption_words(many_clips):
    words = vocabulary()
    assert len(words) == len(set(words)) == 20
    used = {w for clip in many_clips for w in clip.words}
    assert used == set(words)


def test_event_counts_kinds_and_attributes_are_all_used():
    many = generate_clips(1200, seed=4, reorder_fraction=0)
    counts = np.bincount([len(c.events) for c in many], minlength=4)[1:] / len(many)
    assert np.all(np.abs(counts - 1 / 3) < 0.05), counts
    events = [e for c in many for e in c.events]
    assert {e.kind for e in events} == set(clips.KINDS)
    assert {e.direction for e in events} - {None} == DIRECTION_WORDS
    assert {e.colour for e in events} == COLOUR_WORDS == {e.new_colour for e in events} - {None}
    assert {e.shape for e in events} == SHAPE_WORDS
    # Shapes named again: "the ... ".
    assert sum(e.object_index > 0 for e in events) > 300
    assert any(len({e.object_index for e in c.events}) < len(c.events) for c in many)


@pytest.mark.parametrize("max_events", [1, 2])
def test_max_events_caps_the_count(max_events):
    found = {len(c.events) for c in generate_clips(200, seed=8, max_events=max_events)}
    assert found == set(range(1, max_events + 1))


# ------------------------------------------------------------ order
def test_order_matters_same_events_in_another_order_get_another_caption(many_clips):
    many = many_clips
    by_caption, by_signature = {}, {}
    for clip in many:
        assert by_caption.setdefault(clip.caption, signature(clip)) == signature(clip)
        assert by_signature.setdefault(signature(clip), clip.caption) == clip.caption
    # The caption determines the ordered events and back: another order,
    # another caption.  And the data set holds such reorderings.
    orders = collections.defaultdict(set)
    for clip in many:
        orders[tuple(sorted(signature(clip), key=repr))].add(signature(clip))
    reordered = [group for group in orders.values() if len(group) > 1]
    assert len(reordered) > 150
    for group in reordered:
        assert len({by_signature[order] for order in group}) == len(group)


def test_odd_clips_reorder_the_clip_before():
    twins = generate_clips(400, seed=12, reorder_fraction=1.0)
    independent = generate_clips(400, seed=12, reorder_fraction=0.0)
    pairs = 0
    for index in range(0, 400, 2):
        base, twin = twins[index], twins[index + 1]
        # The fraction changes only the odd clips that become reorderings.
        assert independent[index].caption == base.caption
        if sorted(signature(base), key=repr) == sorted(signature(twin), key=repr):
            pairs += 1
            assert base.caption != twin.caption
            assert signature(base) != signature(twin)
        else:
            assert twin.caption == independent[index + 1].caption
            assert twin.frames.tobytes() == independent[index + 1].frames.tobytes()
    # Most bases of two or more events have another order, hence a twin.
    assert pairs > 100


# ------------------------------------------------------------ noise
def test_noise_changes_pixels_not_events():
    clean = generate_clips(40, seed=17)
    noisy = generate_clips(40, seed=17, noise=0.03)
    for a, b in zip(clean, noisy, strict=True):
        assert (a.caption, a.events) == (b.caption, b.events)
        difference = np.abs(a.frames.astype(int) - b.frames.astype(int)).mean()
        assert 2 < difference < 9


# ------------------------------------------------------------ splits
def test_default_splits_are_disjoint_and_the_test_set_has_1000_clips():
    splits = default_splits(1000, dev_count=100)
    assert len(splits.test) == clips.TEST_SET_SIZE >= 1000
    assert [len(splits.train), len(splits.dev)] == [1000, 100]
    digests = [{clip_digest(c) for c in part} for part in splits]
    assert len(digests[2]) == 1000
    assert not (digests[0] & digests[1] or digests[0] & digests[2] or digests[1] & digests[2])


def test_test_set_is_fixed_whatever_the_other_sizes():
    small = default_splits(3, dev_count=0, test_count=40, seed=0)
    large = default_splits(300, dev_count=20, test_count=40, seed=0)
    for a, b in zip(small.test, large.test, strict=True):
        assert a.frames.tobytes() == b.frames.tobytes() and a.caption == b.caption
    direct = generate_clips(40, seed=0, stream="test")
    assert [c.caption for c in direct] == [c.caption for c in small.test]
    other_seed = default_splits(0, test_count=40, seed=1)
    assert [c.caption for c in other_seed.test] != [c.caption for c in small.test]


def test_generation_keywords_reach_every_split():
    splits = default_splits(2, dev_count=2, test_count=2, frame_size=24, frame_count=9,
                            max_events=1)
    for part in splits:
        assert all(c.frames.shape == (9, 24, 24, 3) and len(c.events) == 1 for c in part)


# ------------------------------------------------------------ arguments, dependencies
FRAME_COUNT_RULE = "frame_count must be an int or a (low, high) pair within 8..32, got "


@pytest.mark.parametrize("keywords, message", [
    ({"count": -1}, "count must be >= 0, got -1"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"frame_size": 8}, "frame_size must be >= 16, got 8"),
    ({"frame_count": 7}, FRAME_COUNT_RULE + "7"),
    ({"frame_count": 33}, FRAME_COUNT_RULE + "33"),
    ({"frame_count": (20, 10)}, FRAME_COUNT_RULE + "(20, 10)"),
    ({"max_events": 0}, "max_events must be 1, 2 or 3, got 0"),
    ({"max_events": 4}, "max_events must be 1, 2 or 3, got 4"),
    ({"noise": -0.1}, "noise must be >= 0, got -0.1"),
    ({"reorder_fraction": 1.5}, "reorder_fraction must be in [0, 1], got 1.5"),
    ({"stream": "validation"}, "stream must be one of ['dev', 'test', 'train'], got 'validation'"),
])
def test_bad_arguments_raise(keywords, message):
    arguments = {"count": 1, "seed": 0, **keywords}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        generate_clips(**arguments)


def test_module_needs_numpy_only():
    code = ("import sys, training.video.clips as c; c.generate_clips(3, 0, noise=0.1); "
            "bad = {'tensorflow', 'keras', 'torch', 'jax', 'PIL'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_docstring_examples():
    result = doctest.testmod(clips, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
