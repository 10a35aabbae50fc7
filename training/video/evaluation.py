"""Video captioning's evaluation pieces: a text view of each word's attention
over time, and attention plots (the strip of frames with each word's
attention under it)."""

import os

import numpy as np


def attention_text_view(words, attention):
    """One line per word: its most attended frame and a bar over time.

    words: T_out strings; attention `[T_out, T]` over the clip's frames.

    >>> print(attention_text_view(["red", "circle"],
    ...                           np.array([[0.1, 0.7, 0.2, 0.0], [0.0, 0.1, 0.1, 0.8]])))
    red       <- frame  1  0.70  .#:_
    circle    <- frame  3  0.80  _..#
    """
    lines = []
    for word, weights in zip(words, np.asarray(attention, np.float64)):
        frame = int(np.argmax(weights))
        lines.append(f"{word:<9} <- frame {frame:>2}  {weights[frame]:.2f}  "
                     + _time_bar(weights))
    return "\n".join(lines)


def _time_bar(weights):
    """A character per frame by its share of the peak weight: '#' from 3/4,
    ':' from 1/4, '.' from 1/20, '_' below."""
    peak = float(np.max(weights)) if len(weights) else 0.0
    if peak <= 0:
        return "_" * len(weights)
    share = np.asarray(weights) / peak
    return "".join("#" if s >= 0.75 else ":" if s >= 0.25 else "." if s >= 0.05 else "_"
                   for s in share)


def draw_examples(results, clips, directory, count, prefix="attention"):
    """One PNG per example: the strip of frames with each generated word's
    attention over them (`keras_attention.plots.plot_frame_attention`).

    results: output rows of a greedy signature (`tokens`, `length`,
    `attention [T_out, T']`, `frame_count`); clips: each example's frames
    `[T, H, W, 3]` (examples of features are skipped: nothing to show).
    """
    from keras_attention.plots import plot_frame_attention

    os.makedirs(directory, exist_ok=True)
    paths = []
    for index in range(min(count, len(results))):
        result, frames = results[index], np.asarray(clips[index])
        length, frame_count = int(result["length"]), int(result["frame_count"])
        words = [word.decode("utf-8") for word in result["tokens"][:length]]
        if not words or frames.ndim != 4:
            continue
        path = os.path.join(directory, f"{prefix}_{index}.png")
        plot_frame_attention(frames[:frame_count],
                             np.asarray(result["attention"])[:length, :frame_count], words,
                             path, title=" ".join(words))
        paths.append(path)
    return paths
