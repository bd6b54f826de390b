"""Training: the trainer, its callbacks, batches and augmentation, backend ops, data parallel."""
