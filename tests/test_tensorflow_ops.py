"""fashionnet/tensorflow_ops.py: the trainer's fused batch normalization computes what Keras's layer computes."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("Keras routes batch normalization through tensorflow_ops only on tensorflow", allow_module_level=True)

from fashionnet import tensorflow_ops  # noqa: E402


def _training_step(fused: bool, shape, center=True, scale=True, momentum=0.99):
    """One training call of a fresh BatchNormalization: output, the input/gamma/beta gradients, moving stats."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal(shape).astype("float32") * 3 + 1)
    layer = keras.layers.BatchNormalization(center=center, scale=scale, momentum=momentum)
    layer.build(shape)
    for variable, value in zip(layer.weights, (1.5, -0.5, 0.3, 2.0), strict=False):  # gamma, beta, moving stats
        variable.assign(np.full(variable.shape, value, "float32") + rng.random(variable.shape).astype("float32"))
    upstream = tf.constant(rng.standard_normal(shape).astype("float32"))
    with tensorflow_ops.fused_batch_normalization() if fused else contextlib.nullcontext():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [y.numpy(), *(g.numpy() for g in grads), layer.moving_mean.numpy(), layer.moving_variance.numpy()]


@pytest.mark.parametrize(
    "shape, center, scale",
    [((16, 28, 28, 32), False, True), ((16, 14, 14, 72), True, True), ((128, 255), True, False), ((9, 5), True, True)],
)
def test_fused_batch_normalization_matches_keras_within_float32_rounding(shape, center, scale):
    fused, reference = _training_step(True, shape, center, scale), _training_step(False, shape, center, scale)
    assert len(fused) == len(reference)
    for got, want in zip(fused, reference, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * float(np.abs(want).max()))


def test_only_the_training_call_is_fused_and_the_context_restores_keras(monkeypatch):
    calls = []
    original = tensorflow_ops.fused_batch_norm_training
    monkeypatch.setattr(tensorflow_ops, "fused_batch_norm_training", lambda *a: calls.append(1) or original(*a))
    layer = keras.layers.BatchNormalization()
    x = np.random.default_rng(1).random((4, 6, 6, 3)).astype("float32")
    keras_call = keras.layers.BatchNormalization.call
    with tensorflow_ops.fused_batch_normalization():
        layer(x, training=True)
        inference = layer(x, training=False).numpy()  # moving statistics: Keras's own path
        keras.layers.BatchNormalization(axis=1)(x, training=True)  # not the last axis: Keras's own path
    assert calls == [1]
    assert keras.layers.BatchNormalization.call is keras_call
    np.testing.assert_array_equal(inference, layer(x, training=False).numpy())
