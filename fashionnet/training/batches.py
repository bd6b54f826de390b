"""The batches ``model.fit`` reads for a recipe with augmentation, and for every data-parallel run: shuffled each
epoch, augmented in numpy, and in a multi-process job cut to this process's shard of each global batch."""

from __future__ import annotations

import keras
import numpy as np

from fashionnet.training.augment import Augmentation, augment_batch


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented training batches; epoch e uses numpy's generator seeded with (seed, e).

    ``shard=(index, count)``: yield only the index-th of ``count`` equal, contiguous parts of each global batch
    (process ``index`` of a data-parallel job). Every process draws the same permutation and augments the whole
    global batch before cutting it, so N processes train on exactly the batches one process would.
    ``multiple``: a last, partial global batch is cut to a multiple of it (the devices must split it evenly).
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        augmentation: Augmentation,
        seed: int,
        shard: tuple[int, int] = (0, 1),
        multiple: int = 1,
        shuffle: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.augmentation, self.seed = x, y, batch_size, augmentation, seed
        self.shard, self.multiple, self.shuffle = shard, multiple, shuffle
        self.epoch = 0
        self._new_epoch()

    def _new_epoch(self):
        self.rng = np.random.default_rng((self.seed, self.epoch))
        self.order = self.rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def __len__(self):
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (rest >= self.multiple)  # a last batch smaller than `multiple` images is dropped

    def __getitem__(self, index):
        ids = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        ids = ids[: len(ids) - len(ids) % self.multiple]
        x = self.x[ids]
        if self.augmentation.active:
            x = augment_batch(x, self.augmentation, self.rng, self.y[ids])
        part, count = self.shard
        size = len(ids) // count
        return x[part * size : (part + 1) * size], self.y[ids][part * size : (part + 1) * size]

    def on_epoch_end(self):
        self.epoch += 1
        self._new_epoch()


def validation_batches(x, y, batch_size: int, shard: tuple[int, int], multiple: int) -> AugmentedBatches:
    """The validation part in order, each global batch cut to this process's shard (data-parallel runs)."""
    return AugmentedBatches(x, y, batch_size, Augmentation(), seed=0, shard=shard, multiple=multiple, shuffle=False)
