"""The assignment's network, layer for layer, from standard Keras layers only; and flip averaging around a network."""

import os

import keras
from keras import layers, ops

from fashionnet.data import IMAGE_SHAPE, NUM_CLASSES

# Parameter counts of the assignment's summary table: a check that the network is exactly the assignment's.
ASSIGNMENT_PARAMS = {"conv1": 832, "conv2": 57_672, "dense": 903_424, "probabilities": 2_570}
ASSIGNMENT_TOTAL_PARAMS = 964_498


def build_model() -> keras.Model:
    """Conv(32,5x5) -> pool -> Conv(72,5x5) -> pool -> dropout -> flatten(3528) -> dense(256) -> dropout -> softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE, name="image"),
            layers.Conv2D(32, (5, 5), padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D((2, 2), name="pool1"),
            layers.Conv2D(72, (5, 5), padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D((2, 2), name="pool2"),
            layers.Dropout(0.25, name="dropout1"),
            layers.Flatten(name="flatten"),
            layers.Dense(256, activation="relu", name="dense"),
            layers.Dropout(0.5, name="dropout2"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
        ],
        name="fashionnet",
    )


@keras.saving.register_keras_serializable(package="fashionnet")
class HorizontalFlip(layers.Layer):
    """Mirror images left-right, always: keras.layers.RandomFlip flips at random and only while training."""

    def call(self, images):
        return ops.flip(images, axis=2)  # NHWC: axis 2 is the width

    def compute_output_shape(self, input_shape):
        return input_shape


def flip_averaged(network: keras.Model) -> keras.Model:
    """Test-time augmentation inside the graph: the mean of the softmax for an image and for its mirror image.

    Both calls share the network's weights, so the parameter count is the network's; inference costs twice as
    much. Being part of the model, it is what evaluation, the ONNX/TFLite export and the edge predictor all run.
    """
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    mirrored = HorizontalFlip(name="mirror")(image)
    probabilities = layers.Average(name="flip_average")([network(image), network(mirrored)])
    return keras.Model(image, probabilities, name=f"{network.name}_flip_averaged")


def load(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """keras.saving.load_model, with fashionnet's one custom layer (HorizontalFlip) registered by this module."""
    return keras.saving.load_model(path, compile=compile)
