"""The export of a task whose input is an image: encoded image bytes in,
attention over the encoder's grid of regions out."""

import tensorflow as tf

from training.core.decoding_options import DecodingOptions
from training.core.export import SequenceExporter
from training.core.images import prepare_image_bytes


class ImageExporter(SequenceExporter):
    """Base of the image tasks' exporters (captioning, text recognition).

    `serving_default` and `beam_search` take `image_bytes`, string `[B]`:
    JPEG, PNG, GIF (first frame) or BMP, any size, grayscale or RGBA too,
    decoded and resized to `image_size` in the graph; `attention` is
    `[B, T, h, w]` (`[B, N, T, h, w]` for the beam), each token's weights
    over the encoder's `h x w` grid. A subclass sets `task` and may add
    `metadata_extras()`.

    Args:
        model: The trained model (images `[B, H, W, 3]` -> logits).
        vocabulary: The output `Vocabulary`.
        image_size: The side images are resized to, or `(height, width)`.
        grid_shape: `(h, w)` of the encoder's region grid.
        max_output_tokens: Most output tokens.
        decoding: `DecodingOptions` of both signatures.
        name: The module's name.

    Example (a task's exporter):

        class Captioner(ImageExporter):
            task = "image_captioning"
    """

    input_name = "image_bytes"
    input_kind = "image"
    attention_axes = ("region_row", "region_column")

    def __init__(self, model, vocabulary, image_size, grid_shape, max_output_tokens,
                 decoding=DecodingOptions(beam_width=3, num_hypotheses=3), name=None):
        self.image_size = (int(image_size) if isinstance(image_size, (int, float))
                           else tuple(int(d) for d in image_size))
        self.grid_shape = tuple(int(d) for d in grid_shape)
        super().__init__(model, vocabulary, max_output_tokens, decoding, name=name)

    def input_spec(self):
        return tf.TensorSpec([None], tf.string, name=self.input_name)

    def prepare(self, image_bytes):
        return prepare_image_bytes(image_bytes, self.image_size, self.max_output_tokens)

    def format_attention(self, attention, rows):
        shape = tf.shape(attention)
        return tf.reshape(attention, tf.concat([shape[:2], self.grid_shape], 0))
