"""The network is exactly the assignment's: shapes, per-layer parameters, total."""

from __future__ import annotations

from fashionnet.model import ASSIGNMENT_PARAMS, ASSIGNMENT_TOTAL_PARAMS, build_model
from tests.conftest import run_cli


def test_per_layer_parameters_match_the_assignment_table():
    model = build_model()
    counts = {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}
    assert counts == ASSIGNMENT_PARAMS == {"conv1": 832, "conv2": 57_672, "dense": 903_424, "probabilities": 2_570}
    assert model.count_params() == ASSIGNMENT_TOTAL_PARAMS == 964_498


def test_output_shapes_and_flatten_size():
    model = build_model()
    shapes = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    assert shapes["conv1"] == (None, 28, 28, 32)
    assert shapes["pool1"] == (None, 14, 14, 32)
    assert shapes["conv2"] == (None, 14, 14, 72)
    assert shapes["pool2"] == (None, 7, 7, 72)
    assert shapes["flatten"] == (None, 3528)  # 7 * 7 * 72, not the 1764 of the assignment's comments
    assert shapes["dense"] == (None, 256)
    assert shapes["probabilities"] == (None, 10)
    assert [layer.rate for layer in model.layers if "dropout" in layer.name] == [0.25, 0.5]


def test_summary_command_prints_the_total():
    proc = run_cli("summary")
    assert proc.returncode == 0, proc.stderr
    assert "964,498" in proc.stdout
    for count in ("832", "57,672", "903,424", "2,570"):
        assert count in proc.stdout
