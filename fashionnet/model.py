"""The assignment's network, layer for layer, from standard Keras layers only."""

import keras
from keras import layers

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
