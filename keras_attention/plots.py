"""Seeing the attention: heat-map PNGs and a compact terminal view.

Shared by every task: source words, image regions or frames on one axis,
output words on the other.
"""

import numpy as np


def plot_attention(weights, source_labels, output_labels, path, title=None):
    """Draws an alignment matrix as a PNG.

    Args:
        weights: `[T_out, T_in]` attention weights (rows: output tokens).
        source_labels: T_in labels (source words, regions, frames).
        output_labels: T_out labels (output words).
        path: Where the PNG goes.
        title: Optional title.

    Returns:
        `path`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> plot_attention(np.eye(2), ["la", "casa"], ["the", "house"], path) == path
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype="float32")
    if weights.shape != (len(output_labels), len(source_labels)):
        raise ValueError(
            f"weights of shape {weights.shape} do not match {len(output_labels)} output labels "
            f"x {len(source_labels)} source labels"
        )
    width = min(2.0 + 0.45 * len(source_labels), 30.0)
    height = min(1.5 + 0.4 * len(output_labels), 30.0)
    figure, axes = plt.subplots(figsize=(width, height))
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-6),
                        aspect="auto")
    axes.set_xticks(range(len(source_labels)))
    axes.set_xticklabels(source_labels, rotation=60, ha="right")
    axes.set_yticks(range(len(output_labels)))
    axes.set_yticklabels(output_labels)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.03)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def attention_text_view(weights, source_labels, output_labels, top=2, bar_width=10):
    """One line per output token: its strongest source tokens with bars.

    Example:

    >>> print(attention_text_view(np.array([[0.9, 0.1], [0.2, 0.8]]),
    ...                           ["la", "casa"], ["the", "house"], top=1))
    the    <- la 0.90 #########
    house  <- casa 0.80 ########
    """
    weights = np.asarray(weights, dtype="float32")
    pad = max((len(label) for label in output_labels), default=0) + 2
    lines = []
    for label, row in zip(output_labels, weights):
        best = np.argsort(-row)[:top]
        parts = [
            f"{source_labels[i]} {row[i]:.2f} {'#' * int(round(row[i] * bar_width))}"
            for i in best if i < len(source_labels)
        ]
        lines.append(f"{label:<{pad}}<- " + "  ".join(parts))
    return "\n".join(lines)


def _bilinear_matrix(source, target):
    """`[target, source]` matrix of bilinear weights (half-pixel centres, edges clamped).

    Each row sums to 1: output pixel `i` sits at source coordinate
    `(i + 0.5) * source / target - 0.5` and mixes its two nearest source cells.
    """
    coords = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0.0, source - 1.0)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, source - 1)
    fraction = coords - low
    matrix = np.zeros((target, source), dtype="float64")
    rows = np.arange(target)
    np.add.at(matrix, (rows, low), 1.0 - fraction)
    np.add.at(matrix, (rows, high), fraction)
    return matrix


def upsample_attention(weights, size, mode="spread"):
    """Bilinearly upsamples an `[h, w]` attention grid to `[H, W]` pixels.

    Interpolation uses half-pixel centres (each region's value sits at its
    centre, edges are clamped), so the map is smooth and a region's weight
    stays over its own block of pixels.

    Args:
        weights: `[h, w]` non-negative attention weights over a grid of regions.
        size: `(H, W)` of the output, or one int for a square output.
        mode: How the upsampled map is scaled.
            `"spread"` (default): each region's weight is spread over its
            pixels, so the map sums to `weights.sum()` (1 for a softmax over
            the regions) and each pixel holds roughly `weight / pixels per region`.
            `"max"`: scaled so its largest value is 1 (for display; all zeros
            stay zeros).

    Returns:
        `[H, W]` float32 map.

    Raises:
        ValueError: `weights` is not 2-D, `size` is not positive, or `mode` is unknown.

    Example:

    >>> grid = np.array([[1.0, 0.0], [0.0, 0.0]])
    >>> print(upsample_attention(grid, 4, mode="max"))
    [[1.     0.75   0.25   0.    ]
     [0.75   0.5625 0.1875 0.    ]
     [0.25   0.1875 0.0625 0.    ]
     [0.     0.     0.     0.    ]]
    >>> spread = upsample_attention(grid, (64, 32))
    >>> spread.shape, round(float(spread.sum()), 4)
    ((64, 32), 1.0)
    """
    weights = np.asarray(weights, dtype="float64")
    if weights.ndim != 2:
        raise ValueError(f"weights must be a 2-D [h, w] grid, got shape {weights.shape}")
    if weights.size == 0:
        raise ValueError(f"weights must not be empty, got shape {weights.shape}")
    if np.isscalar(size) or np.ndim(size) == 0:
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"size must be a positive (H, W) or int, got {size}")
    if mode not in ("spread", "max"):
        raise ValueError(f"mode must be 'spread' or 'max', got {mode!r}")
    rows = _bilinear_matrix(weights.shape[0], size[0])
    columns = _bilinear_matrix(weights.shape[1], size[1])
    upsampled = rows @ weights @ columns.T
    if mode == "spread":
        total = upsampled.sum()
        if total != 0.0:
            upsampled *= weights.sum() / total
    else:
        peak = np.abs(upsampled).max()
        if peak > 0.0:
            upsampled /= peak
    return upsampled.astype("float32")


def _as_rgb(image, what):
    """uint8 or float `[..., 3]` image as float in [0, 1] (floats above 1 read as 0..255)."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array.astype("float32") / 255.0
    array = array.astype("float32")
    if array.size and float(np.nanmax(array)) > 1.0:
        array = array / 255.0
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} has non-finite values")
    return np.clip(array, 0.0, 1.0)


