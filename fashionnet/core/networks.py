"""The assignment's network, layer for layer, from standard Keras layers only; and flip averaging around a network."""

import os

import keras
from keras import layers, ops

from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES

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


def build_improved_model(dense_units: int = 255, name: str = "fashionnet_improved") -> keras.Model:
    """The assignment's two-conv network with batch normalization after each convolution and the hidden layer.

    Conv(32,5x5) -> BN -> relu -> pool -> Conv(72,5x5) -> BN -> relu -> pool -> dropout -> flatten(3528)
    -> dense(dense_units) -> BN -> relu -> dropout -> softmax(10). Layers followed by BN have no bias (BN's beta
    is one). With 255 hidden units it has fewer parameters than the assignment's network.
    """
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE, name="image"),
            layers.Conv2D(32, (5, 5), padding="same", use_bias=False, name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.Activation("relu", name="relu1"),
            layers.MaxPooling2D((2, 2), name="pool1"),
            layers.Conv2D(72, (5, 5), padding="same", use_bias=False, name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("relu", name="relu2"),
            layers.MaxPooling2D((2, 2), name="pool2"),
            layers.Dropout(0.25, name="dropout1"),
            layers.Flatten(name="flatten"),
            layers.Dense(dense_units, use_bias=False, name="dense"),
            layers.BatchNormalization(name="bn3"),
            layers.Activation("relu", name="relu3"),
            layers.Dropout(0.5, name="dropout2"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
        ],
        name=name,
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


MAX_ARCHIVE_BYTES = 1 << 30


def load(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """A fashionnet .keras file, with its one custom layer (HorizontalFlip) registered by this module.

    Every way the file can fail is a ModelError naming it: missing, not a .keras archive (e.g. truncated), not
    loadable, or not a fashionnet model (fashionnet.parity.runtimes.check_contract, the check artifacts get too).
    """
    import zipfile
    from pathlib import Path

    from fashionnet.errors import ModelError, first_line
    from fashionnet.parity.runtimes import check_contract

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a Keras model archive (.keras zip file); it may be truncated")
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelError(f"{path} is not a readable Keras model archive ({first_line(exc)})") from exc
    if unpacked > MAX_ARCHIVE_BYTES:  # a few-kB zip can claim gigabytes; fashionnet's models unpack to ~12 MB
        raise ModelError(f"{path}: archive unpacks to {unpacked:,} bytes, at most {MAX_ARCHIVE_BYTES:,} allowed")
    try:
        model = keras.saving.load_model(path, compile=compile)  # safe_mode=True: no code from the file runs
    except Exception as exc:  # noqa: BLE001 - keras raises many types for damaged archives
        if "safe_mode" in str(exc):  # a Lambda or other layer that would run code from the file
            asked = first_line(exc).split(". ")[0]
            raise ModelError(f"{path}: refused, the archive asks to run Python code ({asked}); Keras's safe mode "
                             "stays on and fashionnet models never need it") from exc  # fmt: skip
        raise ModelError(f"{path} could not be loaded as a Keras model: {first_line(exc)}") from exc
    check_contract(path, getattr(model, "input_shape", None), getattr(model, "output_shape", None))
    return model
