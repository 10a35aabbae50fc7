"""The generated captioning scenes: determinism, geometry, pixels, captions, splits.

Captions are checked with a parser written here, independent of the module's
caption builder, and colours with a channel-rule classifier independent of the
module's palette.
"""

import doctest
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from training.captioning import scenes
from training.captioning.scenes import NO_OBJECT, generate_scenes, split_scenes, vocabulary

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZE_WORDS = {"small", "large"}
COLOUR_WORDS = {"red", "green", "blue", "yellow", "white"}
SHAPE_WORDS = {"circle", "square", "triangle"}
RELATIONS = {("left", "of"), ("above",), ("below",)}


# ------------------------------------------------------------ helpers
def parse_caption(caption):
    """Parse ``a S C Sh (REL a S C Sh (and the C Sh REL a S C Sh)?)?``.

    Returns (phrases, relations, rereferences, word_refs): phrases as
    (size, colour, shape) in caption order, relation tuples between consecutive
    phrases, the (colour, shape) after each "and the", and for every word the
    index of the phrase it describes (-1 for articles, "and" and relations).
    Raises ValueError on anything outside the grammar.
    """
    words = caption.split(" ")
    position = 0
    phrases, relations, rereferences, word_refs = [], [], [], []

    def take(allowed):
        nonlocal position
        if position >= len(words) or words[position] not in allowed:
            raise ValueError(f"expected one of {sorted(allowed)} at word {position} of {caption!r}")
        position += 1
        return words[position - 1]

    def noun_phrase():
        take({"a"})
        word_refs.append(-1)
        phrase = (take(SIZE_WORDS), take(COLOUR_WORDS), take(SHAPE_WORDS))
        word_refs.extend([len(phrases)] * 3)
        phrases.append(phrase)

    def relation():
        if position < len(words) and words[position] == "left":
            take({"left"}), take({"of"})
            word_refs.extend([-1, -1])
            return ("left", "of")
        word = take({"above", "below"})
        word_refs.append(-1)
        return (word,)

    noun_phrase()
    while position < len(words):
        if len(phrases) >= 2:
            take({"and"}), take({"the"})
            word_refs.extend([-1, -1])
            rereferences.append((take(COLOUR_WORDS), take(SHAPE_WORDS)))
            word_refs.extend([len(phrases) - 1] * 2)
        relations.append(relation())
        noun_phrase()
    if len(phrases) > 3:
        raise ValueError(f"more than three objects in {caption!r}")
    return phrases, relations, rereferences, word_refs


def classify_colour(pixels):
    """Colour names of ``[N, 3]`` uint8 pixels by channel rules; "other" when none fits."""
    r, g, b = (pixels[:, channel].astype(int) for channel in range(3))
    names = np.full(len(pixels), "other", dtype=object)
    names[(r > 180) & (g > 180) & (b > 180)] = "white"
    names[(r > 150) & (g > 150) & (b < 100)] = "yellow"
    names[(r > 150) & (g < 100) & (b < 100)] = "red"
    names[(g > 130) & (r < 100) & (b < 100)] = "green"
    names[(b > 150) & (r < 100) & (g < 140)] = "blue"
    return names


def box_centre(box):
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2


