"""Shared by every stage: the data, the networks, the recipe registry, the console, child processes, the timer."""
