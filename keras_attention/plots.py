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
