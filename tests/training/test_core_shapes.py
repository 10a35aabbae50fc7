"""The shapes and colours both generated data sets draw (`training.core.shapes`)."""

import doctest
import subprocess
import sys

import numpy as np
import pytest

from training.core import shapes

REPO_ROOT = __file__.rsplit("/tests/", 1)[0]


def test_docstring_examples():
    result = doctest.testmod(shapes, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("side", [1, 4, 9, 16])
def test_masks_fill_their_share_of_the_box(side):
    square, circle, triangle = (shapes.shape_mask(name, side)
                                for name in ("square", "circle", "triangle"))
    assert square.all() and square.shape == (side, side)
    assert circle.dtype == bool and triangle.dtype == bool
    if side >= 9:  # pi/4 and 1/2 of the box, up to the pixel grid
        assert abs(circle.mean() - np.pi / 4) < 0.08
        assert abs(triangle.mean() - 0.5) < 0.08
    np.testing.assert_array_equal(circle, circle[:, ::-1])  # symmetric left to right
    np.testing.assert_array_equal(triangle, triangle[:, ::-1])


def test_unknown_shape_raises():
    with pytest.raises(ValueError, match="unknown shape 'star'"):
        shapes.shape_mask("star", 4)


def test_both_data_sets_draw_the_core_shapes():
    from training.captioning import scenes
    from training.video import clips

    assert scenes.SHAPES is clips.SHAPES is shapes.SHAPES
    assert scenes.COLOURS is clips.COLOURS is shapes.COLOURS


def test_module_needs_numpy_only():
    code = ("import sys, training.core.shapes as s; s.shape_mask('circle', 5); "
            "bad = {'tensorflow', 'keras', 'torch', 'jax', 'PIL'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
