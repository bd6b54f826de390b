"""Training recipes: the one registry of what ``--recipe`` names, and how a recipe compiles and feeds its network.

A ``Recipe`` holds everything a training run decides besides the seed and ``--limit``: the network
(``fashionnet.core.networks``), the optimizer, learning-rate schedule and loss, the training-data augmentation
(``fashionnet.training.augment``),
whether the saved model averages each image with its mirror image, and the defaults of
``--epochs``, ``--batch-size`` and ``--validation-split``. ``RECIPES`` is the registry: the CLI's choices and
``TrainConfig.for_recipe`` read it. Why each setting was chosen, with the measurements, is in docs/accuracy.md.

The train/validation split is computed here once (``split_sizes``), as Keras's ``validation_split`` computes it.
Importing this module does not import keras (the config and the CLI's help read the registry); the functions that
build, compile and fit do.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fashionnet.errors import ConfigError
from fashionnet.training.augment import Augmentation

if TYPE_CHECKING:
    import keras
    import numpy as np

# Recipe fields that are TrainConfig's defaults: config.json records the values used under "config" instead.
TRAIN_DEFAULTS = ("epochs", "batch_size", "validation_split")


@dataclass(frozen=True)
class Recipe:
    """A training recipe; the defaults are the assignment's (adam with Keras's defaults, plain cross-entropy)."""

    name: str
    batchnorm: bool = False  # False: the assignment's network exactly (model.build_model)
    dense_units: int = 256  # the improved network's hidden layer (model.build_improved_model)
    optimizer: str = "adam"  # "adam" or "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    schedule: str = "constant"  # "constant" or "cosine" (linear warm-up, then cosine decay to 0)
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augmentation: Augmentation = field(default_factory=Augmentation)
    # Save and serve model.flip_averaged(network): predictions averaged over each image and its mirror image.
    test_time_flip: bool = False
    # TrainConfig.for_recipe's defaults (TRAIN_DEFAULTS)
    epochs: int = 35
    batch_size: int = 300
    validation_split: float = 0.2  # Keras's validation_split: the last fraction of the training images

    def train_defaults(self) -> dict:
        """This recipe's defaults of TrainConfig's epochs, batch size and validation split."""
        return {name: getattr(self, name) for name in TRAIN_DEFAULTS}

    def to_dict(self) -> dict:
        """What config.json records under "recipe": everything but the TrainConfig defaults."""
        values = dataclasses.asdict(self)
        for name in TRAIN_DEFAULTS:
            del values[name]
        return values

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)


ASSIGNMENT = Recipe(name="assignment")

# Classes whose mirror image is still a plausible item of the class: everything but the footwear (5 sandal,
# 7 sneaker, 9 ankle boot), which Fashion-MNIST shows pointing left only.
MIRROR_SAFE_CLASSES = (0, 1, 2, 3, 4, 6, 8)

# The assignment's network shape within its parameter budget, plus what docs/accuracy.md measured to help.
IMPROVED = Recipe(
    name="improved",
    batchnorm=True,
    dense_units=255,  # one unit fewer than the assignment pays for the batch-normalization parameters
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=0.05,
    schedule="cosine",
    warmup_epochs=2,
    augmentation=Augmentation(flip=True),
    test_time_flip=True,
    epochs=30,
    batch_size=128,
    validation_split=0.0,  # chosen on the validation split; the final model trains on every training image
)

# Not registered (worse on the validation split, docs/accuracy.md): the Python API and the ablation use it.
AUGMENTED = IMPROVED.replace(
    name="augmented",
    label_smoothing=0.1,
    augmentation=Augmentation(flip=True, shift=2, erase=0.5),
    test_time_flip=False,
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (ASSIGNMENT, IMPROVED)}


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name``; ConfigError naming the choices otherwise."""
    try:
        return RECIPES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"--recipe must be one of {', '.join(RECIPES)}, got {name!r}") from None


# --------------------------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------------------------


