"""The text reader as a SavedModel: encoded image bytes in, the text and each
character's attention over the line's columns out.

The signatures and output names are every task's (`training.core.export`):
`serving_default` (greedy) and `beam_search` (n-best) take `image_bytes`,
string `[B]`: JPEG, PNG, GIF (first frame) or BMP, any size, decoded and
resized to the training height and width in the graph. `tokens` are
characters (a space is a token `" "`, an unknown character U+FFFD), `text`
joins them as written, and `attention` `[B, T, 1, w]` (`[B, N, T, 1, w]`
for the beam) holds each character's weights over the w columns of the
image (4 pixels each), a grid of one row. Only stock TensorFlow ops.
"""

import tensorflow as tf

from training.core.decoding_options import DecodingOptions
from training.core.image_export import ImageExporter
from training.core.text import UNK_ID


class TextReader(ImageExporter):
    """Wraps a trained line `AttentionSeq2Seq` with its character vocabulary.

    Args:
        model: The trained model (line images `[B, H, W, 3]` -> logits).
        vocabulary: The character `Vocabulary`.
        image_shape: `(height, width)` images are resized to.
        grid_shape: `(1, w)`, the encoder's columns.
        max_characters: Most characters per answer.
        decoding: `DecodingOptions` of both signatures.

    Example (`reader.save("export", "text_reader", 1)` writes it):

        out = reader.greedy(tf.constant([open("line.png", "rb").read()]))
        out["text"], out["attention"]   # [B], [B, T, 1, w]
    """

    task = "text_recognition"

    def __init__(self, model, vocabulary, image_shape, grid_shape, max_characters,
                 decoding=DecodingOptions(beam_width=3, num_hypotheses=3)):
        super().__init__(model, vocabulary, image_shape, grid_shape, max_characters, decoding,
                         name="text_reader")

    def replace_words(self, words, ids, attention, rows):
        # One character per token: an unknown one reads as U+FFFD.
        return tf.where(ids == UNK_ID, "\ufffd", words)

    def join_words(self, words):
        return tf.strings.reduce_join(words, axis=-1)

    def metadata_extras(self):
        return {"image_height": self.image_size[0], "image_width": self.image_size[1],
                "grid_shape": list(self.grid_shape)}
