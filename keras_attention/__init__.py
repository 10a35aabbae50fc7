"""keras-attention: attention layers, an attention decoder and decoding for Keras 3.

The layers and decoding load on first use (`keras_attention.AdditiveAttention`),
so the server and the command line, which run SavedModels with TensorFlow
alone, never import Keras.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "AdditiveAttention": "keras_attention.layers",
    "AttentionDecoder": "keras_attention.layers",
    "AttentionDecoderCell": "keras_attention.layers",
    "BaseAttention": "keras_attention.layers",
    "DotAttention": "keras_attention.layers",
    "decoding": "keras_attention.decoding",
    "layers": "keras_attention.layers",
}

__all__ = [
    "AdditiveAttention",
    "AttentionDecoder",
    "AttentionDecoderCell",
    "BaseAttention",
    "DotAttention",
    "decoding",
    "__version__",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_attention' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if _LAZY[name].endswith(name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
