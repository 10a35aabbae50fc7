"""Image files for every image task: read any common format, resize to the
task's size, and words for a file that is not an image."""

import os
import re


def _size_pair(size):
    """`side` or `(height, width)` -> `(height, width)`."""
    return (int(size), int(size)) if isinstance(size, (int, float)) else tuple(map(int, size))


def encode_png(images):
    """uint8 `[H, W, 3]` arrays -> a list of PNG bytes (what a client sends).

    >>> import numpy as np
    >>> encode_png([np.zeros((2, 3, 3), "uint8")])[0][:4]
    b'\\x89PNG'
    """
    import tensorflow as tf

    return [tf.io.encode_png(image).numpy() for image in images]


def resize_image(image, size):
    """Any `[H, W, 3]` image (uint8 or float 0..255) -> uint8 `[height, width, 3]`.

    `size` is a side (square images) or `(height, width)`. Bilinear with
    antialiasing (so shrinking averages rather than skips pixels), rounded
    and clipped.

    >>> import numpy as np
    >>> resize_image(np.full((10, 40, 3), 200, "uint8"), (5, 20)).shape
    (5, 20, 3)
    """
    import tensorflow as tf

    height, width = _size_pair(size)
    image = tf.convert_to_tensor(image)
    if image.shape[0] == height and image.shape[1] == width and image.dtype == tf.uint8:
        return image.numpy()
    resized = tf.image.resize(image, [height, width], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()


def decode_images(image_bytes, size):
    """`[B]` encoded images (JPEG, PNG, GIF's first frame, BMP; any size,
    grayscale or RGBA too) -> uint8 `[B, height, width, 3]` in stock
    TensorFlow ops, resized as `resize_image` does (an export's input)."""
    import tensorflow as tf

    height, width = _size_pair(size)

    def decode(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    return tf.map_fn(decode, image_bytes,
                     fn_output_signature=tf.TensorSpec([height, width, 3], tf.uint8))


def prepare_image_bytes(image_bytes, size, max_output_tokens):
    """An image exporter's `prepare`: `[B]` encoded images -> `(images
    uint8 [B, height, width, 3], max_lengths [B], rows, {})`, every row
    allowed `max_output_tokens` and the end token, none empty
    (`SequenceExporter.prepare`)."""
    import tensorflow as tf

    images = decode_images(tf.reshape(image_bytes, [-1]), size)
    batch = tf.shape(images)[0]
    max_lengths = tf.fill([batch], max_output_tokens + 1)
    return images, max_lengths, {"empty": tf.zeros([batch], tf.bool)}, {}


def read_image(path, size, error_class):
    """A JPEG, PNG, GIF (first frame), BMP or WebP file -> RGB uint8
    `[height, width, 3]` (`size` as in `resize_image`).

    Grayscale is repeated into three channels; an alpha channel is dropped.
    Raises `error_class` naming the path if the file is missing,
    unreadable, truncated or not an image.
    """
    import tensorflow as tf

    if not os.path.isfile(path):
        raise error_class(f"{path}: no such image file")
    try:
        with open(path, "rb") as handle:
            contents = handle.read()
    except OSError as error:
        raise error_class(f"{path}: cannot read: {error}") from None
    if not contents:
        raise error_class(f"{path}: empty file, not an image")
    try:
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        raise error_class(
            f"{path}: not a readable image (JPEG, PNG, GIF, BMP, WebP; truncated or corrupt?): "
            f"{op_error_reason(error)}"
        ) from None
    return resize_image(image, size)


def op_error_reason(error):
    """The readable part of a TensorFlow op error ("Invalid PNG data, size 1586")."""
    lines = (error.message or "").strip().splitlines()
    reason = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", lines[0] if lines else "").strip()
    return reason or type(error).__name__
