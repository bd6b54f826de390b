"""How a recipe (fashionnet.core.recipes) builds, compiles and feeds its network: what the trainer, the benchmarks
and plain-Keras comparisons run."""

from __future__ import annotations

import keras

from fashionnet.core.networks import ASSIGNMENT_TOTAL_PARAMS, build_improved_model, build_model
from fashionnet.core.recipes import Recipe, split
from fashionnet.training.batches import AugmentedBatches, validation_batches


def build(recipe: Recipe) -> keras.Model:
    """The recipe's network: the assignment's, or the improved one, which may not have more parameters."""
    if not recipe.batchnorm:
        return build_model()
    model = build_improved_model(recipe.dense_units, name=f"fashionnet_{recipe.name}")
    if model.count_params() > ASSIGNMENT_TOTAL_PARAMS:
        raise ValueError(
            f"recipe {recipe.name}: {model.count_params():,} parameters > budget {ASSIGNMENT_TOTAL_PARAMS:,}"
        )
    return model


def learning_rate(recipe: Recipe, steps_per_epoch: int, epochs: int):
    """The recipe's learning rate: a constant, or linear warm-up then cosine decay to 0 over the whole run."""
    if recipe.schedule == "constant":
        return recipe.learning_rate
    if recipe.schedule == "cosine":
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


def fit_arguments(recipe: Recipe, x, y, batch_size: int, validation_split: float, *, seed: int, topology=None) -> dict:
    """Keyword arguments for model.fit.

    Without augmentation: the arrays and Keras's own validation_split and shuffling. With augmentation: shuffled,
    augmented batches of the training part (batches.AugmentedBatches) and the validation part as validation_data.
    Data parallel (``topology``, fashionnet.training.distributed): those batches for every recipe, each global batch
    cut to this process's shard, and the validation part in sharded batches too.
    """
    if not recipe.augmentation.active and topology is None:
        return dict(x=x, y=y, batch_size=batch_size, validation_split=validation_split)
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
