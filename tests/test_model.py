"""The network is exactly the assignment's: shapes, per-layer parameters, total; the improved one keeps its shape."""

from __future__ import annotations

from fashionnet.core.networks import ASSIGNMENT_PARAMS, ASSIGNMENT_TOTAL_PARAMS, build_improved_model, build_model
from tests.conftest import cli


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


def test_improved_network_keeps_the_assignment_shape_within_its_budget():
    model = build_improved_model()
    assert model.count_params() <= ASSIGNMENT_TOTAL_PARAMS
    shapes = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    assert (shapes["pool2"], shapes["flatten"], shapes["probabilities"]) == ((None, 7, 7, 72), (None, 3528), (None, 10))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Dense") == 2 and kinds.count("MaxPooling2D") == 2
    assert kinds.count("BatchNormalization") == 3
    # a layer followed by batch normalization has no bias: BN's beta is one
    assert [layer.use_bias for layer in model.layers if hasattr(layer, "use_bias")] == [False, False, False, True]
    assert build_improved_model(dense_units=200, name="smaller").get_layer("dense").units == 200


def test_summary_command_prints_the_total():
    proc = cli("summary")
    assert proc.returncode == 0, proc.stderr
    assert "964,498" in proc.stdout
    for count in ("832", "57,672", "903,424", "2,570"):
        assert count in proc.stdout


def test_flip_averaging_is_the_mean_over_mirror_images_and_adds_no_parameters(tmp_path):
    import keras
    import numpy as np

    from fashionnet.core.networks import HorizontalFlip, flip_averaged, load

    keras.utils.set_random_seed(0)
    network = build_model()
    model = flip_averaged(network)
    assert model.count_params() == network.count_params() == ASSIGNMENT_TOTAL_PARAMS
    x = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    mirrored = x[:, :, ::-1]  # left-right: the width axis of NHWC, never the height
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(HorizontalFlip()(x)), mirrored)

    plain, plain_mirrored = network.predict(x, verbose=0), network.predict(mirrored, verbose=0)
    assert np.abs(plain - plain_mirrored).max() > 1e-4  # the network alone tells an image from its mirror image
    averaged = model.predict(x, verbose=0)
    np.testing.assert_allclose(averaged, (plain + plain_mirrored) / 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.predict(mirrored, verbose=0), averaged, rtol=1e-5, atol=1e-7)

    model.save(tmp_path / "flip_averaged.keras")  # the custom layer survives a save/load round trip
    np.testing.assert_allclose(load(tmp_path / "flip_averaged.keras").predict(x, verbose=0), averaged, rtol=1e-6)
