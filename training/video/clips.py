"""The default video captioning data set: generated clips of shapes with events, told in order.

Every clip is a short RGB video (8 to 32 frames) of one to three shapes, the
circles, squares and triangles of `training.core.shapes` in their five colours,
on a dark plain background.  One to three events happen one after another,
each in its own span of frames: a shape appears (grows from nothing), moves
left, right, up or down, changes colour (fades from one colour to another) or
disappears (shrinks to nothing).  Between and around the events nothing
changes: every shape that is there stays where it is.  The caption tells the
events in the order they happen, for example::

    a red circle moves right , then a blue square appears
    a green triangle appears , then the green triangle turns yellow
    a white square disappears , then a blue circle moves up , then the blue circle turns red

so the same events in another order give another caption.  The clips are made
here with numpy only: no download, no TensorFlow, and the same seed always
gives the same frames and captions, byte for byte.

Grammar
-------
::

    caption   := event ( "," "then" event ){0,2}
    event     := article colour shape "appears"
               | article colour shape "moves" direction
               | article colour shape "turns" colour
               | article colour shape "disappears"
    article   := "a" (the first time the shape is named) | "the" (named before)
    direction := "left" | "right" | "up" | "down"

A shape is named by the colour it has when its event starts.  No colour is
worn by two shapes of one clip, ever (a shape that turns blue is the only blue
thing of its clip), so ``the blue circle`` names one shape, and a test can find
a shape's pixels by their colour.  Words are lowercase and separated by single
spaces, with the comma a word of its own: what the project's tokenizer makes
of the caption (`training.core.text.normalize`) is ``caption.split(" ")``.

Events and frames
-----------------
`Event.start_frame` and `Event.end_frame` are the half-open span ``[start, end)``
of the frames in which the event happens: frame ``t`` is in the span when the
event changes the shape between frame ``t - 1`` and frame ``t``.  So frame
``start - 1`` shows the shape before the event (every clip starts with at
least one still frame), frame ``end - 1`` shows it after: fully grown, at its
new place, in its new colour, or gone.  An event lasts 2 to 8 frames, and
every frame of its span changes the shape (a move goes at least one pixel a
frame).  Spans never overlap and come in caption order.

`Event.word_positions` are the indices in ``caption.split(" ")`` of the words
that name the event: its colour, shape, verb, and the direction or new colour;
the articles, "," and "then" name no event.  Use them to score attention: the
frames a model attends to while it writes those words should lie in the span.

Coordinates are the scenes': pixel ``(x, y)`` is ``frame[y, x]``; "up" is
towards row 0.  Shapes never touch, and no two ever overlap, whatever moves.

Seeds, splits and reorderings
-----------------------------
Clip ``i`` of stream ``s`` (``"train"``, ``"dev"`` or ``"test"``) is drawn from
``numpy.random.SeedSequence(seed, spawn_key=(stream_id, i, purpose))``, as the
scenes are.  Hence the first ``n`` clips of ``generate_clips(m, seed)`` are
``generate_clips(n, seed)``, and the fixed test set (``default_splits(...).test``:
`TEST_SET_SIZE` = 1,000 clips of the ``"test"`` stream) does not depend on how
many training clips are drawn.

So that order must be learnt, a clip at an odd index is, with probability
`reorder_fraction`, a *reordering* of the clip just before it: the same shapes
and events (kinds, directions, colours) in another order, with its own layout
and timing, and so another caption.

Example
-------
>>> clip = generate_clips(8, seed=0)[6]
>>> clip.frames.shape, clip.frames.dtype
((16, 32, 32, 3), dtype('uint8'))
>>> clip.caption
'a red square turns yellow , then a white circle moves left , then the yellow square moves right'
>>> [(e.kind, e.colour, e.shape, e.start_frame, e.end_frame, e.word_positions)
...  for e in clip.events]  # doctest: +NORMALIZE_WHITESPACE
[('change_colour', 'red', 'square', 2, 5, (1, 2, 3, 4)),
 ('move', 'white', 'circle', 7, 9, (8, 9, 10, 11)),
 ('move', 'yellow', 'square', 9, 15, (15, 16, 17, 18))]
>>> [clip.words[p] for p in clip.events[2].word_positions]
['yellow', 'square', 'moves', 'right']
>>> clip.word_events[:6]
(-1, 0, 0, 0, 0, -1)
>>> set(clip.words) <= set(vocabulary())
True
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np

from training.core.shapes import COLOURS, SHAPES, shape_mask

KINDS = ("appear", "move", "change_colour", "disappear")
VERBS = {"appear": "appears", "move": "moves", "change_colour": "turns",
         "disappear": "disappears"}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ARTICLES = ("a", "the")
CONNECTIVES = (",", "then")

NO_EVENT = -1
"""`VideoClip.word_events` value of a word that names no event: articles, "," and "then"."""

STREAMS = {"train": 0, "dev": 1, "test": 2}
TEST_SET_SIZE = 1000
MIN_FRAMES, MAX_FRAMES = 8, 32
MIN_FRAME_SIZE = 16
MAX_EVENTS = 3
MIN_EVENT_FRAMES, MAX_EVENT_FRAMES = 2, 8

_COLOUR_JITTER = 12         # per channel, +-; far below the gaps between COLOURS
_BACKGROUND_MAX = 40        # per channel; dark, so every colour contrasts with it
_REUSE_PROBABILITY = 0.35   # chance that an event befalls a shape already named
_CANDIDATES = 64            # random corners tried per shape
_LAYOUT_ATTEMPTS = 8        # fresh move distances and corners per plan
_PLAN_ATTEMPTS = 8          # fresh plans per clip; the last one has a single event
_PURPOSE_CLIP, _PURPOSE_NOISE = 0, 1


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of a clip.

    Attributes:
        kind: one of `KINDS`: ``"appear"``, ``"move"``, ``"change_colour"``, ``"disappear"``.
        shape: one of `SHAPES`.
        colour: the shape's colour when the event starts (the colour the caption names).
        start_frame, end_frame: the half-open span of the frames in which the
            event happens (see the module docstring), ``1 <= start < end <= T``.
        word_positions: indices in ``caption.split(" ")`` of the event's colour,
            shape, verb and direction or new colour words.
        direction: for a move, one of `DIRECTIONS`; else None.
        new_colour: for a change of colour, the colour it turns; else None.
        object_index: which shape of the clip; events of one shape share it.
    """

    kind: str
    shape: str
    colour: str
    start_frame: int
    end_frame: int
    word_positions: tuple[int, ...]
    direction: str | None = None
    new_colour: str | None = None
    object_index: int = 0


