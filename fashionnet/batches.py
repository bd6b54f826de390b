"""The batches ``model.fit`` reads for a recipe with augmentation: shuffled each epoch, augmented in numpy."""

from __future__ import annotations

import math

import keras
import numpy as np

from fashionnet.augment import Augmentation, augment_batch


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented training batches; epoch e uses numpy's generator seeded with (seed, e)."""

    def __init__(self, x, y, batch_size: int, augmentation: Augmentation, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.augmentation, self.seed = x, y, batch_size, augmentation, seed
        self.epoch = 0
        self._new_epoch()

    def _new_epoch(self):
        self.rng = np.random.default_rng((self.seed, self.epoch))
        self.order = self.rng.permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        ids = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        x = self.x[ids]
        if self.augmentation.active:
            x = augment_batch(x, self.augmentation, self.rng, self.y[ids])
        return x, self.y[ids]

    def on_epoch_end(self):
        self.epoch += 1
        self._new_epoch()