def _image_attention_figure(image, attention, words, title=None, columns=5, cmap="gray",
                            alpha=0.6):
    """Builds (does not save) the figure of `plot_image_attention`: (figure, word axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
    attention = np.asarray(attention, dtype="float32")
    if attention.ndim != 3:
        raise ValueError(f"attention must be 3-D [T, h, w] (one grid per word), got shape "
                         f"{attention.shape}")
    words = list(words)
    if attention.shape[0] != len(words):
        raise ValueError(f"attention has {attention.shape[0]} maps but {len(words)} words given")
    if int(columns) < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    rgb = _as_rgb(image, "image")
    height, width = rgb.shape[:2]
    panels = len(words) + 1
    columns = min(int(columns), panels)
    rows = -(-panels // columns)
    panel_width = 2.4
    panel_height = panel_width * height / max(width, 1) + 0.35
    figure, grid = plt.subplots(rows, columns, squeeze=False,
                                figsize=(panel_width * columns,
                                         panel_height * rows + (0.4 if title else 0.0)))
    axes_list = grid.ravel()
    extent = (0, width, height, 0)
    axes_list[0].imshow(rgb, extent=extent)
    axes_list[0].set_title("image", fontsize=9)
    word_axes = []
    for axes, word, grid_weights in zip(axes_list[1:], words, attention):
        overlay = upsample_attention(grid_weights, (height, width), mode="max")
        axes.imshow(rgb, extent=extent)
        axes.imshow(overlay, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, extent=extent,
                    interpolation="bilinear")
        axes.set_title(str(word), fontsize=9)
        word_axes.append(axes)
    for axes in axes_list:
        axes.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure, word_axes


def plot_image_attention(image, attention, words, path, title=None, columns=5, cmap="gray",
                         alpha=0.6):
    """Draws where each output word looked in an image, as in Show, Attend and Tell.

    The first panel is the plain image; then one panel per word: the image
    with the word's attention grid upsampled bilinearly to the image size
    (`upsample_attention(..., mode="max")`, so each panel spans the whole
    colour range) overlaid semi-transparently, the word as the panel title.
    With the default gray colormap the attended regions are the brightest.

    Args:
        image: `[H, W, 3]` image, uint8 or float (floats in [0, 1]; floats
            above 1 are read as 0..255).
        attention: `[T, h, w]` attention weights over an `h x w` grid of image
            regions, one grid per output word.
        words: T output words (panel titles).
        path: Where the PNG goes.
        title: Optional figure title.
        columns: Panels per row (the plain image counts as one panel).
        cmap: Matplotlib colormap of the overlay ("gray" or "jet").
        alpha: Opacity of the overlay.

    Returns:
        `path`.

    Raises:
        ValueError: `image` is not `[H, W, 3]`, `attention` is not 3-D, or its
            length differs from the number of words.

    Example:

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "caption.png")
    >>> image = np.zeros((32, 32, 3), dtype=np.uint8)
    >>> attention = np.full((2, 2, 2), 0.25)
    >>> plot_image_attention(image, attention, ["a", "square"], path) == path
    True
    """
    import matplotlib.pyplot as plt

    figure, _ = _image_attention_figure(image, attention, words, title=title, columns=columns,
                                        cmap=cmap, alpha=alpha)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _frame_attention_figure(frames, attention, words, title=None):
    """Builds (does not save) the figure of `plot_frame_attention`.

    Returns (figure, frame axes, heat-map axes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [F, H, W, 3], got shape {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames must hold at least one frame")
    attention = np.asarray(attention, dtype="float32")
    if attention.ndim != 2:
        raise ValueError(f"attention must be 2-D [T, F] (one row per word), got shape "
                         f"{attention.shape}")
    words = list(words)
    if attention.shape[0] != len(words):
        raise ValueError(f"attention has {attention.shape[0]} rows but {len(words)} words given")
    if attention.shape[1] != frames.shape[0]:
        raise ValueError(f"attention has {attention.shape[1]} columns but there are "
                         f"{frames.shape[0]} frames")
    rgb = _as_rgb(frames, "frames")
    count, height, width = rgb.shape[:3]
    frame_width = min(1.2, 26.0 / count)
    strip_height = frame_width * height / max(width, 1)
    heat_height = min(0.3 * len(words) + 0.6, 24.0)
    label_width = 1.2
    figure = plt.figure(figsize=(label_width + frame_width * count + 0.3,
                                 strip_height + heat_height + (0.4 if title else 0.1)))
    layout = figure.add_gridspec(2, count, height_ratios=[strip_height, heat_height],
                                 hspace=0.05, wspace=0.03)
    frame_axes = []
    for index in range(count):
        axes = figure.add_subplot(layout[0, index])
        axes.imshow(rgb[index], aspect="auto")
        axes.set_axis_off()
        frame_axes.append(axes)
    heat_axes = figure.add_subplot(layout[1, :])
    heat_axes.imshow(attention, cmap="viridis", vmin=0.0,
                     vmax=max(float(attention.max()) if attention.size else 0.0, 1e-6),
                     aspect="auto", interpolation="nearest")
    heat_axes.set_yticks(range(len(words)))
    heat_axes.set_yticklabels([str(word) for word in words], fontsize=8)
    step = max(1, count // 20)
    heat_axes.set_xticks(range(0, count, step))
    heat_axes.set_xticklabels([str(i) for i in range(0, count, step)], fontsize=7)
    heat_axes.set_xlabel("frame", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    margin = label_width / figure.get_figwidth()
    figure.subplots_adjust(left=margin, right=1.0 - 0.2 / figure.get_figwidth(),
                           top=1.0 - (0.4 if title else 0.1) / figure.get_figheight(),
                           bottom=0.45 / figure.get_figheight())
    return figure, frame_axes, heat_axes


def plot_frame_attention(frames, attention, words, path, title=None):
    """Draws where each output word looked in a video: frames on top, a heat map below.

    The strip of frames runs along the top; under it, aligned column for
    column, a heat map of the attention (rows: output words, columns: frames).

    Args:
        frames: `[F, H, W, 3]` frames, uint8 (or float in [0, 1]).
        attention: `[T, F]` attention weights over the frames, one row per word.
        words: T output words (heat-map rows).
        path: Where the PNG goes.
        title: Optional figure title.

    Returns:
        `path`.

    Raises:
        ValueError: `frames` is not `[F, H, W, 3]`, `attention` is not 2-D,
            or its shape differs from (number of words, number of frames).

    Example:

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "video.png")
    >>> frames = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    >>> attention = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    >>> plot_frame_attention(frames, attention, ["jump", "land"], path) == path
    True
    """
    import matplotlib.pyplot as plt

    figure, _, _ = _frame_attention_figure(frames, attention, words, title=title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _line_attention_figure(image, attention, tokens, title=None):
    """Builds (does not save) the figure of `plot_line_attention`:
    (figure, image axes, heat-map axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if np.ndim(image) != 3 or np.shape(image)[-1] != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {np.shape(image)}")
    rgb = _as_rgb(image, "image")
    attention = np.asarray(attention, dtype="float32")
    if attention.ndim == 3 and attention.shape[1] == 1:
        attention = attention[:, 0]
    tokens = [str(token) for token in tokens]
    if attention.ndim != 2 or attention.shape[0] != len(tokens):
        raise ValueError(f"attention must be [T, w] (or [T, 1, w]) for {len(tokens)} tokens, "
                         f"got shape {attention.shape}")
    height, width = rgb.shape[:2]
    figure_width = min(max(4.0, width / 25.0), 14.0)
    row_height = figure_width * height / width
    heat_height = max(0.22 * len(tokens), 0.3)
    figure, (image_axes, heat_axes) = plt.subplots(
        2, 1, sharex=True, figsize=(figure_width, row_height + heat_height + 1.0),
        gridspec_kw={"height_ratios": [row_height, heat_height]})
    image_axes.imshow(rgb, extent=(0, width, height, 0))
    image_axes.set_yticks([])
    if title:
        image_axes.set_title(title, fontsize=9)
    heat_axes.imshow(attention, cmap="viridis", aspect="auto", interpolation="nearest",
                     extent=(0, width, len(tokens) - 0.5, -0.5), vmin=0.0,
                     vmax=max(float(attention.max(initial=0.0)), 1e-6))
    heat_axes.set_yticks(range(len(tokens)))
    heat_axes.set_yticklabels(["␣" if token == " " else token for token in tokens])
    heat_axes.set_xlabel("image column (pixels)")
    figure.tight_layout()
    return figure, image_axes, heat_axes


def plot_line_attention(image, attention, tokens, path, title=None):
    """Draws where each output token looked along a line image (text
    recognition): the image on top, and under it one row per token of its
    weights over the image's columns, the columns lined up with the pixels
    they stand for.

    Args:
        image: `[H, W, 3]` line image, uint8 or float (as `plot_image_attention`).
        attention: `[T, w]` weights over `w` columns of equal width across
            the image (or `[T, 1, w]`, a grid of one row), one row per token.
        tokens: T output tokens (a space is shown as "␣").
        path: Where the PNG goes.
        title: Optional title.

    Returns:
        `path`.

    Raises:
        ValueError: `image` is not `[H, W, 3]`, or `attention` is not `[T, w]`
            (or `[T, 1, w]`) for T tokens.

    Example:

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "line.png")
    >>> image = np.zeros((32, 64, 3), dtype=np.uint8)
    >>> plot_line_attention(image, np.eye(2, 16), ["4", "2"], path) == path
    True
    """
    import matplotlib.pyplot as plt

    figure, _, _ = _line_attention_figure(image, attention, tokens, title=title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
