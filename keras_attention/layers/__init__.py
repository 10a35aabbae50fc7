"""Attention layers (backend-agnostic: `keras.ops` only)."""

from keras_attention.layers.additive_attention import AdditiveAttention
from keras_attention.layers.attention_decoder import AttentionDecoder
from keras_attention.layers.attention_decoder_cell import AttentionDecoderCell
from keras_attention.layers.base_attention import BaseAttention
from keras_attention.layers.dot_attention import DotAttention
