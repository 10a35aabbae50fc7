"""The text encoders: argument validation, the padding mask, output specs,
config round trips and mixed precision."""

import doctest
import re

import keras
import numpy as np
import pytest

import training.core.encoders as encoders_module
from training.core.encoders import ConvTextEncoder, RecurrentTextEncoder, TransformerTextEncoder

VOCAB = 20
# Small, valid arguments for each encoder; the tests change one at a time.
ENCODERS = {
    "rnn": (RecurrentTextEncoder,
            dict(vocab_size=VOCAB, embedding_dim=6, units=5, rnn_type="lstm", num_layers=2)),
    "conv": (ConvTextEncoder,
             dict(vocab_size=VOCAB, embedding_dim=6, units=8, num_layers=2, max_length=7)),
    "transformer": (TransformerTextEncoder,
                    dict(vocab_size=VOCAB, units=8, num_layers=2, num_heads=2, max_length=7)),
}
MEMORY_DIM = {"rnn": 2 * 5, "conv": 8, "transformer": 8}
CONFIG_KEYS = {
    "rnn": {"vocab_size", "embedding_dim", "units", "rnn_type", "num_layers", "dropout"},
    "conv": {"vocab_size", "embedding_dim", "units", "num_layers", "kernel_size", "max_length",
             "dropout"},
    "transformer": {"vocab_size", "units", "num_layers", "num_heads", "feedforward_units",
                    "max_length", "dropout"},
}
# ids [B=3, S=6]: trailing padding, a full row, a row of one token.
IDS = np.array([[4, 7, 2, 9, 0, 0], [5, 3, 8, 1, 6, 2], [11, 0, 0, 0, 0, 0]])


def make(kind, **changes):
    cls, kwargs = ENCODERS[kind]
    return cls(**{**kwargs, **changes})


def randomize(layer, rng, scale=0.5):
    """Random weights (biases and norm parameters too, so none hides)."""
    for w in layer.weights:
        w.assign(rng.uniform(-scale, scale, size=tuple(w.shape)).astype(w.dtype))


def built(kind, seed=0, **changes):
    encoder = make(kind, **changes)
    encoder.build((None, None))
    randomize(encoder, np.random.default_rng(seed))
    return encoder


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ---------------------------------------------------------------- validation
BAD_ARGUMENTS = [
    (kind, name, value)
    for kind, names in (
        ("rnn", ("vocab_size", "embedding_dim", "units", "num_layers")),
        ("conv", ("vocab_size", "embedding_dim", "units", "num_layers", "kernel_size",
                  "max_length")),
        ("transformer", ("vocab_size", "units", "num_layers", "num_heads", "max_length",
                         "feedforward_units")),
    )
    for name in names
    for value in (0, -3, 2.5, True)
] + [
    (kind, "dropout", value) for kind in ENCODERS for value in (-0.1, 1.0, 1, "0.1")
] + [("rnn", "rnn_type", "rnn"), ("rnn", "rnn_type", "GRU")]


@pytest.mark.parametrize("kind,name,value", BAD_ARGUMENTS)
def test_bad_argument_raises_naming_it(kind, name, value):
    with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}")):
        make(kind, **{name: value})


@pytest.mark.parametrize("units,num_heads", [(10, 4), (8, 3)])
def test_transformer_units_must_divide_into_heads(units, num_heads):
    with pytest.raises(ValueError, match=re.escape(f"units={units} and num_heads={num_heads}")):
        make("transformer", units=units, num_heads=num_heads)


def test_valid_edge_arguments_are_accepted():
    """The bounds themselves: numpy ints, dropout 0 and just under 1, one layer."""
    make("rnn", vocab_size=np.int64(2), units=np.int32(1), num_layers=1, dropout=0)
    make("conv", kernel_size=1, max_length=1, dropout=0.999)
    encoder = make("transformer", units=6, num_heads=6, feedforward_units=None)
    assert encoder.feedforward_units == 24  # 4 * units
    assert isinstance(make("rnn", vocab_size=np.int64(7)).get_config()["vocab_size"], int)


# ----------------------------------------------------------- mask and shapes
@pytest.mark.parametrize("kind", ENCODERS)
def test_mask_and_output_spec(kind):
    encoder = built(kind)
    memory, mask = encoder(IDS)
    assert mask.dtype == "bool"
    np.testing.assert_array_equal(numpy(mask), IDS != 0)
    spec_memory, spec_mask = encoder.compute_output_spec(keras.KerasTensor(IDS.shape, "int32"))
    assert tuple(memory.shape) == spec_memory.shape == (3, 6, MEMORY_DIM[kind])
    assert memory.dtype == spec_memory.dtype == "float32"
    assert tuple(mask.shape) == spec_mask.shape and spec_mask.dtype == "bool"
    # Symbolic: unknown batch and length stay unknown.
    symbolic_memory, symbolic_mask = encoder(keras.Input((None,), dtype="int32"))
    assert symbolic_memory.shape == (None, None, MEMORY_DIM[kind])
    assert symbolic_mask.shape == (None, None)


