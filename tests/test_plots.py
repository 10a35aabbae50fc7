"""Attention pictures: image captioning panels, video frame strips, upsampled maps."""

import struct

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_attention.plots import (  # noqa: E402
    _line_attention_figure,
    plot_line_attention,
    _frame_attention_figure,
    _image_attention_figure,
    plot_frame_attention,
    plot_image_attention,
    upsample_attention,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) in pixels from the PNG's IHDR chunk; checks the magic bytes."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG: {head[:8]!r}"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def one_hot_grids(cells, h=2, w=2):
    """`[T, h, w]` grids, each all zero but 1 at its (row, column) cell."""
    grids = np.zeros((len(cells), h, w), dtype="float32")
    for index, (row, column) in enumerate(cells):
        grids[index, row, column] = 1.0
    return grids


def gray_image(size=48, level=128):
    return np.full((size, size, 3), level, dtype=np.uint8)


def render(figure):
    """The drawn figure as a `[rows, columns, 3]` float array in [0, 1]."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].astype("float64") / 255.0


def panel_pixels(figure, pixels, axes):
    """The pixels of one axes' box (display origin is bottom-left, array rows go down)."""
    box = axes.get_window_extent()
    rows = pixels.shape[0]
    top, bottom = int(round(rows - box.y1)), int(round(rows - box.y0))
    left, right = int(round(box.x0)), int(round(box.x1))
    return pixels[top:bottom, left:right]


def quadrant_means(panel, margin=0.1):
    """Mean brightness of the four quadrants (inner part, away from edges and the midlines)."""
    brightness = panel.mean(axis=-1)
    rows, columns = brightness.shape
    mr, mc = int(rows * margin), int(columns * margin)
    half_r, half_c = rows // 2, columns // 2
    return {
        (0, 0): brightness[mr:half_r - mr, mc:half_c - mc].mean(),
        (0, 1): brightness[mr:half_r - mr, half_c + mc:columns - mc].mean(),
        (1, 0): brightness[half_r + mr:rows - mr, mc:half_c - mc].mean(),
        (1, 1): brightness[half_r + mr:rows - mr, half_c + mc:columns - mc].mean(),
    }


# --- upsample_attention ---------------------------------------------------------------


