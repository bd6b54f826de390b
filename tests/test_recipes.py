"""Recipes: one registry, one compile path, Keras's split; the improved recipe within the assignment's budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashionnet.cli import build_parser
from fashionnet.config import TrainConfig
from fashionnet.core import recipes
from fashionnet.core.networks import ASSIGNMENT_TOTAL_PARAMS
from fashionnet.errors import ConfigError
from fashionnet.training import fit
from fashionnet.training.augment import Augmentation
from tests.conftest import cli

# Measured: 1 epoch on the first 2,000 images (1,600 train) reaches 0.66 test accuracy (jax: 0.58); a broken pipeline
# (labels shuffled apart from images, augmentation destroying the images) stays near 0.10.
SANITY_FLOOR = 0.40
INFERENCE_LAYER_TYPES = {"Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout", "Flatten", "Dense"}
# model.flip_averaged wraps the network: its input, the mirror layer, the (nested) network, the average of the outputs
FLIP_AVERAGING_TYPES = {"InputLayer", "HorizontalFlip", "Sequential", "Average"}


def layer_types(model) -> set[str]:
    """Layer class names, nested models included (flip averaging nests the network)."""
    kinds = set()
    for layer in model.layers:
        kinds.add(type(layer).__name__)
        if hasattr(layer, "layers"):
            kinds |= layer_types(layer)
    return kinds


def test_the_registry_gives_each_recipe_its_training_defaults():
    for name, recipe in recipes.RECIPES.items():
        config = TrainConfig.for_recipe(name)
        assert config.recipe == recipe.name == name
        assert {key: getattr(config, key) for key in recipes.TRAIN_DEFAULTS} == recipe.train_defaults()
    assert TrainConfig.for_recipe("assignment") == TrainConfig()  # the config's defaults are the assignment
    config = TrainConfig.for_recipe("improved", epochs=3, batch_size=None)  # None: the recipe's default
    assert (config.epochs, config.batch_size) == (3, recipes.IMPROVED.batch_size)
    with pytest.raises(ConfigError, match="--recipe must be one of assignment, improved, got 'magic'"):
        TrainConfig.for_recipe("magic")


def test_cli_help_shows_every_recipe_default():
    train_help = " ".join(cli("train", "--help").stdout.split())
    assert build_parser().parse_args(["train", "--out", "run"]).recipe == "assignment"
    for key in recipes.TRAIN_DEFAULTS:
        for name, recipe in recipes.RECIPES.items():
            assert f"{getattr(recipe, key)} ({name})" in train_help
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--out", "run", "--recipe", "augmented"])  # not registered


def test_recipe_record_leaves_the_training_defaults_to_the_config():
    record = recipes.IMPROVED.to_dict()
    assert record["name"] == "improved" and record["augmentation"]["flip"] is True
    assert not set(recipes.TRAIN_DEFAULTS) & set(record)


def test_improved_network_fits_the_assignment_budget():
    assert fit.build(recipes.ASSIGNMENT).count_params() == ASSIGNMENT_TOTAL_PARAMS
    model = fit.build(recipes.IMPROVED)
    assert model.count_params() <= ASSIGNMENT_TOTAL_PARAMS
    assert model.name == "fashionnet_improved"
    with pytest.raises(ValueError, match="budget"):
        fit.build(recipes.IMPROVED.replace(dense_units=300))


def _assignment_images(dataset, n=400):
    from fashionnet.core.data import preprocess

    (x, y), _ = dataset
    return preprocess(x[:n], y[:n])


def test_assignment_compiles_exactly_as_keras_strings_adam_and_categorical_crossentropy(dataset):
    """The assignment's compile(optimizer="adam", loss="categorical_crossentropy") trains to the same weights."""
    import keras

    from fashionnet.core.networks import build_model

    x, y = _assignment_images(dataset)

    def trained(compile_):
        keras.utils.set_random_seed(7)
        model = build_model()
        compile_(model)
        history = model.fit(x, y, batch_size=100, epochs=2, validation_split=0.25, verbose=0).history
        return model, history

    strings, h_strings = trained(
        lambda m: m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    )
    recipe, h_recipe = trained(lambda m: fit.compile_for(m, recipes.ASSIGNMENT, steps_per_epoch=3, epochs=2))
    assert type(recipe.optimizer) is type(strings.optimizer)
    settings = [{k: v for k, v in m.optimizer.get_config().items() if k != "name"} for m in (recipe, strings)]
    assert settings[0] == settings[1]  # Keras's Adam defaults (the names differ only to be unique)
    assert h_recipe == h_strings
    for a, b in zip(recipe.get_weights(), strings.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_arguments_follow_the_augmentation_not_the_name():
    from fashionnet.training.batches import AugmentedBatches

    x, y = np.zeros((10, 28, 28, 1), "float32"), np.eye(10, dtype="float32")
    plain = fit.fit_arguments(recipes.IMPROVED.replace(augmentation=Augmentation()), x, y, 4, 0.2, seed=0)
    assert plain == dict(x=x, y=y, batch_size=4, validation_split=0.2)  # Keras's own split and shuffle
    augmented = fit.fit_arguments(recipes.IMPROVED.replace(name="assignment"), x, y, 4, 0.2, seed=0)
    assert isinstance(augmented["x"], AugmentedBatches) and len(augmented["x"]) == 2  # 8 training images
    assert len(augmented["validation_data"][0]) == 2


@pytest.mark.parametrize(("n", "validation_split"), [(7, 0.3), (2, 0.2), (10, 0.25), (60, 0.2)])
def test_one_split_is_keras_validation_split(n, validation_split):
    """split_sizes counts what Keras's fit(validation_split=...) trains and validates on."""
    import keras

    x = np.arange(n, dtype="float32")[:, None]
    counts = {"train": 0, "validation": 0}

    class Count(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            counts["train"] += 1

        def on_test_batch_begin(self, batch, logs=None):
            counts["validation"] += 1

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x, batch_size=1, epochs=1, validation_split=validation_split, callbacks=[Count()], verbose=0)

    n_train, n_validation = recipes.split_sizes(n, validation_split)
    assert (n_train, n_validation) == (counts["train"], counts["validation"])
    (x_train, _), (x_validation, _) = recipes.split(x, x, validation_split)
    assert (len(x_train), len(x_validation)) == (n_train, n_validation)
    assert recipes.steps_per_epoch(n, 1, validation_split) == n_train
    TrainConfig(limit=n, validation_split=validation_split).validate(n_available=n)  # accepted as Keras accepts it
    if (n, validation_split) == (7, 0.3):
        assert n - int(n * validation_split) != n_train  # the formula this replaced: 5 training images, not 4


@pytest.mark.slow
def test_improved_recipe_end_to_end_and_saved_model_has_no_augmentation(tmp_path):
    run = tmp_path / "improved"
    proc = cli("reproduce", "--recipe", "improved", "--epochs", "1", "--limit", "2000", "--out", run, "--no-export")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["recipe"] == "improved" and saved["recipe"]["batchnorm"] is True
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= SANITY_FLOOR

    from fashionnet.core.networks import load

    model = load(run / "model.keras")
    kinds = layer_types(model)
    allowed = INFERENCE_LAYER_TYPES | (FLIP_AVERAGING_TYPES if recipes.IMPROVED.test_time_flip else set())
    assert kinds <= allowed, kinds - allowed
    assert not any("Random" in kind or "Augment" in kind for kind in kinds)
    assert model.count_params() <= 964_498


@pytest.mark.slow
def test_augmented_training_saves_the_inference_network_only(tmp_path, dataset):
    """Flips, shifts and erasing happen in the data pipeline: the saved model has no augmentation layer."""
    from fashionnet.core.networks import load
    from fashionnet.training.trainer import train

    config = TrainConfig.for_recipe("improved", epochs=1, limit=600)
    result = train(config, tmp_path / "augmented", data=dataset, recipe=recipes.AUGMENTED, verbose=0)
    saved = json.loads((tmp_path / "augmented" / "config.json").read_text())
    assert saved["recipe"]["augmentation"] == {**saved["recipe"]["augmentation"], "flip": True, "erase": 0.5}
    model = load(result.paths.model)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= INFERENCE_LAYER_TYPES, kinds - INFERENCE_LAYER_TYPES
    assert model.count_params() == 962_036


@pytest.mark.slow
def test_test_time_flip_saves_the_flip_averaged_network(tmp_path, dataset):
    """Training sees the plain network; the saved model averages each image with its mirror image."""
    from fashionnet.core.data import preprocess_images
    from fashionnet.core.networks import load
    from fashionnet.evaluation.evaluate import evaluate_run
    from fashionnet.evaluation.report import build_report
    from fashionnet.training.trainer import train

    config = TrainConfig.for_recipe("improved", epochs=1, limit=2000, validation_split=0.2)
    recipe = recipes.IMPROVED.replace(test_time_flip=True)
    result = train(config, tmp_path / "tta", data=dataset, recipe=recipe, verbose=0)
    assert "val_accuracy" in result.history  # the validation curve is the plain network's, measured during fit
    model = load(result.paths.model)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "HorizontalFlip", "Sequential", "Average"]
    assert layer_types(model) <= INFERENCE_LAYER_TYPES | FLIP_AVERAGING_TYPES
    assert model.count_params() == 962_036
    x = preprocess_images(dataset[1][0][:200])
    np.testing.assert_allclose(model.predict(x[:, :, ::-1], verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert evaluate_run(tmp_path / "tta", data=dataset).test_accuracy >= SANITY_FLOOR
    assert "averaged over each image and its mirror image" in build_report(tmp_path / "tta")
