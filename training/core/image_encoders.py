"""Image encoders: images -> a grid of region features laid out as a sequence.

An image `[B, H, W, 3]` (uint8 0..255, or float in the same range) becomes
a feature map `[B, h, w, C]`, read row by row into `h * w` annotation
vectors `[B, h*w, C]`: the memory the caption decoder attends over (Xu et
al. 2015, "Show, Attend and Tell"). Every region is real, so the mask is
all True. The same encoders serve video, applied to every frame.
"""

import keras
from keras import ops

from training.core.backbones import BACKBONES
from training.core.encoders import positive_int


class ImageEncoder(keras.layers.Layer):
    """Base: images `[B, H, W, 3]` -> `(regions [B, h*w, C], mask [B, h*w])`.

    A subclass maps float images in 0..255 to a feature map `[B, h, w, C]`
    in `feature_map` and says its channels C in `output_dim`.
    """

    @property
    def output_dim(self):
        raise NotImplementedError

    def feature_map(self, images, training=None):
        raise NotImplementedError

    def _grid_side(self, image_size):
        raise NotImplementedError

    def grid_shape(self, image_size):
        """`(h, w)` of the region grid for square images of `image_size`."""
        side = self._grid_side(image_size)
        return side, side

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        features = self.feature_map(images, training=training)  # --> [B, h, w, C]
        shape = ops.shape(features)
        regions = ops.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
        return regions, ops.ones((shape[0], shape[1] * shape[2]), dtype="bool")

    def compute_output_spec(self, images, training=None):
        batch, size = images.shape[0], images.shape[1]
        regions = None if size is None else self._grid_side(size) ** 2
        return (keras.KerasTensor((batch, regions, self.output_dim), dtype=self.compute_dtype),
                keras.KerasTensor((batch, regions), dtype="bool"))


@keras.saving.register_keras_serializable(package="keras_attention_training")
class ConvImageEncoder(ImageEncoder):
    """A small CNN trained from scratch: `blocks` of two 3x3 convolutions
    (batch norm, ReLU) and a 2x2 max pool; channels `filters`, doubling
    each block. A 64x64 image with 3 blocks gives an 8x8 grid of 64 regions.

    Args:
        filters: Channels of the first block.
        blocks: Number of blocks (each halves the grid side).
        **kwargs: Base layer keyword arguments.

    Example:

    >>> import numpy as np
    >>> encoder = ConvImageEncoder(filters=8, blocks=2)
    >>> regions, mask = encoder(np.zeros((2, 32, 32, 3), "uint8"))
    >>> tuple(regions.shape), tuple(mask.shape), encoder.grid_shape(32)
    ((2, 64, 16), (2, 64), (8, 8))
    """

    def __init__(self, filters=32, blocks=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.blocks = positive_int("blocks", blocks)
        self.layers_ = None

    @property
    def output_dim(self):
        return self.filters * 2 ** (self.blocks - 1)

    def _grid_side(self, image_size):
        return image_size // 2 ** self.blocks

    def _pool_size(self, block):
        """The max pool after `block`: 2 (height and width halved)."""
        return 2

    def build(self, images_shape):
        policy = self.dtype_policy
        self.layers_ = []
        for block in range(self.blocks):
            channels = self.filters * 2 ** block
            for i in range(2):
                self.layers_ += [
                    keras.layers.Conv2D(channels, 3, padding="same", use_bias=False,
                                        name=f"conv_{block}_{i}", dtype=policy),
                    keras.layers.BatchNormalization(name=f"norm_{block}_{i}", dtype=policy),
                    keras.layers.ReLU(dtype=policy),
                ]
            self.layers_.append(keras.layers.MaxPooling2D(
                self._pool_size(block), name=f"pool_{block}", dtype=policy))
        shape = tuple(images_shape)
        for layer in self.layers_:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def feature_map(self, images, training=None):
        x = images / 127.5 - 1.0
        for layer in self.layers_:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "blocks": self.blocks}


@keras.saving.register_keras_serializable(package="keras_attention_training")
class BackboneImageEncoder(ImageEncoder):
    """A `keras.applications` CNN without its top: its last feature map.

    Args:
        backbone: One of `BACKBONES`: "mobilenet_v3_small", "resnet50",
            "inception_v3".
        weights: None (random, trained here), "imagenet" (downloads, where
            the machine can), or the path of a local weights file.
        trainable: False freezes the backbone (features only).
        input_size: Images are resized to this side first (at least the
            backbone's least size; InceptionV3 needs 75).
    """

    def __init__(self, backbone, weights=None, trainable=True, input_size=96, **kwargs):
        super().__init__(**kwargs)
        if backbone not in BACKBONES:
            raise ValueError(f"`backbone` must be one of {sorted(BACKBONES)}, "
                             f"received {backbone!r}")
        least = BACKBONES[backbone][2]
        self.input_size = positive_int("input_size", input_size)
        if self.input_size < least:
            raise ValueError(f"{backbone} needs input_size >= {least}, received {input_size}")
        if weights not in (None, "imagenet") and not isinstance(weights, str):
            raise ValueError(f"`weights` must be None, 'imagenet' or a file path, "
                             f"received {weights!r}")
        self.backbone, self.weights_source = backbone, weights
        self.backbone_trainable = bool(trainable)
        self.network = None

    def build(self, images_shape):
        constructor = getattr(keras.applications, BACKBONES[self.backbone][0])
        options = {}
        if self.backbone == "mobilenet_v3_small":
            options["include_preprocessing"] = True
        self.network = constructor(
            include_top=False, weights=self.weights_source,
            input_shape=(self.input_size, self.input_size, 3), **options)
        self.network.trainable = self.backbone_trainable
        self.built = True

    @property
    def output_dim(self):
        if self.network is None:
            self.build((None, self.input_size, self.input_size, 3))
        return self.network.output_shape[-1]

    def _grid_side(self, image_size):
        if self.network is None:
            self.build((None, self.input_size, self.input_size, 3))
        return self.network.output_shape[1]

    def feature_map(self, images, training=None):
        images = ops.image.resize(images, (self.input_size, self.input_size))
        preprocessing = BACKBONES[self.backbone][1]
        if preprocessing == "tf":
            images = images / 127.5 - 1.0
        elif preprocessing == "caffe":  # BGR, ImageNet means subtracted
            images = images[..., ::-1] - ops.convert_to_tensor([103.939, 116.779, 123.68],
                                                               images.dtype)
        return self.network(images, training=training and self.backbone_trainable)

    def get_config(self):
        # A saved model carries its weights: never download them again on load.
        return {**super().get_config(), "backbone": self.backbone, "weights": None,
                "trainable": self.backbone_trainable, "input_size": self.input_size}