def test_upsample_matches_hand_computed_bilinear_4x4():
    # Half-pixel centres: output rows 0..3 sit at source rows 0 (clamped), 0.25, 0.75, 1.
    profile = np.array([1.0, 0.75, 0.25, 0.0])
    expected = np.outer(profile, profile)
    grid = np.array([[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(upsample_attention(grid, 4, mode="max"), expected, atol=1e-6)
    np.testing.assert_allclose(upsample_attention(grid, (4, 4)), expected / expected.sum(),
                               atol=1e-6)


@pytest.mark.parametrize("cell", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("mode", ["spread", "max"])
def test_upsample_puts_one_hot_mass_in_its_quadrant(cell, mode):
    grid = np.zeros((2, 2))
    grid[cell] = 1.0
    upsampled = upsample_attention(grid, (64, 64), mode=mode)
    assert upsampled.shape == (64, 64)
    assert upsampled.dtype == np.float32
    quadrants = {
        (r, c): upsampled[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] for r in (0, 1) for c in (0, 1)
    }
    hot = quadrants.pop(cell)
    for other, values in quadrants.items():
        assert hot.mean() > 2.0 * values.mean(), (cell, other, hot.mean(), values.mean())
    # Most of the mass stays in the hot region's own block.
    assert hot.sum() / upsampled.sum() > 0.7
    assert np.unravel_index(np.argmax(upsampled), upsampled.shape) in {
        (r, c) for r in range(cell[0] * 32, (cell[0] + 1) * 32)
        for c in range(cell[1] * 32, (cell[1] + 1) * 32)
    }


def test_upsample_spread_preserves_the_sum():
    rng = np.random.default_rng(0)
    grid = rng.random((3, 5))
    grid /= grid.sum()
    for size in [(64, 64), (10, 7), (9, 15), 33]:
        upsampled = upsample_attention(grid, size)
        assert upsampled.sum() == pytest.approx(1.0, abs=1e-5)
        assert upsampled.min() >= 0.0
    unnormalised = upsample_attention(grid * 3.0, (20, 20))
    assert unnormalised.sum() == pytest.approx(3.0, abs=1e-4)


def test_upsample_spread_of_a_uniform_grid_is_uniform_over_pixels():
    upsampled = upsample_attention(np.full((3, 3), 1.0 / 9.0), (30, 30))
    np.testing.assert_allclose(upsampled, np.full((30, 30), 1.0 / 900.0), rtol=1e-5)


def test_upsample_max_mode_peaks_at_one_and_keeps_zeros():
    rng = np.random.default_rng(1)
    upsampled = upsample_attention(rng.random((4, 4)) * 0.01, (16, 24), mode="max")
    assert upsampled.shape == (16, 24)
    assert upsampled.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(upsample_attention(np.zeros((2, 2)), 8, mode="max"),
                                  np.zeros((8, 8)))
    np.testing.assert_array_equal(upsample_attention(np.zeros((2, 2)), 8), np.zeros((8, 8)))


def test_upsample_identity_size_returns_the_grid():
    grid = np.arange(6, dtype="float64").reshape(2, 3)
    grid /= grid.sum()
    np.testing.assert_allclose(upsample_attention(grid, (2, 3)), grid, atol=1e-7)


@pytest.mark.parametrize("weights, size, mode, message", [
    (np.ones(4), (8, 8), "spread", "2-D"),
    (np.ones((2, 2, 2)), (8, 8), "spread", "2-D"),
    (np.ones((2, 2)), (0, 8), "spread", "positive"),
    (np.ones((2, 2)), (8, 8, 8), "spread", "positive"),
    (np.ones((2, 2)), (8, 8), "mean", "mode"),
])
def test_upsample_rejects_bad_arguments(weights, size, mode, message):
    with pytest.raises(ValueError, match=message):
        upsample_attention(weights, size, mode=mode)


# --- plot_image_attention -------------------------------------------------------------


def test_image_attention_writes_png_and_closes_figure(tmp_path):
    path = str(tmp_path / "caption.png")
    open_before = plt.get_fignums()
    grids = one_hot_grids([(0, 0), (1, 1), (0, 1)], h=2, w=2)
    result = plot_image_attention(gray_image(), grids, ["a", "red", "square"], path,
                                  title="a red square")
    assert result == path
    width, height = png_size(path)
    assert width > 100 and height > 100
    assert plt.get_fignums() == open_before


def test_image_attention_png_grows_with_panels(tmp_path):
    def size(count, columns=5):
        path = str(tmp_path / f"panels_{count}_{columns}.png")
        grids = np.full((count, 3, 3), 1.0 / 9.0)
        plot_image_attention(gray_image(), grids, [f"w{i}" for i in range(count)], path,
                             columns=columns)
        return png_size(path)

    two, four, nine = size(2), size(4), size(9)
    assert four[0] > two[0]  # 3 -> 5 panels in one row: wider
    assert nine[1] > four[1]  # 5 -> 10 panels, 5 a row: a second row
    assert nine[0] == pytest.approx(four[0], rel=0.05)
    narrow = size(4, columns=2)  # 5 panels, 2 a row: 3 rows
    assert narrow[1] > four[1] and narrow[0] < four[0]


def test_image_attention_overlay_is_brightest_where_the_attention_is():
    cells = [(0, 1), (1, 0), (1, 1)]
    figure, word_axes = _image_attention_figure(gray_image(64), one_hot_grids(cells),
                                                ["top-right", "bottom-left", "bottom-right"])
    try:
        pixels = render(figure)
        assert len(word_axes) == len(cells)
        for axes, cell in zip(word_axes, cells):
            means = quadrant_means(panel_pixels(figure, pixels, axes))
            hot = means.pop(cell)
            for other, value in means.items():
                assert hot > value + 0.2, (cell, other, hot, value)
            # The overlay drawn is the word's upsampled map, scaled to peak 1.
            overlay = np.asarray(axes.get_images()[-1].get_array())
            expected = upsample_attention(one_hot_grids([cell])[0], (64, 64), mode="max")
            np.testing.assert_allclose(overlay, expected, atol=1e-6)
    finally:
        plt.close(figure)


def test_image_attention_first_panel_is_the_plain_image():
    image = gray_image(32)
    figure, word_axes = _image_attention_figure(image, one_hot_grids([(0, 0)]), ["a"])
    try:
        pixels = render(figure)
        first = [axes for axes in figure.axes if axes not in word_axes][0]
        assert len(first.get_images()) == 1
        plain = panel_pixels(figure, pixels, first)
        inner = plain[3:-3, 3:-3]
        np.testing.assert_allclose(inner, 128 / 255.0, atol=2 / 255.0)
    finally:
        plt.close(figure)


def test_image_attention_float_and_uint8_images_draw_the_same():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    grids = rng.random((2, 3, 4))
    drawn = []
    for version in (image, image.astype("float32") / 255.0, image.astype("float64")):
        figure, _ = _image_attention_figure(version, grids, ["x", "y"])
        try:
            drawn.append(render(figure))
        finally:
            plt.close(figure)
    np.testing.assert_allclose(drawn[0], drawn[1], atol=1.5 / 255.0)
    np.testing.assert_allclose(drawn[0], drawn[2], atol=1.5 / 255.0)


@pytest.mark.parametrize("image, attention, words, message", [
    (np.zeros((32, 32), np.uint8), np.ones((1, 2, 2)), ["a"], r"\[H, W, 3\]"),
    (np.zeros((32, 32, 4), np.uint8), np.ones((1, 2, 2)), ["a"], r"\[H, W, 3\]"),
    (np.zeros((2, 32, 32, 3), np.uint8), np.ones((1, 2, 2)), ["a"], r"\[H, W, 3\]"),
    (np.zeros((32, 32, 3), np.uint8), np.ones((2, 2)), ["a", "b"], "3-D"),
    (np.zeros((32, 32, 3), np.uint8), np.ones((1, 1, 2, 2)), ["a"], "3-D"),
    (np.zeros((32, 32, 3), np.uint8), np.ones((3, 2, 2)), ["a", "b"], "3 maps but 2 words"),
])
def test_image_attention_rejects_bad_shapes(tmp_path, image, attention, words, message):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=message):
        plot_image_attention(image, attention, words, str(path))
    assert not path.exists()


# --- plot_frame_attention -------------------------------------------------------------


def frames_of(count, size=20):
    levels = np.linspace(0, 255, count).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, size, size, 3)).copy()


def test_frame_attention_writes_png_and_closes_figure(tmp_path):
    path = str(tmp_path / "video.png")
    open_before = plt.get_fignums()
    attention = np.array([[0.7, 0.2, 0.1, 0.0], [0.0, 0.1, 0.2, 0.7]])
    assert plot_frame_attention(frames_of(4), attention, ["jump", "land"], path,
                                title="a jump") == path
    width, height = png_size(path)
    assert width > 100 and height > 50
    assert plt.get_fignums() == open_before


def test_frame_attention_png_grows_with_frames_and_words(tmp_path):
    def size(frames, words):
        path = str(tmp_path / f"v_{frames}_{words}.png")
        attention = np.full((words, frames), 1.0 / frames)
        plot_frame_attention(frames_of(frames), attention, [f"w{i}" for i in range(words)], path)
        return png_size(path)

    base = size(3, 2)
    more_frames, more_words = size(8, 2), size(3, 7)
    assert more_frames[0] > base[0]
    assert more_words[1] > base[1]
    assert more_words[0] == base[0]


def test_frame_attention_heat_map_rows_are_words_and_columns_line_up_with_frames():
    attention = np.array([[0.6, 0.3, 0.1, 0.0, 0.0],
                          [0.0, 0.0, 0.1, 0.3, 0.6],
                          [0.0, 0.9, 0.1, 0.0, 0.0]])
    words = ["start", "end", "middle"]
    figure, frame_axes, heat_axes = _frame_attention_figure(frames_of(5), attention, words)
    try:
        figure.canvas.draw()
        np.testing.assert_allclose(np.asarray(heat_axes.get_images()[0].get_array()), attention)
        assert [label.get_text() for label in heat_axes.get_yticklabels()] == words
        assert len(frame_axes) == 5
        heat_box = heat_axes.get_window_extent()
        column = heat_box.width / 5
        for index, axes in enumerate(frame_axes):
            box = axes.get_window_extent()
            assert box.y0 >= heat_box.y1 - 1  # the strip sits above the heat map
            centre = (box.x0 + box.x1) / 2
            assert abs(centre - (heat_box.x0 + (index + 0.5) * column)) < 0.25 * column
            np.testing.assert_allclose(np.asarray(axes.get_images()[0].get_array()),
                                       frames_of(5)[index] / 255.0, atol=1e-6)
    finally:
        plt.close(figure)


def test_frame_attention_heat_map_is_brightest_at_the_attended_frame():
    attention = np.array([[0.05, 0.05, 0.9], [0.9, 0.05, 0.05]])
    figure, _, heat_axes = _frame_attention_figure(frames_of(3), attention, ["late", "early"])
    try:
        pixels = render(figure)
        heat = panel_pixels(figure, pixels, heat_axes).mean(axis=-1)
        rows, columns = heat.shape

        def cell(row, column):
            return heat[int((row + 0.5) * rows / 2), int((column + 0.5) * columns / 3)]

        # viridis: high weights are bright yellow, low ones dark purple.
        assert cell(0, 2) > cell(0, 0) + 0.3 and cell(0, 2) > cell(0, 1) + 0.3
        assert cell(1, 0) > cell(1, 1) + 0.3 and cell(1, 0) > cell(1, 2) + 0.3
    finally:
        plt.close(figure)


@pytest.mark.parametrize("frames, attention, words, message", [
    (np.zeros((3, 16, 16), np.uint8), np.ones((1, 3)), ["a"], r"\[F, H, W, 3\]"),
    (np.zeros((16, 16, 3), np.uint8), np.ones((1, 16)), ["a"], r"\[F, H, W, 3\]"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.ones(3), ["a"], "2-D"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.ones((1, 3, 1)), ["a"], "2-D"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.ones((2, 3)), ["a"], "2 rows but 1 words"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.ones((1, 4)), ["a"], "4 columns but there are 3"),
])
def test_frame_attention_rejects_bad_shapes(tmp_path, frames, attention, words, message):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=message):
        plot_frame_attention(frames, attention, words, str(path))
    assert not path.exists()


