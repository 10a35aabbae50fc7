"""Image encoders: a grid of regions read row by row, a serializable CNN,
keras.applications backbones with no weights, a local weights file, or
frozen; clear errors for bad arguments."""

import doctest

import keras
import numpy as np
import pytest

from training.core import image_encoders
from training.core.image_encoders import BackboneImageEncoder, ConvImageEncoder


def test_docstring_examples():
    failures, _ = doctest.testmod(image_encoders, optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_cnn_regions_are_the_feature_map_row_by_row(rng):
    encoder = ConvImageEncoder(filters=4, blocks=2)
    images = rng.integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    regions, mask = encoder(images)
    assert tuple(regions.shape) == (2, 64, 8) and bool(np.all(mask))
    feature_map = encoder.feature_map(keras.ops.cast(images, "float32"))  # --> [B, 8, 8, 8]
    np.testing.assert_allclose(np.asarray(regions)[:, 8 * 3 + 5],
                               np.asarray(feature_map)[:, 3, 5], rtol=1e-6)
    assert encoder.grid_shape(32) == (8, 8) and encoder.output_dim == 8


def test_cnn_config_round_trip_gives_the_same_regions(rng):
    encoder = ConvImageEncoder(filters=4, blocks=3, name="enc")
    images = rng.integers(0, 256, (1, 64, 64, 3)).astype("uint8")
    regions = np.asarray(encoder(images)[0])
    clone = ConvImageEncoder.from_config(encoder.get_config())
    clone(images)
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(np.asarray(clone(images)[0]), regions, rtol=1e-6)


@pytest.mark.parametrize("kwargs, words", [
    (dict(filters=0), "filters"), (dict(blocks=-1), "blocks"), (dict(filters=2.5), "filters"),
])
def test_cnn_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        ConvImageEncoder(**kwargs)


@pytest.mark.parametrize("kwargs, words", [
    (dict(backbone="vgg16"), "backbone"),
    (dict(backbone="inception_v3", input_size=64), "input_size >= 75"),
    (dict(backbone="resnet50", weights=3), "weights"),
])
def test_backbone_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        BackboneImageEncoder(**kwargs)


def test_backbone_from_a_local_weights_file_and_frozen(tmp_path, rng):
    images = rng.integers(0, 256, (2, 40, 40, 3)).astype("uint8")
    random_init = BackboneImageEncoder("mobilenet_v3_small", weights=None, input_size=32)
    regions, mask = random_init(images)
    side = random_init.grid_shape(40)[0]
    assert tuple(regions.shape) == (2, side * side, random_init.output_dim)
    assert bool(np.all(mask))
    path = str(tmp_path / "backbone.weights.h5")
    random_init.network.save_weights(path)
    from_file = BackboneImageEncoder("mobilenet_v3_small", weights=path, trainable=False,
                                     input_size=32)
    np.testing.assert_allclose(np.asarray(from_file(images)[0]), np.asarray(regions),
                               rtol=1e-5, atol=1e-5)
    assert from_file.trainable_weights == [] and random_init.trainable_weights
    # A saved model never downloads its backbone's weights again.
    assert from_file.get_config()["weights"] is None
