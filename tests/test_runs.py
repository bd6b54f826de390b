"""The run record (config.json) has one schema, versioned; old records still load, unknown ones are refused."""

from __future__ import annotations

import json

import pytest

from fashionnet.config import TrainConfig
from fashionnet.errors import RunError
from fashionnet.runs import RECORD_SCHEMA, RunPaths, RunRecord, read_record, write_record

# A config.json as fashionnet 0.1.0 wrote it before the record had an owner (schema 1, no "schema" key).
SCHEMA_1 = {
    "config": {"recipe": "improved", "epochs": 30, "batch_size": 128, "validation_split": 0.0, "seed": 1,
               "limit": None, "optimizer": "adamw", "loss": "categorical_crossentropy", "precision": "float32"},
    "recipe": {"name": "improved", "test_time_flip": True},
    "environment": {"backend": "jax", "keras": "3.15.1",
                    "data_sha256": {"train-images-idx3-ubyte.gz": "c59f468a"}},
}  # fmt: skip


def test_a_record_round_trips_with_its_schema_and_backend(tmp_path):
    paths = RunPaths(tmp_path)
    record = RunRecord(TrainConfig(epochs=3, limit=600), {"name": "assignment"}, {"backend": "torch"})
    write_record(paths, record)
    assert json.loads(paths.config.read_text())["schema"] == RECORD_SCHEMA
    again = read_record(paths)
    assert again == record and again.backend == "torch"
    assert again.differences(TrainConfig(epochs=3, limit=600)) == []
    assert again.differences(TrainConfig(epochs=4, limit=600)) == ["epochs: 3 -> 4"]


def test_a_schema_1_record_still_loads(tmp_path):
    paths = RunPaths(tmp_path)
    paths.config.write_text(json.dumps(SCHEMA_1))
    record = read_record(paths)
    assert record.backend == "jax" and record.recipe["test_time_flip"] is True
    assert record.config == TrainConfig.for_recipe("improved", seed=1)
    assert record.environment["data_sha256_of_decompressed_idx"] == {"train-images-idx3-ubyte": "c59f468a"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({**SCHEMA_1, "schema": 99}, r"run record schema 99, this fashionnet .* reads schemas 1 and 2"),
        ({"backend": "jax", "epochs": 1}, "not a fashionnet run record"),
        ([1, 2], "not a fashionnet run record"),
        ({"config": {"epochs": 1, "colour": "red"}}, "unknown config keys: colour"),
    ],
)
def test_records_that_cannot_be_read_are_refused_naming_the_file(tmp_path, content, message):
    paths = RunPaths(tmp_path)
    paths.config.write_text(json.dumps(content))
    with pytest.raises(RunError, match=message) as info:
        read_record(paths)
    assert str(info.value).startswith(str(paths.config))