def test_line_attention_writes_png_and_closes_figure(tmp_path):
    path = str(tmp_path / "line.png")
    open_before = plt.get_fignums()
    attention = np.eye(3, 10)[:, None, :]  # [T, 1, w]: a grid of one row
    assert plot_line_attention(np.full((32, 96, 3), 128, np.uint8), attention,
                               ["4", " ", "2"], path, title="4 2") == path
    width, height = png_size(path)
    assert width > height > 50
    assert plt.get_fignums() == open_before


def test_line_attention_rows_are_tokens_and_columns_line_up_with_pixels():
    image = np.zeros((32, 160, 3), np.uint8)
    image[:, 40:60] = 255  # one bright character between x 40 and 60
    attention = np.zeros((2, 40))
    attention[0, 10:15] = 0.2  # columns 10..14 are pixels 40..60
    attention[1, 30] = 1.0
    figure, image_axes, heat_axes = _line_attention_figure(image, attention, ["i", " "])
    try:
        figure.canvas.draw()
        np.testing.assert_allclose(np.asarray(heat_axes.get_images()[0].get_array()),
                                   attention)
        assert [label.get_text() for label in heat_axes.get_yticklabels()] == ["i", "␣"]
        image_box, heat_box = image_axes.get_window_extent(), heat_axes.get_window_extent()
        assert abs(image_box.x0 - heat_box.x0) < 1 and abs(image_box.x1 - heat_box.x1) < 1
        assert image_box.y0 >= heat_box.y1 - 1  # the image above its heat map
        pixels = render(figure)
        heat = panel_pixels(figure, pixels, heat_axes).mean(axis=-1)
        line = panel_pixels(figure, pixels, image_axes).mean(axis=-1)
        rows, columns = heat.shape
        bright_columns = np.flatnonzero(line.mean(axis=0) > 0.5)
        lit = np.flatnonzero(heat[int(0.25 * rows)] > heat[int(0.25 * rows)].min() + 0.3)
        # Token 0's attention lies under the bright character, within a pixel column.
        assert abs(lit.min() - bright_columns.min()) <= 2
        assert abs(lit.max() - bright_columns.max()) <= 2
        assert columns == line.shape[1]
    finally:
        plt.close(figure)


@pytest.mark.parametrize("image, attention, tokens, message", [
    (np.zeros((32, 64), np.uint8), np.ones((1, 16)), ["a"], r"\[H, W, 3\]"),
    (np.zeros((32, 64, 3), np.uint8), np.ones((2, 16)), ["a"], r"for 1 tokens, got shape"),
    (np.zeros((32, 64, 3), np.uint8), np.ones((1, 2, 16)), ["a"], r"\[T, w\]"),
])
def test_line_attention_rejects_bad_shapes(tmp_path, image, attention, tokens, message):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=message):
        plot_line_attention(image, attention, tokens, str(path))
    assert not path.exists()
