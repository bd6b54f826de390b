"""The config's defaults are the assignment; every option out of range is refused by name."""

from __future__ import annotations

import pytest

from fashionnet.config import TrainConfig
from fashionnet.errors import ConfigError


def test_defaults_are_the_assignment():
    c = TrainConfig()
    assert (c.epochs, c.batch_size, c.validation_split) == (35, 300, 0.2)
    assert (c.optimizer, c.loss, c.recipe, c.limit) == ("adam", "categorical_crossentropy", "assignment", None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "--epochs must be an integer >= 1, got 0"),
        ({"batch_size": -1}, "--batch-size must be an integer >= 1, got -1"),
        ({"validation_split": 1.5}, r"--validation-split must be in \[0, 1\), got 1.5"),
        ({"validation_split": -0.1}, "--validation-split"),
        ({"limit": 0}, "--limit must be an integer >= 1"),
        ({"seed": -3}, "--seed"),
        ({"recipe": "magic"}, "--recipe must be one of"),
    ],
)
def test_out_of_range_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_limit_larger_than_the_data():
    with pytest.raises(ConfigError, match="--limit 70000 is larger than the 60000 training images"):
        TrainConfig(limit=70000).validate(n_available=60000)


def test_split_must_leave_images_on_both_sides():
    with pytest.raises(ConfigError, match="leaves"):
        TrainConfig(limit=2, validation_split=0.2).validate(n_available=60000)


def test_round_trip_and_unknown_keys():
    c = TrainConfig(epochs=3, limit=100)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown config keys: bogus"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})
