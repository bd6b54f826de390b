"""Faster jax gradients of two Keras ops for this network (used by the trainer on jax only).

XLA's CPU gradient of ``MaxPooling2D((2, 2))`` (a ``select_and_scatter``) is a large share of a jax training step
(docs/benchmarks.md). For a 2x2 window with stride 2 (the assignment's pools)
the windows do not overlap, so the gradient is a mask: each window's upstream gradient goes to its *first*
maximum in row-major order, which is exactly what ``select_and_scatter`` with the ``>=`` selector (jax's
``reduce_window`` max rule) does. The forward value is the same ``max`` of the same four numbers. Everything
else (other pool sizes, strides, padding, layouts) falls back to Keras's own implementation.

Convolution weight gradient: XLA CPU computes conv2's weight gradient (a convolution whose "kernel" is the
14x14 output gradient and whose feature dimension is the batch) several times slower than the forward convolution.
``conv2d_fast_weight_gradient`` keeps XLA's forward pass and input gradient and computes the weight gradient as
one matrix product per kernel offset: dW[i, j] = sum over batch and positions of x_shifted(i, j)^T @ dy. This is the
same sum in a different order, so it matches XLA's gradient to float32 rounding, not bitwise.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp

from fashionnet.training.ops.shapes import pair


@jax.custom_vjp
def max_pool_2x2(x):
    """(B, H, W, C) with even H, W -> (B, H/2, W/2, C): max over non-overlapping 2x2 windows."""
    a, b, c, d = _corners(x)
    return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _corners(x):
    n, h, w, ch = x.shape
    xr = x.reshape(n, h // 2, 2, w // 2, 2, ch)
    return xr[:, :, 0, :, 0], xr[:, :, 0, :, 1], xr[:, :, 1, :, 0], xr[:, :, 1, :, 1]


def _fwd(x):
    out = max_pool_2x2(x)
    return out, (x, out)


def _bwd(residual, g):
    x, out = residual
    a, b, c, _ = _corners(x)
    ma = a == out
    mb = (b == out) & ~ma
    mc = (c == out) & ~(ma | mb)
    md = ~(ma | mb | mc)
    zero = jnp.zeros_like(g)
    ga, gb, gc, gd = (jnp.where(m, g, zero) for m in (ma, mb, mc, md))
    top = jnp.stack([ga, gb], axis=3)  # (B, H/2, W/2, 2, C)
    bottom = jnp.stack([gc, gd], axis=3)
    return (jnp.stack([top, bottom], axis=2).reshape(x.shape),)


max_pool_2x2.defvjp(_fwd, _bwd)


_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, padding):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_NHWC)


def _same_padding(size: int):
    return (size - 1) // 2, size - 1 - (size - 1) // 2


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d_fast_weight_gradient(x, w, padding: str):
    """(B, H, W, Cin) * (KH, KW, Cin, Cout), stride 1, "same" or "valid": XLA's convolution, faster weight gradient."""
    return _conv(x, w, padding)


def _conv_fwd(x, w, padding):
    return _conv(x, w, padding), (x, w)


def _conv_bwd(padding, residual, g):
    x, w = residual
    kh, kw, cin, cout = w.shape
    xp = x
    if padding == "SAME":
        (top, bottom), (left, right) = _same_padding(kh), _same_padding(kw)
        xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    _, oh, ow, _ = g.shape
    g2 = g.reshape(-1, cout)
    dw = jnp.stack(
        [jnp.stack([xp[:, i : i + oh, j : j + ow, :].reshape(-1, cin).T @ g2 for j in range(kw)]) for i in range(kh)]
    )
    (dx,) = jax.vjp(lambda x_: _conv(x_, w, padding), x)[1](g)  # XLA's own input gradient
    return dx, dw.astype(w.dtype)


conv2d_fast_weight_gradient.defvjp(_conv_fwd, _conv_bwd)


@contextlib.contextmanager
def fast_max_pool():
    """Route Keras's jax ``max_pool`` through max_pool_2x2 where it applies, for the duration of the block."""
    from keras.src.backend.jax import nn as jax_nn

    original = jax_nn.max_pool

    def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
        from keras.src import backend

        fmt = backend.standardize_data_format(data_format)
        size = pair(pool_size)
        stride = size if strides is None else pair(strides)
        if (
            size == (2, 2)
            and stride == (2, 2)
            and str(padding).lower() == "valid"
            and fmt == "channels_last"
            and inputs.ndim == 4
            and inputs.shape[1] % 2 == 0
            and inputs.shape[2] % 2 == 0
        ):
            return max_pool_2x2(inputs)
        return original(inputs, pool_size, strides, padding, data_format)

    jax_nn.max_pool = max_pool
    try:
        yield
    finally:
        jax_nn.max_pool = original


@contextlib.contextmanager
def fast_conv_weight_gradient():
    """Route Keras's jax ``conv`` through conv2d_fast_weight_gradient where it applies, inside the block."""
    from keras.src.backend.jax import nn as jax_nn

    original = jax_nn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        from keras.src import backend

        fmt = backend.standardize_data_format(data_format)
        kernel = jnp.asarray(kernel)
        if (
            pair(strides) == (1, 1)
            and pair(dilation_rate) == (1, 1)
            and str(padding).upper() in ("SAME", "VALID")
            and fmt == "channels_last"
            and getattr(inputs, "ndim", 0) == 4
            and kernel.ndim == 4
            and inputs.shape[-1] == kernel.shape[2]  # no grouped convolution
            and kernel.shape[2] >= 8  # conv1 (1 input channel): XLA's own is faster
            and kernel.dtype == jnp.float32
            and jnp.asarray(inputs).dtype == jnp.float32
        ):
            return conv2d_fast_weight_gradient(jnp.asarray(inputs), kernel, str(padding).upper())
        return original(inputs, kernel, strides, padding, data_format, dilation_rate)

    jax_nn.conv = conv
    try:
        yield
    finally:
        jax_nn.conv = original
