"""fashionnet/torch_ops.py: the trainer's copy-free channels-last ops compute exactly what Keras's torch ops do."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("Keras routes ops through torch_ops only on the torch backend", allow_module_level=True)

from fashionnet import torch_ops  # noqa: E402


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
    from fashionnet.model import build_model

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
