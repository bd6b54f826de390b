"""Training-data augmentation in numpy: the same on every backend, and never part of the saved network.

``Augmentation`` says what to change, ``augment_batch`` changes one batch; ``fashionnet.training.batches`` feeds them to
``model.fit``. No keras here: the recipe registry, and through it the config and the CLI's help, import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Label-preserving changes for garments: mirror images and small shifts; never vertical flips."""

    flip: bool = False  # horizontal flip with probability 0.5
    # Flip only these classes (None: all). Fashion-MNIST's footwear all points left, so a mirrored sandal, sneaker
    # or ankle boot never occurs in the test set (docs/accuracy.md measures what mirroring does to each class).
    flip_classes: tuple[int, ...] | None = None
    shift: int = 0  # random translation of up to +-shift pixels in each direction (zero = black background)
    erase: float = 0.0  # probability of erasing one random rectangle (random erasing, Zhong et al. 2017)
    erase_area: tuple[float, float] = (0.02, 0.2)  # fraction of the image an erased rectangle covers
    erase_ratio: tuple[float, float] = (0.3, 3.3)  # its aspect ratio

    @property
    def active(self) -> bool:
        return self.flip or self.shift > 0 or self.erase > 0


def augment_batch(
    images: np.ndarray, aug: Augmentation, rng: np.random.Generator, labels: np.ndarray | None = None
) -> np.ndarray:
    """(N, 28, 28, 1) float32 in [0, 1] -> augmented copy. Pure numpy: the same on every backend.

    ``labels`` (class indices or one-hot rows) are needed only for ``aug.flip_classes``.
    """
    x = images.copy()
    n, h, w = x.shape[:3]
    if aug.flip:
        flip = rng.random(n) < 0.5
        if aug.flip_classes is not None:
            if labels is None:
                raise ValueError("Augmentation.flip_classes needs the batch's labels")
            classes = labels.argmax(axis=1) if labels.ndim == 2 else labels
            flip &= np.isin(classes, aug.flip_classes)
        x[flip] = x[flip, :, ::-1]
    if aug.shift > 0:
        s = aug.shift
        padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
        dy = rng.integers(0, 2 * s + 1, n)
        dx = rng.integers(0, 2 * s + 1, n)
        rows = dy[:, None] + np.arange(h)[None, :]  # (n, h)
        cols = dx[:, None] + np.arange(w)[None, :]  # (n, w)
        x = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if aug.erase > 0:
        for i in np.flatnonzero(rng.random(n) < aug.erase):
            for _ in range(10):  # a rectangle that fits; give up quietly after 10 draws
                area = rng.uniform(*aug.erase_area) * h * w
                ratio = math.exp(rng.uniform(math.log(aug.erase_ratio[0]), math.log(aug.erase_ratio[1])))
                eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
                if 0 < eh < h and 0 < ew < w:
                    top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
                    x[i, top : top + eh, left : left + ew] = rng.random((eh, ew, x.shape[3]), dtype=np.float32)
                    break
    return x.astype("float32", copy=False)