@dataclasses.dataclass(frozen=True, eq=False)
class VideoClip:
    """One clip with its caption and events.

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB frames, ``H = W = frame_size``.
        caption: lowercase words separated by single spaces, "," a word of its own.
        events: the events in the order they happen, which is the caption's order.
    """

    frames: np.ndarray
    caption: str
    events: tuple[Event, ...]

    @property
    def words(self) -> list[str]:
        """The caption split into words, the indices of `Event.word_positions`."""
        return self.caption.split(" ")

    @property
    def word_events(self) -> tuple[int, ...]:
        """Per caption word, the index in `events` of the event it names, or `NO_EVENT`."""
        owners = [NO_EVENT] * len(self.words)
        for index, event in enumerate(self.events):
            for position in event.word_positions:
                owners[position] = index
        return tuple(owners)


class ClipSplits(NamedTuple):
    """Clips of the three streams of one seed; see `default_splits`."""

    train: list[VideoClip]
    dev: list[VideoClip]
    test: list[VideoClip]


class _Step(NamedTuple):
    """An event before it has frames: what happens to which shape."""

    obj: int
    kind: str
    argument: str | None  # the direction of a move, the new colour of a change


class _Plan(NamedTuple):
    shapes: tuple[str, ...]
    first_colours: tuple[str, ...]
    steps: tuple[_Step, ...]


def vocabulary() -> list[str]:
    """Every word a caption can hold, each once, in a fixed order.

    >>> len(vocabulary())
    20
    """
    return [*ARTICLES, *CONNECTIVES, *VERBS.values(), *DIRECTIONS, *COLOURS, *SHAPES]