def build(recipe: Recipe) -> keras.Model:
    """The recipe's network: the assignment's, or the improved one, which may not have more parameters."""
    from fashionnet.core.networks import ASSIGNMENT_TOTAL_PARAMS, build_improved_model, build_model

    if not recipe.batchnorm:
        return build_model()
    model = build_improved_model(recipe.dense_units, name=f"fashionnet_{recipe.name}")
    if model.count_params() > ASSIGNMENT_TOTAL_PARAMS:
        raise ValueError(
            f"recipe {recipe.name}: {model.count_params():,} parameters > budget {ASSIGNMENT_TOTAL_PARAMS:,}"
        )
    return model


# --------------------------------------------------------------------------------------------------------------
# Compile
# --------------------------------------------------------------------------------------------------------------


def learning_rate(recipe: Recipe, steps_per_epoch: int, epochs: int):
    if recipe.schedule == "constant":
        return recipe.learning_rate
    if recipe.schedule == "cosine":
        import keras

        total = max(1, steps_per_epoch * epochs)
        warmup = min(int(round(recipe.warmup_epochs * steps_per_epoch)), total - 1)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else recipe.learning_rate,
            decay_steps=total - warmup,
            alpha=0.0,
            warmup_target=recipe.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


def compile_for(model: keras.Model, recipe: Recipe, steps_per_epoch: int, epochs: int) -> keras.Model:
    """Compile with the recipe's optimizer and loss. The assignment's (Adam with Keras's defaults, plain
    categorical cross-entropy) is what compile(optimizer="adam", loss="categorical_crossentropy") builds."""
    import keras

    lr = learning_rate(recipe, steps_per_epoch, epochs)
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=recipe.weight_decay)
    elif recipe.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    else:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}")
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def split_sizes(n: int, validation_split: float) -> tuple[int, int]:
    """(training, validation) image counts of n images, as Keras's validation_split splits them.

    Keras trains on the first floor(n * (1 - validation_split)) and validates on the rest
    (keras/src/trainers/data_adapters/array_slicing.py, train_validation_split). Every count in fashionnet uses
    this function: n - int(n * validation_split) differs when n * validation_split is not whole.
    """
    if validation_split <= 0:
        return n, 0
    n_train = int(math.floor(n * (1.0 - validation_split)))
    return n_train, n - n_train


def split(x: np.ndarray, y: np.ndarray, validation_split: float):
    """Keras's validation_split: ((x, y) of training, (x, y) of validation or None), the last part unshuffled."""
    if validation_split <= 0:
        return (x, y), None
    n_train, _ = split_sizes(len(x), validation_split)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def fit_arguments(recipe: Recipe, x, y, batch_size: int, validation_split: float, seed: int, topology=None) -> dict:
    """Keyword arguments for model.fit.

    Without augmentation: the arrays and Keras's own validation_split and shuffling. With augmentation: shuffled,
    augmented batches of the training part (batches.AugmentedBatches) and the validation part as validation_data.
    Data parallel (``topology``, fashionnet.training.distributed): those batches for every recipe, each global batch
    cut to
    this process's shard, and the validation part in sharded batches too.
    """
    if not recipe.augmentation.active and topology is None:
        return dict(x=x, y=y, batch_size=batch_size, validation_split=validation_split)
    from fashionnet.training.batches import AugmentedBatches, validation_batches

    (x_train, y_train), validation = split(x, y, validation_split)
    if topology is None:
        return dict(
            x=AugmentedBatches(x_train, y_train, batch_size, recipe.augmentation, seed), validation_data=validation
        )
    shard, multiple = (topology.process_index, topology.process_count), topology.devices
    batches = AugmentedBatches(x_train, y_train, batch_size, recipe.augmentation, seed, shard=shard, multiple=multiple)
    if validation is not None:
        validation = validation_batches(*validation, batch_size, shard=shard, multiple=multiple)
    return dict(x=batches, validation_data=validation, shuffle=False)  # the batches are shuffled, the same everywhere


def steps_per_epoch(n_images: int, batch_size: int, validation_split: float) -> int:
    return math.ceil(split_sizes(n_images, validation_split)[0] / batch_size)
