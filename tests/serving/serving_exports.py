"""Small exports for the serving and CLI tests: untrained models (their
answers are deterministic, and run to each row's own length limit, so
answers of several lengths exist)."""

import numpy as np

WORDS = ["the", "a", "red", "green", "dog", "cat", "sees", "runs", "."]


def build_translator():
    from training.core.decoding_options import DecodingOptions
    from training.core.encoders import RecurrentTextEncoder
    from training.core.seq2seq import AttentionSeq2Seq, make_decoder_cell
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.translation.export import Translator

    import keras

    keras.utils.set_random_seed(7)
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=12)
    size = vocabulary.size
    model = AttentionSeq2Seq(RecurrentTextEncoder(size, 8, 8), size, 8,
                             make_decoder_cell(16, "additive", 8))
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    return Translator(model, vocabulary, vocabulary, 12,
                      DecodingOptions(beam_width=3, num_hypotheses=2))


def build_captioner():
    import keras
    from training.core.decoding_options import DecodingOptions

    from training.core.image_encoders import ConvImageEncoder
    from training.core.seq2seq import AttentionSeq2Seq, make_decoder_cell
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.captioning.export import Captioner

    keras.utils.set_random_seed(7)
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=12)
    model = AttentionSeq2Seq(ConvImageEncoder(8, 2), vocabulary.size, 8,
                             make_decoder_cell(16, "additive", 8))
    images = np.zeros((1, 32, 32, 3), "uint8")
    model({"source": images, "target_in": np.ones((1, 2), "int32")})
    return Captioner(model, vocabulary, 32, model.encoder.grid_shape(32), 8,
                     DecodingOptions(beam_width=2, num_hypotheses=2))


def build_video_captioner():
    """An untrained video captioner on 16x16 frames: its export has the
    frames (`serving_default`/`beam_search`), GIF and features signatures."""
    import dataclasses

    import keras
    from training.core import config as config_lib
    from training.core.decoding_options import DecodingOptions
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.video.config import PRESETS, VideoConfig
    from training.video.export import VideoCaptioner
    from training.video.model import build_model

    keras.utils.set_random_seed(7)
    config = dataclasses.replace(
        config_lib.load(VideoConfig, PRESETS, "tiny"), units=12, embedding_dim=8,
        attention_units=8, cnn_filters=4, cnn_blocks=2, temporal_units=6, frame_size=16,
        dropout=0.0)
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=12)
    model = build_model(config, vocabulary.size)
    model({"source": {"frames": np.zeros((1, 3, 16, 16, 3), "uint8"), "lengths": np.array([3])},
           "target_in": np.ones((1, 2), "int32")})
    return VideoCaptioner(model, vocabulary, 8, frame_size=16, max_frames=10,
                          decoding=DecodingOptions(beam_width=2, num_hypotheses=2))


def gif_bytes(seed, frames=4, size=(16, 16)):
    """An encoded animated GIF of random pixels."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    images = [Image.fromarray(frame) for frame in pixels]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0)
    return buffer.getvalue()


def png_bytes(seed, size=(20, 28)):
    """An encoded PNG of random pixels."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
