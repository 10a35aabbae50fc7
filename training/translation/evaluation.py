"""Translation's attention views: PNG heat maps and terminal views."""

import os

import numpy as np

from keras_attention.plots import attention_text_view, plot_attention
from training.core.text import UNK


def draw_examples(results, sources, directory, count, prefix="attention"):
    """PNG heat maps and terminal views for the first `count` greedy results
    (one dict of numpy values each: `tokens [T]`, `length []`, `attention
    [T, S]`, `source_tokens [S]`); an output word the export left out is
    labelled `[UNK]`.

    Returns `(png_paths, text_views)`.
    """
    os.makedirs(directory, exist_ok=True)
    paths, views = [], []
    for index in range(min(count, len(results))):
        result = results[index]
        length = int(result["length"])
        source_words = [w.decode("utf-8") for w in result["source_tokens"] if w]
        # A word the export left out ("") is where the model wrote [UNK].
        output_words = [w.decode("utf-8") or UNK for w in result["tokens"][:length]]
        if not source_words or not output_words:
            continue
        weights = np.asarray(result["attention"])[: len(output_words), : len(source_words)]
        path = os.path.join(directory, f"{prefix}_{index}.png")
        plot_attention(weights, source_words, output_words, path, title=sources[index][:100])
        paths.append(path)
        views.append(attention_text_view(weights, source_words, output_words))
    return paths, views
