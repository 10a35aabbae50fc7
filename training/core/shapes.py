"""The shapes and colours of the generated data sets (image scenes, video clips).

Numpy only: the generators that draw with these run without TensorFlow.

Example
-------
>>> SHAPES
('circle', 'square', 'triangle')
>>> sorted(COLOURS)
['blue', 'green', 'red', 'white', 'yellow']
>>> int(shape_mask("circle", 4).sum())
12
"""

from __future__ import annotations

import numpy as np

SHAPES = ("circle", "square", "triangle")
# Far apart in RGB (each pair differs by 150 or more in some channel), so they
# stay apart after resizing and blurring against a dark background.
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (40, 90, 240),
    "yellow": (235, 215, 30),
    "white": (240, 240, 240),
}


def shape_mask(shape: str, side: int) -> np.ndarray:
    """Boolean ``[side, side]`` mask of a shape drawn in a square box.

    A pixel belongs to the shape when its centre does: a square fills the
    box, a circle is inscribed in it, a triangle has its apex at the top
    middle and its base along the bottom edge.

    >>> shape_mask("triangle", 4).astype(int)
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0],
           [1, 1, 1, 1]])
    """
    centres = np.arange(side) + 0.5
    x = centres[None, :]
    y = centres[:, None]
    half = side / 2
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        return (x - half) ** 2 + (y - half) ** 2 <= half**2
    if shape == "triangle":
        # The half width grows linearly from 0 at the top edge to `half` at the bottom.
        return np.abs(x - half) <= y / 2
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
