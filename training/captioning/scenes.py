"""The default captioning data set: generated scenes of simple shapes with relational captions.

Every scene is a small RGB image of one to three objects (a circle, square or
triangle; red, green, blue, yellow or white; small or large) on a dark, plain
background, with a caption that names the objects and how they lie relative to
one another, for example (the second caption is one line)::

    a large red circle left of a small blue square
    a small green triangle above a large white square
        and the white square left of a small red circle

The data set is made here, with numpy only: no download, no TensorFlow, and the
same seed always gives the same images and captions, byte for byte.

Grammar
-------
Objects are named in left-to-right order of their centres, each as
``a <size> <colour> <shape>``.  Each object after the first is related to the
one named just before it: ``left of`` when the horizontal distance between their
centres is larger than the vertical one, otherwise ``above`` or ``below``,
saying where the earlier object lies; with three objects the second pair starts
``and the <colour> <shape>`` (no two objects of a scene share both colour and
shape, so that phrase names one object).  The generator keeps every two centres
at least ``image_size // 8`` pixels apart horizontally, and the horizontal and
vertical distances at least that much apart, so the naming order and every
relation can be seen in the image.

Coordinates
-----------
Pixel ``(x, y)`` is ``image[y, x]`` and covers the square ``[x, x + 1) x [y, y + 1)``.
A box ``(x0, y0, x1, y1)`` is half-open: it holds the pixels with
``x0 <= x < x1`` and ``y0 <= y < y1``; its centre is ``((x0 + x1) / 2, (y0 + y1) / 2)``.
A shape is drawn in its square box: a square fills it, a circle is inscribed in
it (about pi/4 of the box), a triangle has its apex at the top middle and its
base along the bottom edge (about 1/2 of the box).

Seeds and splits
----------------
Scene ``i`` of stream ``s`` (``"train"``, ``"validation"`` or ``"test"``) is drawn
from ``numpy.random.SeedSequence(seed, spawn_key=(stream_id, i, purpose))``,
one sequence for the layout and separate ones for clutter and noise.  Hence:

* the first ``n`` scenes of ``generate_scenes(m, seed)`` with ``m > n`` are
  ``generate_scenes(n, seed)``;
* the three streams never share a seed sequence, so the fixed test set
  (``split_scenes(...).test``: ``TEST_SET_SIZE`` = 1,000 scenes of the ``"test"``
  stream) is drawn independently of any number of training scenes of the same seed;
* adding clutter or noise leaves the objects and the caption of a scene as they are.

Example
-------
>>> scenes = generate_scenes(3, seed=0)
>>> scene = scenes[0]
>>> scene.image.shape, scene.image.dtype
((64, 64, 3), dtype('uint8'))
>>> scene.caption
'a small red circle below a large white square'
>>> [(o.size, o.colour, o.shape, o.box) for o in scene.objects]
[('small', 'red', 'circle', (32, 43, 44, 55)), ('large', 'white', 'square', (39, 8, 61, 30))]
>>> list(zip(scene.words, scene.word_objects))  # doctest: +NORMALIZE_WHITESPACE
[('a', -1), ('small', 0), ('red', 0), ('circle', 0), ('below', -1),
 ('a', -1), ('large', 1), ('white', 1), ('square', 1)]
>>> set(scene.words) <= set(vocabulary())
True
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from training.core.shapes import COLOURS, SHAPES, shape_mask  # noqa: F401 (re-exported)

SIZES = ("small", "large")
RELATION_WORDS = ("left", "of", "above", "below")
FUNCTION_WORDS = ("a", "the", "and")

NO_OBJECT = -1
"""`Scene.word_objects` value for a word that names no object: "a", "the", "and", relations."""

STREAMS = {"train": 0, "validation": 1, "test": 2}
TEST_SET_SIZE = 1000
MIN_IMAGE_SIZE = 32

# Box sides as fractions of the image side: 12 and 22 pixels at 64x64.
_SIDE_FRACTION = {"small": 0.1875, "large": 0.34375}
_COLOUR_JITTER = 12         # per channel, +-; far below the gaps between COLOURS
_BACKGROUND_MAX = 40        # per channel; dark, so every colour contrasts with it
_CLUTTER_GREY = (90, 160)   # mid grey (R = G = B): far from every palette colour
_CANDIDATES = 64            # random positions tried per object or clutter item
_LAYOUT_ATTEMPTS = 4
_PURPOSE_LAYOUT, _PURPOSE_CLUTTER, _PURPOSE_NOISE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """One named object of a scene.

    Attributes:
        shape: one of `SHAPES`.
        colour: one of the keys of `COLOURS`.
        size: ``"small"`` or ``"large"``.
        box: ``(x0, y0, x1, y1)`` in pixels, half-open, inside the image.
        centre: ``(x, y)``, the centre of `box`.
        rgb: the exact fill colour, `COLOURS[colour]` with a small jitter.
    """

    shape: str
    colour: str
    size: str
    box: tuple[int, int, int, int]
    centre: tuple[float, float]
    rgb: tuple[int, int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """One image with its caption.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB image.
        caption: lowercase words separated by single spaces.
        objects: the named objects, in the order the caption names them.
        word_objects: one int per caption word: the index in `objects` of the
            object that a size, colour or shape word describes, `NO_OBJECT` for
            other words.  Use it to score attention on a word against
            ``objects[i].box``.
    """

    image: np.ndarray
    caption: str
    objects: tuple[SceneObject, ...]
    word_objects: tuple[int, ...]

    @property
    def words(self) -> list[str]:
        """The caption split into words, aligned with `word_objects`."""
        return self.caption.split(" ")


class SceneSplits(NamedTuple):
    """Scenes of the three streams of one seed; see `split_scenes`."""

    train: list[Scene]
    validation: list[Scene]
    test: list[Scene]


def vocabulary() -> list[str]:
    """Every word a caption can hold, each once, in a fixed order.

    >>> len(vocabulary())
    17
    """
    return [*FUNCTION_WORDS, *RELATION_WORDS, *SIZES, *COLOURS, *SHAPES]


def object_side(size: str, image_size: int) -> int:
    """Side in pixels of the square box of a ``"small"`` or ``"large"`` object.

    >>> object_side("small", 64), object_side("large", 64)
    (12, 22)
    """
    return int(round(_SIDE_FRACTION[size] * image_size))


def min_centre_offset(image_size: int) -> int:
    """The least gap the generator keeps between centres' x, and between ``|dx|`` and ``|dy|``.

    >>> min_centre_offset(64)
    8
    """
    return image_size // 8


def _box_gap(image_size: int) -> int:
    # Empty pixels between two boxes, so that shapes never touch.
    return max(2, image_size // 32)


def relation(earlier: SceneObject, later: SceneObject) -> list[str]:
    """The relation words from the earlier-named object to the next one.

    ``["left", "of"]`` when the horizontal distance between the centres exceeds
    the vertical one, else ``["above"]`` or ``["below"]``: where `earlier` lies.
    """
    dx = later.centre[0] - earlier.centre[0]
    dy = later.centre[1] - earlier.centre[1]
    if abs(dx) > abs(dy):
        return ["left", "of"]
    return ["above"] if dy > 0 else ["below"]


def describe(objects: tuple[SceneObject, ...]) -> tuple[str, tuple[int, ...]]:
    """The caption of objects already in left-to-right order, and its `word_objects`."""
    words: list[str] = []
    refers: list[int] = []

    def say(new_words, index=NO_OBJECT):
        words.extend(new_words)
        refers.extend([index] * len(new_words))

    for index, obj in enumerate(objects):
        if index >= 2:
            previous = objects[index - 1]
            say(["and", "the"])
            say([previous.colour, previous.shape], index - 1)
        if index >= 1:
            say(relation(objects[index - 1], obj))
        say(["a"])
        say([obj.size, obj.colour, obj.shape], index)
    return " ".join(words), tuple(refers)


def _scene_rng(seed: int, stream_id: int, index: int, purpose: int) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(stream_id, index, purpose))
    return np.random.Generator(np.random.PCG64(sequence))


def _compatible(x0: int, y0: int, side: int, other: tuple, gap: int, offset: int) -> bool:
    """Whether a box at corner (x0, y0) keeps every layout rule against a placed box."""
    other_x0, other_y0, other_side = other[:3]
    apart = (x0 >= other_x0 + other_side + gap or other_x0 >= x0 + side + gap
             or y0 >= other_y0 + other_side + gap or other_y0 >= y0 + side + gap)
    # Centre offsets, doubled to stay in integers.
    dx = abs(2 * x0 + side - 2 * other_x0 - other_side)
    dy = abs(2 * y0 + side - 2 * other_y0 - other_side)
    return apart and dx >= 2 * offset and abs(dx - dy) >= 2 * offset


def _place(sides: list[int], image_size: int, rng: np.random.Generator) -> list:
    """Top-left corners for boxes of the given sides, largest first; may place fewer.

    Rejection sampling with a bounded number of tries: up to `_CANDIDATES`
    random corners per object, the whole layout restarted up to
    `_LAYOUT_ATTEMPTS` times; the last attempt keeps the objects it managed to
    place (always at least one).  Returns ``[(x0, y0, side, index into sides)]``.
    """
    gap, offset = _box_gap(image_size), min_centre_offset(image_size)
    order = sorted(range(len(sides)), key=lambda k: -sides[k])
    for _ in range(_LAYOUT_ATTEMPTS):
        placed = []
        for k in order:
            side = sides[k]
            # A plain Python scan: the first fitting corner comes after a few
            # tries, faster than numpy on a handful of candidates.
            candidates = rng.integers(0, image_size - side + 1, size=(_CANDIDATES, 2)).tolist()
            corner = next(((x0, y0) for x0, y0 in candidates
                           if all(_compatible(x0, y0, side, other, gap, offset)
                                  for other in placed)), None)
            if corner is None:
                break
            placed.append((*corner, side, k))
        if len(placed) == len(sides):
            break
    return placed


def _draw_clutter(image: np.ndarray, boxes: list, count: int, rng: np.random.Generator) -> None:
    """Grey 2x2 dots and short lines whose bounding boxes keep one pixel clear of every object box.

    An item that finds no free place in `_CANDIDATES` tries is skipped.
    """
    image_size = image.shape[0]
    longest = max(3, image_size // 8)
    kinds = rng.integers(4, size=count).tolist()  # dot, horizontal, vertical, diagonal
    lengths = rng.integers(3, longest + 1, size=count).tolist()
    greys = rng.integers(_CLUTTER_GREY[0], _CLUTTER_GREY[1] + 1, size=count).tolist()
    corners = rng.random((count, _CANDIDATES, 2))
    for kind, length, grey, unit_corners in zip(kinds, lengths, greys, corners):
        width, height = [(2, 2), (length, 1), (1, length), (length, length)][kind]
        scale = np.array([image_size - width + 1, image_size - height + 1])
        for x, y in (unit_corners * scale).astype(int).tolist():
            if all(x >= x1 + 1 or x0 >= x + width + 1 or y >= y1 + 1 or y0 >= y + height + 1
                   for x0, y0, x1, y1 in boxes):
                if kind == 3:
                    steps = np.arange(length)
                    image[y + steps, x + steps] = grey
                else:
                    image[y:y + height, x:x + width] = grey
                break


def _make_scene(seed, stream_id, index, image_size, max_objects, noise, clutter, masks) -> Scene:
    rng = _scene_rng(seed, stream_id, index, _PURPOSE_LAYOUT)
    count = int(rng.integers(1, max_objects + 1))
    # (colour, shape) pairs without repetition, so "the <colour> <shape>" names one object.
    pairs = rng.permutation(len(COLOURS) * len(SHAPES))[:count].tolist()
    sizes = [SIZES[s] for s in rng.integers(len(SIZES), size=count)]
    jitters = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=(count, 3)).tolist()
    background = rng.integers(0, _BACKGROUND_MAX + 1, size=3)
    placed = _place([object_side(s, image_size) for s in sizes], image_size, rng)

    colour_names = list(COLOURS)
    objects = []
    for x0, y0, side, k in placed:
        colour = colour_names[pairs[k] // len(SHAPES)]
        rgb = tuple(min(255, max(0, c + j)) for c, j in zip(COLOURS[colour], jitters[k]))
        objects.append(SceneObject(
            shape=SHAPES[pairs[k] % len(SHAPES)], colour=colour, size=sizes[k],
            box=(x0, y0, x0 + side, y0 + side),
            centre=(x0 + side / 2, y0 + side / 2),
            rgb=rgb))
    objects.sort(key=lambda o: o.centre)  # left to right; x never ties (min_centre_offset)

    image = np.empty((image_size, image_size, 3), dtype=np.uint8)
    image[:] = background
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        region = image[y0:y1, x0:x1]
        region[masks[obj.shape, x1 - x0]] = obj.rgb
    if clutter:
        _draw_clutter(image, [o.box for o in objects], clutter,
                      _scene_rng(seed, stream_id, index, _PURPOSE_CLUTTER))
    if noise:
        noise_rng = _scene_rng(seed, stream_id, index, _PURPOSE_NOISE)
        noisy = image + noise_rng.standard_normal(image.shape, dtype=np.float32) * (noise * 255)
        image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    caption, word_objects = describe(tuple(objects))
    return Scene(image=image, caption=caption, objects=tuple(objects), word_objects=word_objects)


def generate_scenes(count: int, seed: int, image_size: int = 64, max_objects: int = 3,
                    noise: float = 0.0, clutter: int = 0, stream: str = "train") -> list[Scene]:
    """Generate `count` scenes, deterministically from `seed`.

    Args:
        count: number of scenes.
        seed: non-negative int; the same seed gives byte-identical images and
            identical captions, and a longer run extends a shorter one.
        image_size: side H = W of the square images, at least `MIN_IMAGE_SIZE`.
        max_objects: 1 to 3; each scene has 1 to `max_objects` objects, uniformly
            (a layout that finds no room in a bounded number of tries keeps
            fewer: about 1 scene in 3,000).
        noise: standard deviation of Gaussian pixel noise, as a fraction of 255
            (0.03 is light), added to the whole image.
        clutter: distractor items per scene: grey 2x2 dots and short lines drawn
            outside every object's box, never named by the caption.
        stream: ``"train"``, ``"validation"`` or ``"test"``; the streams of one
            seed share no scene seed.

    Returns:
        A list of `Scene`, images uint8 ``[image_size, image_size, 3]``.

    >>> a = generate_scenes(2, seed=7, clutter=3, noise=0.03)
    >>> b = generate_scenes(2, seed=7, clutter=3, noise=0.03)
    >>> all((x.image == y.image).all() and x.caption == y.caption for x, y in zip(a, b))
    True
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    if not 1 <= max_objects <= 3:
        raise ValueError(f"max_objects must be 1, 2 or 3, got {max_objects}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if clutter < 0:
        raise ValueError(f"clutter must be >= 0, got {clutter}")
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {sorted(STREAMS)}, got {stream!r}")
    # Masks depend only on shape and side; integer corners let every object reuse them.
    sides = {object_side(size, image_size) for size in SIZES}
    masks = {(shape, side): shape_mask(shape, side) for shape in SHAPES for side in sides}
    return [_make_scene(seed, STREAMS[stream], index, image_size, max_objects, noise, clutter,
                        masks)
            for index in range(count)]


def split_scenes(train_count: int, test_count: int = TEST_SET_SIZE, seed: int = 0,
                 validation_count: int = 0, **generation) -> SceneSplits:
    """Training, validation and test scenes of one seed, from three disjoint streams.

    The test set depends only on `seed`, `test_count` and `generation`, never on
    `train_count`: keep ``seed=0, test_count=1000`` for the fixed test set.

    Args:
        train_count, test_count, validation_count: scenes per split.
        seed: shared by the splits; their streams never share a scene seed.
        **generation: `generate_scenes` keywords (`image_size`, `max_objects`,
            `noise`, `clutter`), the same for every split.

    >>> splits = split_scenes(5, test_count=3, validation_count=2)
    >>> [len(part) for part in splits]
    [5, 2, 3]
    """
    return SceneSplits(
        train=generate_scenes(train_count, seed, stream="train", **generation),
        validation=generate_scenes(validation_count, seed, stream="validation", **generation),
        test=generate_scenes(test_count, seed, stream="test", **generation),
    )