@pytest.mark.parametrize("kind", ["conv", "transformer"])
def test_sources_longer_than_max_length_are_cut(kind):
    encoder = built(kind, max_length=4)
    memory, mask = encoder(IDS)  # S = 6 > 4
    np.testing.assert_array_equal(numpy(mask), IDS[:, :4] != 0)
    spec_memory, _ = encoder.compute_output_spec(keras.KerasTensor(IDS.shape, "int32"))
    assert tuple(memory.shape) == spec_memory.shape == (3, 4, MEMORY_DIM[kind])
    np.testing.assert_allclose(numpy(memory), numpy(encoder(IDS[:, :4])[0]), atol=1e-6)


@pytest.mark.parametrize("kind", ENCODERS)
def test_padding_does_not_change_the_memory_of_tokens(kind):
    """More padding after a source leaves the memory at its tokens unchanged:
    the mask reaches every sublayer that mixes positions."""
    encoder = built(kind)
    short = IDS[:, :4]  # rows 0 and 2 still padded, row 1 cut
    padded = np.concatenate([short, np.zeros((3, 3), int)], axis=1)  # S = 7 = max_length
    memory_short, mask_short = map(numpy, encoder(short))
    memory_padded, _ = map(numpy, encoder(padded))
    np.testing.assert_allclose(memory_padded[:, :4][mask_short], memory_short[mask_short],
                               atol=1e-5)
    # The check can fail: a token in place of the padding does change them.
    changed = numpy(encoder(np.where(padded == 0, 3, padded))[0])
    assert np.abs(changed[:, :4][mask_short] - memory_short[mask_short]).max() > 1e-3


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("kind", ENCODERS)
def test_config_round_trip(kind):
    encoder = built(kind, dropout=0.25, name="encoder")
    config = encoder.get_config()
    assert CONFIG_KEYS[kind] <= set(config)
    assert keras.saving.get_registered_name(type(encoder)) == (
        f"keras_attention_training>{type(encoder).__name__}")
    clone = type(encoder).from_config(config)
    assert clone.get_config() == config
    clone.build((None, None))
    assert len(clone.weights) == len(encoder.weights)
    clone.set_weights(encoder.get_weights())
    for expected, actual in zip(encoder(IDS), clone(IDS)):
        np.testing.assert_array_equal(numpy(actual), numpy(expected))
    # Dropout is on in training only: off, the call is deterministic.
    training_memory = numpy(encoder(IDS, training=True)[0])
    assert not np.allclose(training_memory, numpy(encoder(IDS)[0]))


@pytest.mark.parametrize("kind", ENCODERS)
def test_saved_model_reloads_with_identical_outputs(kind, tmp_path):
    encoder = built(kind)
    inputs = keras.Input((None,), dtype="int32")
    memory, mask = encoder(inputs)
    model = keras.Model(inputs, {"memory": memory, "mask": mask})
    path = str(tmp_path / "encoder.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # registered names, no custom_objects
    for name, expected in model(IDS).items():
        np.testing.assert_array_equal(numpy(reloaded(IDS)[name]), numpy(expected))


# ------------------------------------------------------------ mixed precision
@pytest.mark.parametrize("how", ["global policy", "dtype argument"])
@pytest.mark.parametrize("kind", ENCODERS)
def test_mixed_bfloat16(kind, how, dtype_policy):
    """Every sublayer takes the encoder's policy: float32 weights, bfloat16
    memory close to a float32 encoder with the same weights."""
    if how == "global policy":
        dtype_policy("mixed_bfloat16")
        encoder = make(kind)
    else:
        encoder = make(kind, dtype="mixed_bfloat16")
    keras.config.set_dtype_policy("float32")  # the policy at build time is the encoder's
    encoder.build((None, None))
    randomize(encoder, np.random.default_rng(0))
    sublayers = list(encoder._flatten_layers(include_self=False))
    assert sublayers and {layer.dtype_policy.name for layer in sublayers} == {"mixed_bfloat16"}
    assert {w.dtype for w in encoder.weights} == {"float32"}

    memory, mask = encoder(IDS)
    spec_memory, _ = encoder.compute_output_spec(keras.KerasTensor(IDS.shape, "int32"))
    assert memory.dtype == spec_memory.dtype == "bfloat16" and mask.dtype == "bool"
    np.testing.assert_array_equal(numpy(mask), IDS != 0)
    reference = make(kind, dtype="float32")
    reference.build((None, None))
    reference.set_weights(encoder.get_weights())
    expected = numpy(reference(IDS)[0])
    np.testing.assert_allclose(numpy(memory).astype(np.float32), expected, atol=3e-2)


# -------------------------------------------------------------- docstrings
def test_docstring_examples():
    result = doctest.testmod(encoders_module,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 9 and result.failed == 0
