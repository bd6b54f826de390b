"""The config's defaults are the assignment; every option out of range is refused by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fashionnet.config import TrainConfig
from fashionnet.errors import ConfigError


def test_defaults_are_the_assignment():
    c = TrainConfig()
    assert c == TrainConfig.for_recipe("assignment") and c.limit is None
    assert "optimizer" not in c.to_dict() and "loss" not in c.to_dict()  # the recipe decides how to compile


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
    with pytest.raises(ConfigError, match="of 1 images leaves 0 for training and 1 for validation"):
        TrainConfig(limit=1, validation_split=0.2).validate(n_available=60000)
    with pytest.raises(ConfigError, match="leaves 10 for training and 0 for validation"):
        TrainConfig(limit=10, validation_split=1e-20)  # 1 - 1e-20 == 1.0: Keras would refuse it too
    TrainConfig(limit=2, validation_split=0.2)  # Keras trains on 1 image and validates on 1


def test_round_trip_and_unknown_keys():
    c = TrainConfig(epochs=3, limit=100)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown config keys: bogus"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_the_config_and_the_recipe_registry_do_not_import_keras():
    code = (
        "import sys\n"
        "from fashionnet.config import TrainConfig\n"
        "TrainConfig.for_recipe('improved').validate(n_available=60000)\n"
        "assert 'keras' not in sys.modules, 'keras imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