def image_digest(image):
    return hashlib.sha256(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def plain_scenes():
    return generate_scenes(600, seed=11)


# ------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_scenes():
    first = generate_scenes(40, seed=5, noise=0.04, clutter=5)
    second = generate_scenes(40, seed=5, noise=0.04, clutter=5)
    for a, b in zip(first, second, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
        assert a.caption == b.caption
        assert a.objects == b.objects
        assert a.word_objects == b.word_objects


def test_different_seeds_give_different_scenes():
    first = generate_scenes(40, seed=1)
    second = generate_scenes(40, seed=2)
    assert [s.caption for s in first] != [s.caption for s in second]
    shared = {image_digest(s.image) for s in first} & {image_digest(s.image) for s in second}
    assert not shared


def test_longer_run_extends_shorter_run():
    short = generate_scenes(7, seed=3, clutter=2)
    long = generate_scenes(30, seed=3, clutter=2)
    for a, b in zip(short, long[:7], strict=True):
        assert a.image.tobytes() == b.image.tobytes() and a.caption == b.caption


# ------------------------------------------------------------ geometry
@pytest.mark.parametrize("image_size", [32, 64, 96])
def test_boxes_inside_image_apart_and_centred(image_size):
    for scene in generate_scenes(300, seed=21, image_size=image_size):
        assert scene.image.shape == (image_size, image_size, 3)
        assert scene.image.dtype == np.uint8
        assert 1 <= len(scene.objects) <= 3
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size
            assert x1 - x0 == y1 - y0  # square boxes
            assert obj.centre == box_centre(obj.box)
        for i, a in enumerate(scene.objects):
            for b in scene.objects[i + 1:]:
                ax0, ay0, ax1, ay1 = a.box
                bx0, by0, bx1, by1 = b.box
                # At least one empty pixel between any two boxes.
                assert ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0, (a.box, b.box)
                assert (a.colour, a.shape) != (b.colour, b.shape)


def test_sizes_are_two_distinct_box_sides(plain_scenes):
    sides = {"small": set(), "large": set()}
    for scene in plain_scenes:
        for obj in scene.objects:
            sides[obj.size].add(obj.box[2] - obj.box[0])
    assert len(sides["small"]) == 1 and len(sides["large"]) == 1
    assert max(sides["small"]) * 1.5 < min(sides["large"])


def test_object_pixels_have_the_object_colour_and_shape_geometry(plain_scenes):
    expected_fill = {"circle": np.pi / 4, "triangle": 0.5, "square": 1.0}
    for scene in plain_scenes:
        covered = np.zeros(scene.image.shape[:2], dtype=bool)
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            patch = scene.image[y0:y1, x0:x1]
            filled = (patch == np.array(obj.rgb, dtype=np.uint8)).all(axis=-1)
            covered[y0:y1, x0:x1] |= filled
            assert set(classify_colour(patch[filled])) == {obj.colour}
            assert abs(filled.mean() - expected_fill[obj.shape]) < 0.07, (obj, filled.mean())
            rows = filled.sum(axis=1)
            if obj.shape == "square":
                assert filled.all()
            elif obj.shape == "circle":
                assert not filled[[0, 0, -1, -1], [0, -1, 0, -1]].any()  # corners empty
                assert filled[len(filled) // 2].all()  # the middle row spans the box
                assert (rows == rows[::-1]).all()  # symmetric top to bottom
            else:
                assert filled[-1].all()  # the base spans the box
                assert rows[0] <= 2  # the apex is narrow
                assert (np.diff(rows) >= 0).all()  # widens downwards
            assert (filled == filled[:, ::-1]).all()  # every shape is left-right symmetric
        # No bright pixel outside the drawn shapes: the background is dark and plain.
        assert scene.image[~covered].max() <= 40


# ------------------------------------------------------------ captions
def test_caption_parses_back_to_the_objects_and_true_relations(plain_scenes):
    for scene in plain_scenes:
        image_size = scene.image.shape[0]
        phrases, relations, rereferences, _ = parse_caption(scene.caption)
        assert phrases == [(o.size, o.colour, o.shape) for o in scene.objects]
        assert len(relations) == len(scene.objects) - 1
        # Named left to right, visibly so.
        centres = [box_centre(o.box) for o in scene.objects]
        assert all(b[0] - a[0] >= image_size / 8 for a, b in zip(centres, centres[1:]))
        for k, rel in enumerate(relations):
            (ax, ay), (bx, by) = centres[k], centres[k + 1]
            dx, dy = bx - ax, by - ay
            assert abs(dx - abs(dy)) >= image_size / 8  # the dominant axis is clear
            if rel == ("left", "of"):
                assert dx > abs(dy)
            elif rel == ("above",):
                assert abs(dy) > dx and ay < by
            else:
                assert rel == ("below",) and abs(dy) > dx and ay > by
        for k, (colour, shape) in enumerate(rereferences):
            assert (colour, shape) == (scene.objects[k + 1].colour, scene.objects[k + 1].shape)


def test_captions_are_lowercase_single_spaced(plain_scenes):
    for scene in plain_scenes:
        assert scene.caption == scene.caption.lower().strip()
        assert "  " not in scene.caption
        assert scene.words == scene.caption.split()


def test_word_objects_point_at_the_described_objects(plain_scenes):
    for scene in plain_scenes:
        *_, word_refs = parse_caption(scene.caption)
        assert list(scene.word_objects) == word_refs
        assert len(scene.word_objects) == len(scene.words)
        for word, index in zip(scene.words, scene.word_objects):
            if index == NO_OBJECT:
                assert word not in SIZE_WORDS | COLOUR_WORDS | SHAPE_WORDS
            else:
                obj = scene.objects[index]
                assert word in (obj.size, obj.colour, obj.shape)
        assert set(scene.word_objects) - {NO_OBJECT} == set(range(len(scene.objects)))


def test_example_captions():
    scene = generate_scenes(1, seed=0)[0]
    assert scene.caption == "a small red circle below a large white square"
    three = next(s for s in generate_scenes(50, seed=0) if len(s.objects) == 3)
    words = three.words
    assert words[words.index("and"):words.index("and") + 4] == [
        "and", "the", three.objects[1].colour, three.objects[1].shape]


def test_object_counts_attributes_and_relations_are_all_used():
    many = generate_scenes(3000, seed=4)
    counts = np.bincount([len(s.objects) for s in many], minlength=4)[1:] / len(many)
    assert np.all(np.abs(counts - 1 / 3) < 0.05), counts
    objects = [o for s in many for o in s.objects]
    assert {o.shape for o in objects} == SHAPE_WORDS
    assert {o.colour for o in objects} == COLOUR_WORDS
    assert {o.size for o in objects} == SIZE_WORDS
    assert {r for s in many for r in parse_caption(s.caption)[1]} == RELATIONS
    assert len({s.caption for s in many}) > 1500


@pytest.mark.parametrize("max_objects", [1, 2])
def test_max_objects_caps_the_count(max_objects):
    found = {len(s.objects) for s in generate_scenes(200, seed=8, max_objects=max_objects)}
    assert found == set(range(1, max_objects + 1))


def test_vocabulary_covers_exactly_the_caption_words():
    words = vocabulary()
    assert len(words) == len(set(words))
    used = {w for s in generate_scenes(2000, seed=9) for w in s.words}
    assert used == set(words)
    assert {"left", "of", "above", "below", "a", "the", "and"} <= set(words)
    assert SIZE_WORDS | COLOUR_WORDS | SHAPE_WORDS <= set(words)


# ------------------------------------------------------------ clutter and noise
def test_clutter_is_grey_outside_every_box_and_never_named():
    clean = generate_scenes(200, seed=13)
    cluttered = generate_scenes(200, seed=13, clutter=6)
    changed_total = 0
    for a, b in zip(clean, cluttered, strict=True):
        assert (a.caption, a.objects, a.word_objects) == (b.caption, b.objects, b.word_objects)
        changed = (a.image != b.image).any(axis=-1)
        changed_total += changed.sum()
        for x0, y0, x1, y1 in (o.box for o in b.objects):
            # One clear pixel around every box.
            assert not changed[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1].any()
        pixels = b.image[changed].astype(int)
        assert (pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all()
        assert ((pixels >= 80) & (pixels <= 170)).all()
        assert set(classify_colour(b.image[changed])) <= {"other"}
    assert changed_total > 200 * 6 * 2  # most items drawn, dots of 4 pixels, lines of 3+


def test_noise_changes_pixels_not_objects():
    clean = generate_scenes(100, seed=17)
    noisy = generate_scenes(100, seed=17, noise=0.03)
    differences = []
    for a, b in zip(clean, noisy, strict=True):
        assert (a.caption, a.objects) == (b.caption, b.objects)
        differences.append(np.abs(a.image.astype(int) - b.image.astype(int)).mean())
        for obj in b.objects:
            x0, y0, x1, y1 = obj.box
            drawn = (a.image[y0:y1, x0:x1] == np.array(obj.rgb, dtype=np.uint8)).all(axis=-1)
            names = classify_colour(b.image[y0:y1, x0:x1][drawn])
            assert (names == obj.colour).mean() > 0.9
    # 0.03 * 255 = 7.65 standard deviation; clipping at the dark background trims it.
    assert 3 < np.mean(differences) < 9


# ------------------------------------------------------------ splits
def test_test_stream_never_overlaps_training_stream():
    splits = split_scenes(5000, seed=0)
    assert len(splits.test) == scenes.TEST_SET_SIZE >= 1000
    assert splits.validation == []
    train = {image_digest(s.image) for s in splits.train}
    test = {image_digest(s.image) for s in splits.test}
    assert len(test) == 1000 and not train & test


def test_test_set_is_fixed_whatever_the_training_size():
    small = split_scenes(3, test_count=50, validation_count=20, seed=0)
    large = split_scenes(400, test_count=50, validation_count=20, seed=0)
    for a, b in zip(small.test, large.test, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
    direct = generate_scenes(50, seed=0, stream="test")
    assert [s.caption for s in direct] == [s.caption for s in small.test]
    streams = [{image_digest(s.image) for s in part} for part in large]
    assert not (streams[0] & streams[1] or streams[0] & streams[2] or streams[1] & streams[2])


def test_generation_keywords_reach_every_split():
    splits = split_scenes(2, test_count=2, validation_count=2, image_size=48, max_objects=1)
    for part in splits:
        assert all(s.image.shape == (48, 48, 3) and len(s.objects) == 1 for s in part)


# ------------------------------------------------------------ arguments, dependencies
@pytest.mark.parametrize("keywords, message", [
    ({"count": -1}, "count must be >= 0, got -1"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"image_size": 16}, "image_size must be >= 32, got 16"),
    ({"max_objects": 0}, "max_objects must be 1, 2 or 3, got 0"),
    ({"max_objects": 4}, "max_objects must be 1, 2 or 3, got 4"),
    ({"noise": -0.1}, "noise must be >= 0, got -0.1"),
    ({"clutter": -1}, "clutter must be >= 0, got -1"),
    ({"stream": "dev"}, "stream must be one of ['test', 'train', 'validation'], got 'dev'"),
])
def test_bad_arguments_raise(keywords, message):
    arguments = {"count": 1, "seed": 0, **keywords}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        generate_scenes(**arguments)


def test_module_needs_numpy_only():
    code = ("import sys, training.captioning.scenes as s; s.generate_scenes(2, 0, clutter=2, "
            "noise=0.1); bad = {'tensorflow', 'keras', 'torch', 'jax'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_docstring_examples():
    result = doctest.testmod(scenes, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
