"""The `keras.applications` backbones an image encoder can use, by name.

Kept apart from `image_encoders` (which imports Keras) so that a config
can list them without starting TensorFlow.
"""

# name -> (keras.applications constructor, preprocessing from 0..255, least input size)
BACKBONES = {
    "mobilenet_v3_small": ("MobileNetV3Small", "none", 32),  # preprocesses inside the model
    "resnet50": ("ResNet50", "caffe", 32),
    "inception_v3": ("InceptionV3", "tf", 75),
}
