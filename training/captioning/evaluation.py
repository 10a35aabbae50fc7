"""Captioning's evaluation pieces: which object a generated word names,
attention localization on generated scenes, and attention overlays."""

import os

import numpy as np

from training.captioning import scenes as scenes_lib


def word_referents(words, objects):
    """The object each generated word names, by its colour, shape or size.

    A colour or shape word names the one object of the scene with that
    colour or shape; a size word the object named by the colour or shape
    word right after it. A word that fits no object, or several, names none
    (`scenes.NO_OBJECT`). Returns a list of ints, one per word.
    """
    colours, shapes = set(scenes_lib.COLOURS), set(scenes_lib.SHAPES)
    referents = []
    for word in words:
        if word in colours:
            matches = [i for i, o in enumerate(objects) if o.colour == word]
        elif word in shapes:
            matches = [i for i, o in enumerate(objects) if o.shape == word]
        else:
            matches = []
        referents.append(matches[0] if len(matches) == 1 else scenes_lib.NO_OBJECT)
    for i, word in enumerate(words):  # "small red circle": size takes the next word's object
        if word in scenes_lib.SIZES and i + 1 < len(words):
            referents[i] = referents[i + 1]
    return referents


def attention_text_view(words, attention):
    """One line per word: where its attention peaks on the region grid.

    words: T strings; attention `[T, h, w]`. Example line:
    `red       <- row 5, col 2  0.31 ###` (rows from the top).
    """
    lines = []
    for word, weights in zip(words, np.asarray(attention)):
        row, column = np.unravel_index(int(np.argmax(weights)), weights.shape)
        peak = float(weights[row, column])
        lines.append(f"{word:<9} <- row {row}, col {column}  {peak:.2f} "
                     + "#" * int(round(peak * 10)))
    return "\n".join(lines)


def draw_examples(results, images, directory, count, prefix="attention"):
    """One PNG per example: each generated word's attention over the image."""
    from keras_attention.plots import plot_image_attention

    os.makedirs(directory, exist_ok=True)
    paths = []
    for index in range(min(count, len(results))):
        result = results[index]
        length = int(result["length"])
        words = [w.decode("utf-8") for w in result["tokens"][:length]]
        if not words:
            continue
        path = os.path.join(directory, f"{prefix}_{index}.png")
        plot_image_attention(images[index], np.asarray(result["attention"])[:length], words,
                             path, title=" ".join(words))
        paths.append(path)
    return paths
