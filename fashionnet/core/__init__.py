"""Shared by every stage: the data, the networks, the recipe registry, storage, the console."""
