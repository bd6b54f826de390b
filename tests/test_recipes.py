"""The improved recipe: within the assignment's parameter budget, augmentation only in training, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashionnet import recipes
from fashionnet.config import RECIPE_DEFAULTS, RECIPES, TrainConfig
from fashionnet.errors import ConfigError
from fashionnet.model import ASSIGNMENT_TOTAL_PARAMS
from tests.conftest import run_cli

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


def test_recipes_are_known_to_the_config_and_the_cli():
    assert set(RECIPES) == set(recipes.RECIPES) == set(RECIPE_DEFAULTS) == {"assignment", "improved"}
    assert TrainConfig.for_recipe("assignment") == TrainConfig()  # the assignment's defaults are unchanged
    improved = TrainConfig.for_recipe("improved")
    assert (improved.epochs, improved.batch_size, improved.optimizer) == (30, 128, "adamw")
    assert improved.validation_split == 0.0  # the final model trains on all 60,000 images
    assert recipes.IMPROVED.augmentation == recipes.Augmentation(flip=True)
    assert recipes.IMPROVED.test_time_flip is True  # the saved model averages each image with its mirror image
    assert TrainConfig.for_recipe("improved", epochs=3, batch_size=None).epochs == 3
    with pytest.raises(ConfigError, match="--recipe must be one of"):
        TrainConfig.for_recipe("magic")


def test_improved_network_fits_the_assignment_budget_and_shape():
    assignment = recipes.build(recipes.ASSIGNMENT)
    model = recipes.build(recipes.IMPROVED)
    assert assignment.count_params() == ASSIGNMENT_TOTAL_PARAMS == 964_498
    assert model.count_params() <= 964_498
    assert model.count_params() == 962_036
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Dense") == 2 and kinds.count("MaxPooling2D") == 2
    assert set(kinds) <= INFERENCE_LAYER_TYPES
    assert tuple(model.output_shape) == (None, 10)


def _stripes():
    """Images whose rows and columns are all different, so any flip or shift is visible."""
    base = (np.arange(28 * 28, dtype="float32").reshape(28, 28) + 1) / (28 * 28)
    return np.repeat(base[None, :, :, None], 64, axis=0)


def test_flips_are_horizontal_only_and_about_half():
    x = _stripes()
    out = recipes.augment_batch(x, recipes.Augmentation(flip=True), np.random.default_rng(0))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)  # never a vertical flip
    assert 16 <= mirrored.sum() <= 48
    assert np.array_equal(x, _stripes())  # the input is not modified


def test_flip_classes_mirror_only_those_classes():
    x = np.repeat(_stripes(), 4, axis=0)  # 256 images, labels 0..9 in turn
    labels = np.arange(len(x)) % 10
    aug = recipes.Augmentation(flip=True, flip_classes=recipes.MIRROR_SAFE_CLASSES)
    for y in (labels, np.eye(10, dtype="float32")[labels]):  # class indices or one-hot rows
        out = recipes.augment_batch(x, aug, np.random.default_rng(3), y)
        mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
        assert np.all(mirrored | np.all(out == x, axis=(1, 2, 3)))
        assert not mirrored[np.isin(labels, (5, 7, 9))].any()  # footwear is never mirrored
        assert 0.3 < mirrored[np.isin(labels, recipes.MIRROR_SAFE_CLASSES)].mean() < 0.7
    with pytest.raises(ValueError, match="needs the batch's labels"):
        recipes.augment_batch(x, aug, np.random.default_rng(3))


def test_shifts_move_by_at_most_the_limit_and_fill_with_background():
    x = _stripes()
    out = recipes.augment_batch(x, recipes.Augmentation(shift=2), np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    for image in out[:, :, :, 0]:
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(image, np.roll(np.pad(x[0, :, :, 0], 2), (dy, dx), axis=(0, 1))[2:-2, 2:-2])
        ]
        assert len(found) == 1


def test_erasing_changes_one_rectangle():
    x = np.zeros((32, 28, 28, 1), dtype="float32")
    out = recipes.augment_batch(x, recipes.Augmentation(erase=1.0), np.random.default_rng(2))
    for image in out[:, :, :, 0]:
        rows, cols = np.nonzero(image)
        assert len(rows) > 0
        box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert np.all(box > 0) and box.size <= 0.2 * 28 * 28 + 28  # area up to 20% (rounding of the sides)


def test_improved_recipe_end_to_end_and_saved_model_has_no_augmentation(tmp_path):
    run = tmp_path / "improved"
    proc = run_cli("reproduce", "--recipe", "improved", "--epochs", "1", "--limit", "2000", "--out", str(run),
                   "--no-export", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["recipe"] == "improved" and saved["recipe"]["batchnorm"] is True
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= SANITY_FLOOR

    from fashionnet.evaluate import load_model

    model = load_model(run / "model.keras")
    kinds = layer_types(model)
    allowed = INFERENCE_LAYER_TYPES | (FLIP_AVERAGING_TYPES if recipes.IMPROVED.test_time_flip else set())
    assert kinds <= allowed, kinds - allowed
    assert not any("Random" in kind or "Augment" in kind for kind in kinds)
    assert model.count_params() <= 964_498


def test_augmented_training_saves_the_inference_network_only(tmp_path, dataset):
    """Flips, shifts and erasing happen in the data pipeline: the saved model has no augmentation layer."""
    from fashionnet.evaluate import load_model
    from fashionnet.train import train

    config = TrainConfig.for_recipe("improved", epochs=1, limit=600)
    result = train(config, tmp_path / "augmented", dataset=dataset, recipe=recipes.AUGMENTED, verbose=0)
    saved = json.loads((tmp_path / "augmented" / "config.json").read_text())
    assert saved["recipe"]["augmentation"] == {**saved["recipe"]["augmentation"], "flip": True, "erase": 0.5}
    model = load_model(result.paths.model)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= INFERENCE_LAYER_TYPES, kinds - INFERENCE_LAYER_TYPES
    assert model.count_params() == 962_036


def test_test_time_flip_saves_the_flip_averaged_network(tmp_path, dataset):
    """Training sees the plain network; the saved model averages each image with its mirror image."""
    from fashionnet.data import preprocess_images
    from fashionnet.evaluate import evaluate_run, load_model
    from fashionnet.report import build_report
    from fashionnet.train import train

    config = TrainConfig.for_recipe("improved", epochs=1, limit=2000, validation_split=0.2)
    recipe = recipes.IMPROVED.replace(test_time_flip=True)
    result = train(config, tmp_path / "tta", dataset=dataset, recipe=recipe, verbose=0)
    assert "val_accuracy" in result.history  # the validation curve is the plain network's, measured during fit
    model = load_model(result.paths.model)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "HorizontalFlip", "Sequential", "Average"]
    assert layer_types(model) <= INFERENCE_LAYER_TYPES | FLIP_AVERAGING_TYPES
    assert model.count_params() == 962_036
    x = preprocess_images(dataset[1][0][:200])
    np.testing.assert_allclose(model.predict(x[:, :, ::-1], verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert evaluate_run(tmp_path / "tta", dataset=dataset).test_accuracy >= SANITY_FLOOR
    assert "averaged over each image and its mirror image" in build_report(tmp_path / "tta")
