"""training/ops/jax_ops.py: the trainer's faster jax gradients compute what XLA's do (runs where jax is installed)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")  # the jax and export tox envs; tensorflow/torch envs have no jax
jnp = jax.numpy

from fashionnet.training.ops import jax_ops  # noqa: E402

pytestmark = pytest.mark.per_backend  # the jax trainer's own ops


def _xla_max_pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


@pytest.mark.parametrize("kind", ["random", "relu_ties", "integer_ties"])
def test_max_pool_2x2_is_bit_identical_to_xla_in_value_and_gradient(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 10, 3)).astype("float32")
    if kind == "relu_ties":
        x = np.maximum(x, 0)  # many windows of equal zeros: the gradient must go to the first maximum
    elif kind == "integer_ties":
        x = rng.integers(0, 3, x.shape).astype("float32")
    x = jnp.asarray(x)
    weights = jnp.asarray(rng.standard_normal((6, 4, 5, 3)).astype("float32"))

    def loss(pool):
        return lambda v: jnp.sum(pool(v) * weights)

    np.testing.assert_array_equal(jax_ops.max_pool_2x2(x), _xla_max_pool(x))
    np.testing.assert_array_equal(jax.grad(loss(jax_ops.max_pool_2x2))(x), jax.grad(loss(_xla_max_pool))(x))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((4, 14, 14, 32), (5, 5, 32, 72)), ((3, 9, 7, 8), (4, 2, 8, 5))],  # conv2's shape; an even, non-square kernel
)
def test_conv_fast_weight_gradient_matches_xla(padding, x_shape, w_shape):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal(x_shape).astype("float32"))
    w = jnp.asarray(rng.standard_normal(w_shape).astype("float32"))

    def loss(conv):
        return lambda x_, w_: jnp.sum(jnp.sin(conv(x_, w_)))

    def xla(x_, w_):
        return jax.lax.conv_general_dilated(x_, w_, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def fast(x_, w_):
        return jax_ops.conv2d_fast_weight_gradient(x_, w_, padding)

    np.testing.assert_array_equal(fast(x, w), xla(x, w))  # the forward pass is XLA's own
    (dx_ref, dw_ref) = jax.grad(loss(xla), argnums=(0, 1))(x, w)
    (dx, dw) = jax.grad(loss(fast), argnums=(0, 1))(x, w)
    np.testing.assert_array_equal(dx, dx_ref)  # so is the input gradient
    assert float(jnp.max(jnp.abs(dw - dw_ref))) <= 1e-5 * float(jnp.max(jnp.abs(dw_ref)))  # summation order only


def test_keras_layers_use_the_fast_ops_only_inside_the_context(monkeypatch):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras routes ops through jax_ops only on the jax backend")
    calls = []
    original = jax_ops.conv2d_fast_weight_gradient
    monkeypatch.setattr(jax_ops, "conv2d_fast_weight_gradient", lambda *a: calls.append(a[2]) or original(*a))
    conv = keras.layers.Conv2D(16, 5, padding="same")
    x = np.random.default_rng(2).random((2, 14, 14, 8)).astype("float32")
    reference = np.asarray(conv(x))
    assert calls == []
    with jax_ops.fast_conv_weight_gradient(), jax_ops.fast_max_pool():
        inside = np.asarray(conv(x))
        keras.layers.Conv2D(4, 5, padding="same")(x[..., :1])  # one input channel: XLA's own path
    assert calls == ["SAME"]
    np.testing.assert_array_equal(inside, reference)