def object_side(frame_size: int) -> int:
    """Side in pixels of a shape's square box: a quarter of the frame.

    >>> object_side(32), object_side(64)
    (8, 16)
    """
    return max(4, frame_size // 4)


def _describe(plan: _Plan) -> tuple[str, list[tuple[int, ...]], list[str]]:
    """The caption of a plan, each step's word positions, and each step's colour word."""
    colours = list(plan.first_colours)
    named = set()
    words, positions, named_colours = [], [], []
    for index, step in enumerate(plan.steps):
        if index:
            words.extend(CONNECTIVES)
        words.append("the" if step.obj in named else "a")
        named.add(step.obj)
        first = len(words)
        named_colours.append(colours[step.obj])
        words.extend([colours[step.obj], plan.shapes[step.obj], VERBS[step.kind]])
        if step.argument is not None:
            words.append(step.argument)
        positions.append(tuple(range(first, len(words))))
        if step.kind == "change_colour":
            colours[step.obj] = step.argument
    return " ".join(words), positions, named_colours


def _clip_rng(seed: int, stream_id: int, index: int, purpose: int) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(stream_id, index, purpose))
    return np.random.Generator(np.random.PCG64(sequence))


def _plan(rng: np.random.Generator, max_events: int) -> _Plan:
    """What happens, in order: 1 to `max_events` steps on 1 to 3 shapes."""
    count = int(rng.integers(1, max_events + 1))
    # Colours no shape has worn yet; each event takes at most two of the five,
    # so a new shape always finds one.
    free = list(COLOURS)
    shapes, first_colours, alive, steps = [], [], [], []

    def take_colour():
        return free.pop(int(rng.integers(len(free))))

    for _ in range(count):
        living = [obj for obj, is_alive in enumerate(alive) if is_alive]
        if living and rng.random() < _REUSE_PROBABILITY:
            obj = living[int(rng.integers(len(living)))]
            kinds = [kind for kind in KINDS if kind != "appear"]
        else:
            obj = len(shapes)
            shapes.append(SHAPES[int(rng.integers(len(SHAPES)))])
            first_colours.append(take_colour())
            alive.append(True)
            kinds = list(KINDS)
        if not free:
            kinds.remove("change_colour")
        kind = kinds[int(rng.integers(len(kinds)))]
        argument = None
        if kind == "move":
            argument = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        elif kind == "change_colour":
            argument = take_colour()
        elif kind == "disappear":
            alive[obj] = False
        steps.append(_Step(obj, kind, argument))
    return _Plan(tuple(shapes), tuple(first_colours), tuple(steps))


def _possible_order(steps: tuple[_Step, ...]) -> bool:
    """Whether every shape appears before its other events and disappears after them."""
    for obj in {step.obj for step in steps}:
        kinds = [step.kind for step in steps if step.obj == obj]
        if "appear" in kinds[1:] or "disappear" in kinds[:-1]:
            return False
    return True


def _reordered(plan: _Plan, rng: np.random.Generator) -> _Plan | None:
    """The plan's steps in another possible order with another caption, or None if none."""
    caption = _describe(plan)[0]
    options = []
    for order in itertools.permutations(plan.steps):
        if _possible_order(order):
            candidate = plan._replace(steps=order)
            if _describe(candidate)[0] != caption:
                options.append(candidate)
    return options[int(rng.integers(len(options)))] if options else None


def _step_frame_cap(kind: str, side: int, max_move: int) -> int:
    # Every frame of a span must change the shape: growing or shrinking by at
    # least a pixel a frame needs side >= frames, moving needs distance >= frames.
    if kind in ("appear", "disappear"):
        return min(MAX_EVENT_FRAMES, side)
    if kind == "move":
        return min(MAX_EVENT_FRAMES, max_move)
    return MAX_EVENT_FRAMES


