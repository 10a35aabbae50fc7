"""Attention localization on generated scenes: how much of an object word's
attention falls in the box of the object it names.

Attention shares and hit rates are **fractions, 0..1** (they are sums of
attention weights, which sum to 1).  The caption scores (BLEU, ROUGE-L,
CIDEr-D, METEOR, exact match) every captioning task shares are in
`training.core.caption_metrics`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


# ---------------------------------------------------------------- localization
class WordLocalization(NamedTuple):
    """Where one object word's attention went (fractions 0..1).

    Attributes:
        position: the word's index ``t`` in the caption.
        object_index: the object the word names (index into ``boxes``).
        mass: share of the word's attention weight inside the object's box,
            each grid cell counted by the fraction of its area inside the box.
        hit: whether the centre of the most-attended cell (first one on ties)
            lies inside the box (half-open, like the box).
        chance: the box's share of the image area: the expected ``mass`` of
            attention spread uniformly over the image.
        hit_chance: share of grid cells whose centre lies in the box: the
            expected ``hit`` of an argmax drawn uniformly over the cells.
    """

    position: int
    object_index: int
    mass: float
    hit: bool
    chance: float
    hit_chance: float


def _cell_edges(count: int, image_size: int) -> np.ndarray:
    return np.arange(count + 1, dtype=np.float64) * (image_size / count)


def _overlap(lo: np.ndarray, hi: np.ndarray, box_lo: float, box_hi: float) -> np.ndarray:
    """Length of ``[lo, hi) ∩ [box_lo, box_hi)`` for each cell."""
    return np.clip(np.minimum(hi, box_hi) - np.maximum(lo, box_lo), 0.0, None)


def box_cells(box, grid_shape, image_size):
    """Where a box lies on the region grid (cells as `localization` lays them
    out, row-major): `(area [H*W], centre_inside [H*W])`, each cell's share
    of its area inside the box (0..1) and whether its centre is inside.

    >>> area, centre = box_cells((0, 0, 48, 32), (2, 2), 64)
    >>> area.tolist(), centre.tolist()
    ([1.0, 0.5, 0.0, 0.0], [True, False, False, False])
    """
    grid_h, grid_w = (int(v) for v in grid_shape)
    x0, y0, x1, y1 = (float(v) for v in box)
    x_edges, y_edges = _cell_edges(grid_w, image_size), _cell_edges(grid_h, image_size)
    x_centres = (x_edges[:-1] + x_edges[1:]) / 2
    y_centres = (y_edges[:-1] + y_edges[1:]) / 2
    cell_area = (image_size / grid_w) * (image_size / grid_h)
    area = np.outer(_overlap(y_edges[:-1], y_edges[1:], y0, y1),
                    _overlap(x_edges[:-1], x_edges[1:], x0, x1)) / cell_area
    centre_inside = np.outer((y0 <= y_centres) & (y_centres < y1),
                             (x0 <= x_centres) & (x_centres < x1))
    return area.reshape(-1), centre_inside.reshape(-1)


def localization(attention, word_objects, boxes, grid_shape, image_size) -> list[WordLocalization]:
    """Scores one caption's attention against the boxes of the objects its words name.

    Numpy only (no Keras or TensorFlow).  The encoder grid of ``H x W`` cells
    tiles the ``image_size x image_size`` image evenly: cell ``(i, j)`` (row
    ``i`` from the top, column ``j`` from the left) is region ``r = i * W + j``
    (row-major, as ``features.reshape(H * W, C)`` of an ``[H, W, C]`` map
    gives) and covers ``x in [j * S / W, (j + 1) * S / W)``,
    ``y in [i * S / H, (i + 1) * S / H)`` with ``S = image_size`` (cell edges
    may fall between pixels when ``S`` is not a multiple of ``H`` or ``W``).

    Args:
        attention: ``[T, R]`` non-negative weights, ``R = H * W``; row ``t`` is
            the attention used for caption word ``t`` (e.g. teacher-forced on
            the caption that ``word_objects`` describes).  Rows are normally
            softmax outputs summing to 1; each row is divided by its sum, so
            ``mass`` is a share of that word's attention either way.
        word_objects: ``[T]`` ints: the index into ``boxes`` of the object word
            ``t`` names, or -1 (`training.captioning.scenes.NO_OBJECT`) for
            words that name none; those words are left out.
        boxes: ``(x0, y0, x1, y1)`` pixel boxes, half-open (pixels
            ``x0 <= x < x1``, ``y0 <= y < y1``), as `SceneObject.box`.
        grid_shape: ``(H, W)``.
        image_size: side ``S`` of the square image, in pixels.

    Returns:
        One `WordLocalization` per word with ``word_objects[t] >= 0``, in
        caption order.

    Example: a 2x2 grid on a 64x64 image; word 1 names object 0 in the
    top-left cell, word 2 names object 1, the right half of the bottom-right cell:

        >>> attention = np.array([[0.25, 0.25, 0.25, 0.25],
        ...                       [0.70, 0.10, 0.10, 0.10],
        ...                       [0.10, 0.10, 0.60, 0.20]])
        >>> boxes = [(0, 0, 32, 32), (48, 32, 64, 64)]
        >>> for record in localization(attention, [-1, 0, 1], boxes, (2, 2), 64):
        ...     print(record.position, record.object_index, round(record.mass, 3),
        ...           record.hit, record.chance)
        1 0 0.7 True 0.25
        2 1 0.1 False 0.125
    """
    grid_h, grid_w = (int(v) for v in grid_shape)
    if grid_h < 1 or grid_w < 1:
        raise ValueError(f"grid_shape must be two positive ints, got {grid_shape}")
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    attention = np.asarray(attention, dtype=np.float64)
    word_objects = np.asarray(word_objects)
    if attention.ndim != 2 or attention.shape[1] != grid_h * grid_w:
        raise ValueError(f"attention must be [T, {grid_h * grid_w}] for a {grid_h}x{grid_w} grid,"
                         f" got shape {attention.shape}")
    if word_objects.ndim != 1 or word_objects.shape[0] != attention.shape[0]:
        raise ValueError(f"word_objects must be [T] with T = {attention.shape[0]} attention rows,"
                         f" got shape {word_objects.shape}")
    if not np.issubdtype(word_objects.dtype, np.integer) and word_objects.size:
        raise TypeError(f"word_objects must be ints, got {word_objects.dtype}")
    if not np.all(np.isfinite(attention)) or np.any(attention < 0):
        raise ValueError("attention weights must be finite and non-negative")
    boxes = [tuple(float(v) for v in box) for box in boxes]
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if not (0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size):
            raise ValueError(f"box {k} {boxes[k]} is empty or outside the"
                             f" {image_size}x{image_size} image")

    records = []
    cache = {}
    for t, k in enumerate(word_objects.tolist()):
        if k == -1:
            continue
        if not 0 <= k < len(boxes):
            raise ValueError(f"word {t} names object {k}, but there are {len(boxes)} boxes")
        if k not in cache:
            x0, y0, x1, y1 = boxes[k]
            cache[k] = (*box_cells(boxes[k], (grid_h, grid_w), image_size),
                        (x1 - x0) * (y1 - y0) / image_size ** 2)
        fraction, centre_in, chance = cache[k]
        row = attention[t]
        total = row.sum()
        if total <= 0:
            raise ValueError(f"attention row {t} sums to {total}; it needs some positive weight")
        records.append(WordLocalization(
            position=t, object_index=int(k), mass=float(row @ fraction / total),
            hit=bool(centre_in[int(np.argmax(row))]), chance=float(chance),
            hit_chance=float(centre_in.mean())))
    return records


def summarize_localization(records: Sequence[WordLocalization]) -> dict:
    """Means over word records (of one caption or of many, concatenated).

    Returns:
        ``{"mass", "hit_rate", "chance", "hit_chance", "words"}``: mean
        `WordLocalization.mass`, share of words with ``hit``, mean ``chance``
        (the mass of uniform attention, to compare ``mass`` with), mean
        ``hit_chance`` (to compare ``hit_rate`` with), all fractions 0..1, and
        the number of words.  With no words the means are NaN.

    Example:
        >>> records = [WordLocalization(1, 0, 0.7, True, 0.25, 0.25),
        ...            WordLocalization(2, 1, 0.1, False, 0.125, 0.0)]
        >>> summary = summarize_localization(records)
        >>> {key: round(value, 4) for key, value in summary.items()}
        {'mass': 0.4, 'hit_rate': 0.5, 'chance': 0.1875, 'hit_chance': 0.125, 'words': 2}
    """
    records = list(records)
    if not records:
        nan = float("nan")
        return {"mass": nan, "hit_rate": nan, "chance": nan, "hit_chance": nan, "words": 0}
    return {
        "mass": float(np.mean([r.mass for r in records])),
        "hit_rate": float(np.mean([r.hit for r in records])),
        "chance": float(np.mean([r.chance for r in records])),
        "hit_chance": float(np.mean([r.hit_chance for r in records])),
        "words": len(records),
    }
