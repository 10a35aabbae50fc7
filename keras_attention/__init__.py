"""keras-attention: attention layers, an attention decoder and decoding for Keras 3."""

__version__ = "0.1.0"

from keras_attention import decoding
from keras_attention.layers import (
    AdditiveAttention,
    AttentionDecoder,
    AttentionDecoderCell,
    BaseAttention,
    DotAttention,
)

__all__ = [
    "AdditiveAttention",
    "AttentionDecoder",
    "AttentionDecoderCell",
    "BaseAttention",
    "DotAttention",
    "decoding",
    "__version__",
]