def _timing(plan: _Plan, frame_count: int, side: int, max_move: int,
            rng: np.random.Generator) -> list[tuple[int, int]]:
    """Consecutive, disjoint ``(start, end)`` spans, the first start >= 1."""
    caps = [_step_frame_cap(step.kind, side, max_move) for step in plan.steps]
    durations = [int(rng.integers(MIN_EVENT_FRAMES, cap + 1)) for cap in caps]
    budget = frame_count - 1  # frame 0 shows the clip before its first event
    while sum(durations) > budget:
        longest = max(range(len(durations)), key=durations.__getitem__)
        durations[longest] -= 1
    # The still frames left over go before, between and after the events.
    gaps = rng.multinomial(budget - sum(durations), [1 / (len(durations) + 1)] *
                           (len(durations) + 1)).tolist()
    spans, frame = [], 1
    for duration, gap in zip(durations, gaps):
        start = frame + gap
        spans.append((start, start + duration))
        frame = start + duration
    return spans


def _path_extent(plan: _Plan, obj: int, distances: list[int]) -> tuple[int, int, int, int]:
    """``(min dx, min dy, max dx, max dy)`` of a shape's corner along its moves."""
    x = y = 0
    xs, ys = [0], [0]
    for step, distance in zip(plan.steps, distances):
        if step.obj == obj and step.kind == "move":
            unit_x, unit_y = DIRECTIONS[step.argument]
            x, y = x + unit_x * distance, y + unit_y * distance
            xs.append(x)
            ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def _place(extents: list, side: int, frame_size: int, rng: np.random.Generator) -> list | None:
    """Start corners such that the boxes swept by the shapes stay in the frame and apart.

    Rejection sampling, `_CANDIDATES` random corners per shape, the shapes with
    the largest swept boxes first; None when one finds no room.
    """
    gap = max(2, frame_size // 16)  # empty pixels between two swept boxes
    order = sorted(range(len(extents)),
                   key=lambda obj: -(extents[obj][2] - extents[obj][0] + side)
                   * (extents[obj][3] - extents[obj][1] + side))
    corners, placed = [None] * len(extents), []
    for obj in order:
        min_dx, min_dy, max_dx, max_dy = extents[obj]
        low = (-min_dx, -min_dy)
        high = (frame_size - side - max_dx, frame_size - side - max_dy)
        if high[0] < low[0] or high[1] < low[1]:
            return None
        candidates = rng.integers(low, (high[0] + 1, high[1] + 1), size=(_CANDIDATES, 2))
        found = None
        for x, y in candidates.tolist():
            box = (x + min_dx, y + min_dy, x + max_dx + side, y + max_dy + side)
            if all(box[2] + gap <= other[0] or other[2] + gap <= box[0]
                   or box[3] + gap <= other[1] or other[3] + gap <= box[1] for other in placed):
                found = (x, y)
                placed.append(box)
                break
        if found is None:
            return None
        corners[obj] = found
    return corners


def _layout(plan, spans, frame_size, side, max_move, rng):
    """Move distances and start corners that fit, or None."""
    for _ in range(_LAYOUT_ATTEMPTS):
        distances = [int(rng.integers(max(end - start, side), max_move + 1))
                     if step.kind == "move" else 0
                     for step, (start, end) in zip(plan.steps, spans)]
        extents = [_path_extent(plan, obj, distances) for obj in range(len(plan.shapes))]
        corners = _place(extents, side, frame_size, rng)
        if corners is not None:
            return distances, corners
    return None


def _track(plan, obj, spans, distances, corner, palette, frame_count, side) -> np.ndarray:
    """int ``[T, 6]``: per frame the shape's side (0: absent), box corner x, y and RGB."""
    steps = [(step, span, distance) for step, span, distance
             in zip(plan.steps, spans, distances) if step.obj == obj]
    size = np.full(frame_count, 0 if steps[0][0].kind == "appear" else side)
    x = np.full(frame_count, corner[0])
    y = np.full(frame_count, corner[1])
    colour = np.empty((frame_count, 3))
    colour[:] = palette[plan.first_colours[obj]]
    # Steps in time order, each rewriting its span and everything after it.
    for step, (start, end), distance in steps:
        frames = end - start
        done = np.arange(1, frames + 1)  # frames of the span elapsed, 1..frames
        if step.kind == "appear":
            size[start:end] = -(-side * done // frames)  # ceil: full at the span's end
            size[end:] = side
        elif step.kind == "disappear":
            size[start:end] = side * (frames - done) // frames
            size[end:] = 0
        elif step.kind == "move":
            unit_x, unit_y = DIRECTIONS[step.argument]
            travelled = distance * done // frames  # distance >= frames: >= 1 pixel a frame
            for position, unit in ((x, unit_x), (y, unit_y)):
                before = position[start - 1]
                position[start:end] = before + unit * travelled
                position[end:] = before + unit * distance
        else:
            before, after = colour[start - 1].copy(), np.asarray(palette[step.argument], float)
            colour[start:end] = before + (after - before) * (done / frames)[:, None]
            colour[end:] = after
    return np.column_stack([size, x, y, np.floor(colour + 0.5).astype(int)])


def _draw(frames: np.ndarray, track: np.ndarray, shape: str, side: int, masks: dict) -> None:
    """Draw a shape's track, one slice assignment per run of frames where it stays the same."""
    changes = np.flatnonzero((track[1:] != track[:-1]).any(axis=1)) + 1
    bounds = [0, *changes.tolist(), len(track)]
    for first, last in zip(bounds[:-1], bounds[1:]):
        size, x, y, red, green, blue = track[first].tolist()
        if size == 0:
            continue
        # A growing or shrinking shape keeps its centre.
        x, y = x + (side - size) // 2, y + (side - size) // 2
        region = frames[first:last, y:y + size, x:x + size]
        region[:, masks[shape, size]] = (red, green, blue)


def _make_clip(seed, stream_id, index, frame_counts, frame_size, max_events, noise,
               reorder_fraction, previous_plan, masks) -> tuple[VideoClip, _Plan]:
    rng = _clip_rng(seed, stream_id, index, _PURPOSE_CLIP)
    frame_count = int(rng.integers(frame_counts[0], frame_counts[1] + 1))
    side, max_move = object_side(frame_size), frame_size // 2
    background = rng.integers(0, _BACKGROUND_MAX + 1, size=3)
    jitters = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=(len(COLOURS), 3))
    palette = dict(zip(COLOURS, np.clip(np.array(list(COLOURS.values())) + jitters, 0, 255)))
    # Drawn for every odd clip, so that reorder_fraction changes no other clip.
    reorder = index % 2 == 1 and rng.random() < reorder_fraction
    plan = _reordered(previous_plan, rng) if reorder and previous_plan is not None else None
    for attempt in range(_PLAN_ATTEMPTS):
        if plan is None:
            # A single event always fits: the last attempt cannot fail.
            plan = _plan(rng, max_events if attempt < _PLAN_ATTEMPTS - 1 else 1)
        spans = _timing(plan, frame_count, side, max_move, rng)
        layout = _layout(plan, spans, frame_size, side, max_move, rng)
        if layout is not None:
            break
        plan = None
    distances, corners = layout

    frames = np.empty((frame_count, frame_size, frame_size, 3), dtype=np.uint8)
    frames[:] = background
    for obj, shape in enumerate(plan.shapes):
        track = _track(plan, obj, spans, distances, corners[obj], palette, frame_count, side)
        _draw(frames, track, shape, side, masks)
    if noise:
        noise_rng = _clip_rng(seed, stream_id, index, _PURPOSE_NOISE)
        noisy = frames + noise_rng.standard_normal(frames.shape, dtype=np.float32) * (noise * 255)
        frames = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    caption, positions, named_colours = _describe(plan)
    events = tuple(
        Event(kind=step.kind, shape=plan.shapes[step.obj], colour=colour, start_frame=start,
              end_frame=end, word_positions=words,
              direction=step.argument if step.kind == "move" else None,
              new_colour=step.argument if step.kind == "change_colour" else None,
              object_index=step.obj)
        for step, (start, end), words, colour in zip(plan.steps, spans, positions, named_colours))
    return VideoClip(frames=frames, caption=caption, events=events), plan


def _frame_count_range(frame_count) -> tuple[int, int]:
    low, high = (frame_count, frame_count) if isinstance(frame_count, int) else frame_count
    if not MIN_FRAMES <= low <= high <= MAX_FRAMES:
        raise ValueError(f"frame_count must be an int or a (low, high) pair within "
                         f"{MIN_FRAMES}..{MAX_FRAMES}, got {frame_count}")
    return int(low), int(high)


def generate_clips(count: int, seed: int, frame_count: int | tuple[int, int] = 16,
                   frame_size: int = 32, max_events: int = MAX_EVENTS, noise: float = 0.0,
                   reorder_fraction: float = 0.5, stream: str = "train") -> list[VideoClip]:
    """Generate `count` clips, deterministically from `seed`.

    Args:
        count: number of clips.
        seed: non-negative int; the same seed gives byte-identical frames and
            identical captions and events, and a longer run extends a shorter one.
        frame_count: frames per clip T, 8 to 32; a ``(low, high)`` pair draws
            each clip's T uniformly from ``low..high``.
        frame_size: side H = W of the square frames, at least `MIN_FRAME_SIZE`;
            shapes are a quarter of it.
        max_events: 1 to 3; each clip has 1 to `max_events` events, uniformly
            (a plan that finds no room in a bounded number of tries is redrawn,
            and at last cut to one event: rarely, at small `frame_size`).
        noise: standard deviation of Gaussian pixel noise, as a fraction of 255,
            added to every frame independently.
        reorder_fraction: the chance that a clip at an odd index replays the
            events of the clip before it in another order (when they have one
            with another caption); 0 makes every clip independent.
        stream: ``"train"``, ``"dev"`` or ``"test"``; the streams of one seed
            share no clip seed.

    Returns:
        A list of `VideoClip`, frames uint8 ``[T, frame_size, frame_size, 3]``.

    >>> a = generate_clips(3, seed=7, frame_count=(8, 24), noise=0.02)
    >>> b = generate_clips(3, seed=7, frame_count=(8, 24), noise=0.02)
    >>> all((x.frames == y.frames).all() and x.events == y.events for x, y in zip(a, b))
    True
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    frame_counts = _frame_count_range(frame_count)
    if frame_size < MIN_FRAME_SIZE:
        raise ValueError(f"frame_size must be >= {MIN_FRAME_SIZE}, got {frame_size}")
    if not 1 <= max_events <= MAX_EVENTS:
        raise ValueError(f"max_events must be 1, 2 or 3, got {max_events}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0 <= reorder_fraction <= 1:
        raise ValueError(f"reorder_fraction must be in [0, 1], got {reorder_fraction}")
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {sorted(STREAMS)}, got {stream!r}")
    # Masks depend only on shape and side: one per side a growing shape passes through.
    side = object_side(frame_size)
    masks = {(shape, size): shape_mask(shape, size)
             for shape in SHAPES for size in range(1, side + 1)}
    clips, plan = [], None
    for index in range(count):
        clip, plan = _make_clip(seed, STREAMS[stream], index, frame_counts, frame_size,
                                max_events, noise, reorder_fraction, plan, masks)
        clips.append(clip)
    return clips


def default_splits(train_count: int, dev_count: int = 0, test_count: int = TEST_SET_SIZE,
                   seed: int = 0, **generation) -> ClipSplits:
    """Training, dev and test clips of one seed, from three disjoint streams.

    The test set depends only on `seed`, `test_count` and `generation`, never on
    `train_count` or `dev_count`: keep ``seed=0, test_count=1000`` for the fixed
    test set.  (Streams rather than a hash split: a hash split of generated clips
    would make the test set's size and content move with the training size.)

    Args:
        train_count, dev_count, test_count: clips per split.
        seed: shared by the splits; their streams never share a clip seed.
        **generation: `generate_clips` keywords (`frame_count`, `frame_size`,
            `max_events`, `noise`, `reorder_fraction`), the same for every split.

    >>> splits = default_splits(4, dev_count=2, test_count=3)
    >>> [len(part) for part in splits]
    [4, 2, 3]
    """
    return ClipSplits(
        train=generate_clips(train_count, seed, stream="train", **generation),
        dev=generate_clips(dev_count, seed, stream="dev", **generation),
        test=generate_clips(test_count, seed, stream="test", **generation),
    )
