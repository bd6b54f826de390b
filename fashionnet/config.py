"""Training configuration: a frozen dataclass whose defaults ARE the assignment."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fashionnet.core.recipes import ASSIGNMENT, get_recipe, split_sizes
from fashionnet.errors import ConfigError

PRECISIONS = ("float32", "mixed_bfloat16")  # keras.mixed_precision policies; float32 is the assignment


@dataclass(frozen=True)
class TrainConfig:
    """The options of a training run: the recipe (by its registered name), what fit() is told, the seed, a subset
    size for quick runs and the compute precision. The recipe decides the network, the compile settings and the
    training data (fashionnet.core.recipes)."""

    recipe: str = ASSIGNMENT.name
    epochs: int = ASSIGNMENT.epochs
    batch_size: int = ASSIGNMENT.batch_size
    validation_split: float = ASSIGNMENT.validation_split  # the last fraction of the training images (Keras's)
    seed: int = 42
    limit: int | None = None  # train on the first N training images (quick runs); None = all 60,000
    # opt-in: compute in bfloat16 with float32 weights (keras.mixed_precision); model.keras is saved float32
    precision: str = "float32"
    # data parallel over every device and process of the job (keras.distribution, jax; training/distributed.py)
    distribute: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self, n_available: int | None = None) -> None:
        """Reject options out of range with the option's CLI name, the value and what is allowed."""
        get_recipe(self.recipe)  # a registered recipe, or ConfigError naming the choices
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"--epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"--batch-size must be an integer >= 1, got {self.batch_size!r}")
        if not (0.0 <= self.validation_split < 1.0):
            raise ConfigError(f"--validation-split must be in [0, 1), got {self.validation_split!r}")
        if not isinstance(self.distribute, bool):
            raise ConfigError(f"--distribute is a flag (True or False), got {self.distribute!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.limit is not None:
            if not isinstance(self.limit, int) or self.limit < 1:
                raise ConfigError(f"--limit must be an integer >= 1, got {self.limit!r}")
            if n_available is not None and self.limit > n_available:
                raise ConfigError(f"--limit {self.limit} is larger than the {n_available} training images available")
        n = self.limit if self.limit is not None else n_available
        if n is not None:
            n_train, n_validation = split_sizes(n, self.validation_split)
            if n_train < 1 or (self.validation_split > 0 and n_validation < 1):
                raise ConfigError(
                    f"--validation-split {self.validation_split} of {n} images leaves "
                    f"{n_train} for training and {n_validation} for validation; both must be >= 1"
                )

    @classmethod
    def for_recipe(cls, recipe: str = ASSIGNMENT.name, **options) -> TrainConfig:
        """The registered recipe's defaults (Recipe.train_defaults), overridden by the options that are not None."""
        values = {**get_recipe(recipe).train_defaults(), **{k: v for k, v in options.items() if v is not None}}
        return cls(recipe=recipe, **values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """to_dict's inverse; an unknown key is refused (older run records are migrated by runs.RunRecord)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)
