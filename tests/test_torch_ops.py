"""training/ops/torch_ops.py: the trainer's copy-free channels-last ops compute exactly what Keras's torch ops do."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("Keras routes ops through torch_ops only on the torch backend", allow_module_level=True)

from fashionnet.training.ops import torch_ops  # noqa: E402

pytestmark = pytest.mark.per_backend  # the torch trainer's own ops


def _values_and_gradients(fast: bool, op, *arrays):
    """op(*tensors) and the gradient of sum(op * fixed weights) with respect to every input, as numpy."""
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    with torch_ops.channels_last_ops() if fast else contextlib.nullcontext():
        out = op(*tensors)
    weights = torch.tensor(np.random.default_rng(9).standard_normal(tuple(out.shape)).astype("float32"))
    grads = torch.autograd.grad((out * weights).sum(), tensors)
    return [out.detach().numpy(), *(g.numpy() for g in grads)]


@pytest.mark.parametrize(
    "x_shape, w_shape, padding, strides, dilation",
    [
        ((6, 28, 28, 1), (5, 5, 1, 32), "same", 1, 1),  # conv1
        ((6, 14, 14, 32), (5, 5, 32, 72), "same", 1, 1),  # conv2
        ((3, 9, 7, 8), (3, 3, 8, 5), "valid", 1, 1),
        ((3, 9, 7, 8), (3, 3, 8, 5), "same", 1, 2),  # dilated
        ((3, 9, 7, 8), (4, 2, 8, 5), "same", 1, 1),  # even kernel: asymmetric padding, Keras's own path
        ((3, 9, 7, 8), (3, 3, 8, 5), "same", 2, 1),  # strided: Keras's own path
    ],
)
def test_conv_is_bit_identical_to_keras_in_value_and_gradients(x_shape, w_shape, padding, strides, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype("float32")
    w = rng.standard_normal(w_shape).astype("float32")

    def conv(x_, w_):
        return keras.ops.conv(x_, w_, strides=strides, padding=padding, dilation_rate=dilation)

    for fast, reference in zip(
        _values_and_gradients(True, conv, x, w), _values_and_gradients(False, conv, x, w), strict=True
    ):
        np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize("kind", ["random", "relu_ties", "integer_ties"])
@pytest.mark.parametrize("pool, strides, padding", [(2, None, "valid"), (3, 2, "valid"), (2, None, "same")])
def test_max_pool_is_bit_identical_to_keras_in_value_and_gradient(kind, pool, strides, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 28, 27, 32)).astype("float32")
    if kind == "relu_ties":
        x = np.maximum(x, 0)  # windows of equal zeros: the gradient goes where Keras's pooling sends it
    elif kind == "integer_ties":
        x = rng.integers(0, 3, x.shape).astype("float32")

    def max_pool(x_):
        return keras.ops.max_pool(x_, pool, strides=strides, padding=padding)

    for fast, reference in zip(
        _values_and_gradients(True, max_pool, x), _values_and_gradients(False, max_pool, x), strict=True
    ):
        np.testing.assert_array_equal(fast, reference)


def test_the_network_routes_through_torch_ops_inside_the_context_only(monkeypatch):
    from fashionnet.core.networks import build_model

    calls = []
    for name in ("conv2d_nhwc", "max_pool2d_nhwc"):
        original = getattr(torch_ops, name)
        monkeypatch.setattr(torch_ops, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    keras.utils.set_random_seed(0)
    model = build_model()
    rng = np.random.default_rng(2)
    x = rng.random((16, 28, 28, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 16)]

    def loss_and_gradients():
        loss = keras.losses.categorical_crossentropy(torch.tensor(y), model(torch.tensor(x), training=False)).mean()
        grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
        return [loss.detach().numpy(), *(g.numpy() for g in grads)]

    reference = loss_and_gradients()
    assert calls == []
    with torch_ops.channels_last_ops():
        fast = loss_and_gradients()
    assert calls == ["conv2d_nhwc", "max_pool2d_nhwc"] * 2  # both convolutions and both pools
    for a, b in zip(fast, reference, strict=True):
        np.testing.assert_array_equal(a, b)  # the whole network: loss and every weight's gradient
    from keras.src.backend.torch import nn as torch_nn

    assert torch_nn.conv.__module__ == "keras.src.backend.torch.nn"  # the context restored Keras's own ops


def _batch_norm_results(layer, x: np.ndarray, fused: bool):
    """A training call of a Keras BatchNormalization: output, gradients (input, gamma, beta), moving statistics."""
    for v, value in zip(layer.non_trainable_variables, (0.5, 2.0), strict=True):  # moving mean, moving variance
        v.assign(np.full(v.shape, value, "float32"))
    inputs = torch.tensor(x, requires_grad=True)
    with torch_ops.fused_batch_normalization() if fused else contextlib.nullcontext():
        out = layer(inputs, training=True)
    weights = torch.tensor(np.random.default_rng(9).standard_normal(x.shape).astype("float32"))
    grads = torch.autograd.grad((out * weights).sum(), [inputs, layer.gamma.value, layer.beta.value])
    return [out.detach().numpy(), *(g.numpy() for g in grads), *(np.asarray(v) for v in layer.non_trainable_variables)]


def _batch_norm_float64(layer, x: np.ndarray):
    """The same quantities computed in float64 (two-pass biased variance): the reference both paths approximate."""
    inputs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(np.asarray(layer.gamma), dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(np.asarray(layer.beta), dtype=torch.float64, requires_grad=True)
    axes = tuple(range(x.ndim - 1))
    mean = inputs.mean(axes)
    variance = ((inputs - mean) ** 2).mean(axes)
    out = (inputs - mean) / torch.sqrt(variance + layer.epsilon) * gamma + beta
    weights = torch.tensor(np.random.default_rng(9).standard_normal(x.shape), dtype=torch.float64)
    grads = torch.autograd.grad((out * weights).sum(), [inputs, gamma, beta])
    m = layer.momentum
    moving = [0.5 * m + mean.detach() * (1 - m), 2.0 * m + variance.detach() * (1 - m)]
    return [t.detach().numpy() for t in (out, *grads, *moving)]


@pytest.mark.parametrize("shape", [(32, 14, 14, 72), (64, 255)])  # after conv2, after the dense layer
def test_fused_batch_norm_is_at_least_as_close_to_float64_as_keras(shape):
    rng = np.random.default_rng(4)
    x = (3.0 + 0.5 * rng.standard_normal(shape)).astype("float32")  # an offset mean: E[x^2] - E[x]^2 cancels
    layer = keras.layers.BatchNormalization()
    layer.build(shape)
    layer.gamma.assign(rng.uniform(0.5, 1.5, shape[-1]).astype("float32"))
    layer.beta.assign(rng.standard_normal(shape[-1]).astype("float32"))
    keras_path = _batch_norm_results(layer, x, fused=False)
    fused = _batch_norm_results(layer, x, fused=True)
    exact = _batch_norm_float64(layer, x)
    names = ["output", "input gradient", "gamma gradient", "beta gradient", "moving mean", "moving variance"]
    for name, k, f, e in zip(names, keras_path, fused, exact, strict=True):
        scale = np.abs(e).max()
        keras_error, fused_error = np.abs(k - e).max() / scale, np.abs(f - e).max() / scale
        assert fused_error < 5e-6, (name, fused_error)  # float32 rounding (sums over up to 14,112 terms)
        if name in ("output", "input gradient", "gamma gradient"):  # where Keras's E[x^2] - E[x]^2 cancels
            assert fused_error <= keras_error, (name, fused_error, keras_error)


def test_batch_norm_routes_through_torch_only_when_training(monkeypatch):
    from fashionnet.core import recipes
    from fashionnet.training import fit

    calls = []
    original = torch_ops.batch_norm_training
    monkeypatch.setattr(torch_ops, "batch_norm_training", lambda *a: calls.append(tuple(a[1].shape)) or original(*a))
    keras.utils.set_random_seed(0)
    model = fit.build(recipes.get_recipe("improved"))
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.random((16, 28, 28, 1)).astype("float32"))
    y = torch.tensor(np.eye(10, dtype="float32")[rng.integers(0, 10, 16)])

    def loss_and_gradients(training: bool):
        keras.utils.set_random_seed(1)  # the same dropout masks
        loss = keras.losses.categorical_crossentropy(y, model(x, training=training)).mean()
        grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
        return [loss.detach().numpy(), *(g.numpy() for g in grads)]

    moving = [np.asarray(v) for v in model.non_trainable_variables]
    with torch_ops.channels_last_ops():  # the same dropout masks: torch draws them in the tensor's memory order
        reference = loss_and_gradients(training=True)
    after_keras = [np.asarray(v) for v in model.non_trainable_variables]
    for v, value in zip(model.non_trainable_variables, moving, strict=True):
        v.assign(value)
    with torch_ops.channels_last_ops(), torch_ops.fused_batch_normalization():
        loss_and_gradients(training=False)
        assert calls == []  # inference: the moving statistics, Keras's own path
        fused = loss_and_gradients(training=True)
    assert calls == [(16, 28, 28, 32), (16, 14, 14, 72), (16, 255)]  # the three batch normalizations
    for a, b in zip(fused, reference, strict=True):
        # float32 rounding: a gradient sums many terms, so its error scales with the array's largest value (the
        # summation order is the CPU's: an AMX Xeon misses atol=1e-6 by 2.2e-6 on one weight of 800)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * float(np.abs(b).max()))
    for a, b in zip((np.asarray(v) for v in model.non_trainable_variables), after_keras, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # moving statistics updated as Keras updates them
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    assert BatchNormalization.call.__module__ == "keras.src.layers.normalization.batch_normalization"  # restored
