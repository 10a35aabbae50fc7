"""The captioner as a SavedModel: encoded image bytes in, caption and
attention maps out.

The signatures and output names are every task's (`training.core.export`):
`serving_default` (greedy) and `beam_search` (n-best) take `image_bytes`,
string `[B]`: JPEG, PNG, GIF (first frame) or BMP, any size, grayscale or
RGBA too, decoded and resized to the training size in the graph. They
return `text`, `tokens`, `token_ids`, `length`, `score` and `attention`
`[B, T, h, w]` (`[B, N, T, h, w]` for the beam): each word's weights over
the encoder's h x w grid of image regions. Bytes that are not an image
fail the request with TensorFlow's "Unknown image file format" error.
Only stock TensorFlow ops.
"""

from training.core.decoding_options import DecodingOptions
from training.core.image_export import ImageExporter


class Captioner(ImageExporter):
    """Wraps a trained image `AttentionSeq2Seq` with its caption vocabulary.

    Args:
        model: The trained model (images `[B, size, size, 3]` -> logits).
        vocabulary: The caption `Vocabulary`.
        image_size: The side images are resized to.
        grid_shape: `(h, w)` of the encoder's region grid.
        max_caption_tokens: Most words per caption.
        decoding: `DecodingOptions` of both signatures.

    Example (`captioner.save("export", "captioner", 1)` writes it):

        out = captioner.greedy(tf.constant([open("cat.jpg", "rb").read()]))
        out["text"], out["attention"]   # [B], [B, T, h, w]
    """

    task = "image_captioning"

    def __init__(self, model, vocabulary, image_size, grid_shape, max_caption_tokens,
                 decoding=DecodingOptions(beam_width=3, num_hypotheses=3)):
        super().__init__(model, vocabulary, image_size, grid_shape, max_caption_tokens,
                         decoding, name="captioner")

    def metadata_extras(self):
        return {"image_size": self.image_size, "grid_shape": list(self.grid_shape)}
