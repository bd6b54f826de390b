"""Training-data augmentation: label-preserving changes in numpy, the same on every backend."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fashionnet.core.recipes import MIRROR_SAFE_CLASSES
from fashionnet.training.augment import Augmentation, augment_batch


def _stripes():
    """Images whose rows and columns are all different, so any flip or shift is visible."""
    base = (np.arange(28 * 28, dtype="float32").reshape(28, 28) + 1) / (28 * 28)
    return np.repeat(base[None, :, :, None], 64, axis=0)


def test_flips_are_horizontal_only_and_about_half():
    x = _stripes()
    out = augment_batch(x, Augmentation(flip=True), np.random.default_rng(0))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)  # never a vertical flip
    assert 16 <= mirrored.sum() <= 48
    assert np.array_equal(x, _stripes())  # the input is not modified


def test_flip_classes_mirror_only_those_classes():
    x = np.repeat(_stripes(), 4, axis=0)  # 256 images, labels 0..9 in turn
    labels = np.arange(len(x)) % 10
    aug = Augmentation(flip=True, flip_classes=MIRROR_SAFE_CLASSES)
    for y in (labels, np.eye(10, dtype="float32")[labels]):  # class indices or one-hot rows
        out = augment_batch(x, aug, np.random.default_rng(3), y)
        mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
        assert np.all(mirrored | np.all(out == x, axis=(1, 2, 3)))
        assert not mirrored[np.isin(labels, (5, 7, 9))].any()  # footwear is never mirrored
        assert 0.3 < mirrored[np.isin(labels, MIRROR_SAFE_CLASSES)].mean() < 0.7
    with pytest.raises(ValueError, match="needs the batch's labels"):
        augment_batch(x, aug, np.random.default_rng(3))


def test_shifts_move_by_at_most_the_limit_and_fill_with_background():
    x = _stripes()
    out = augment_batch(x, Augmentation(shift=2), np.random.default_rng(1))
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
    out = augment_batch(x, Augmentation(erase=1.0), np.random.default_rng(2))
    for image in out[:, :, :, 0]:
        rows, cols = np.nonzero(image)
        assert len(rows) > 0
        box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert np.all(box > 0) and box.size <= 0.2 * 28 * 28 + 28  # area up to 20% (rounding of the sides)


def test_augmented_batches_cover_every_image_once_per_epoch_in_a_new_order():
    from fashionnet.training.batches import AugmentedBatches

    x = np.arange(10, dtype="float32").reshape(10, 1, 1, 1)
    batches = AugmentedBatches(x, np.arange(10), batch_size=4, augmentation=Augmentation(), seed=0)
    assert len(batches) == 3

    def epoch():
        return np.concatenate([batches[i][1] for i in range(len(batches))])

    first = epoch()
    batches.on_epoch_end()
    second = epoch()
    assert sorted(first) == sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    again = AugmentedBatches(x, np.arange(10), batch_size=4, augmentation=Augmentation(), seed=0)
    assert np.array_equal(np.concatenate([again[i][1] for i in range(3)]), first)  # (seed, epoch) decides the order


def test_importing_the_augmentation_does_not_import_keras():
    code = "import sys, fashionnet.training.augment; assert 'keras' not in sys.modules, 'keras imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
