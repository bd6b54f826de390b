"""Channels-last convolution and max pooling, and one-kernel batch normalization, for Keras's torch backend (used by the
trainer on torch only).

Keras 3's torch ``conv`` and ``max_pool`` take NHWC tensors, make a contiguous NCHW copy (``permute`` +
``contiguous``), and ``conv`` then copies that back to channels-last memory for oneDNN: two full copies of every
activation per call and the same again in the backward pass. Pooling on the NCHW copy returns a gradient in NCHW
memory that meets the NHWC activations in the ReLU's backward, a strided elementwise op. docs/benchmarks.md has
the torch.profiler table of that step (``aten::copy_``, ``max_pool2d_with_indices`` and ``threshold_backward``).

A permuted NHWC tensor already *is* an NCHW tensor in ``torch.channels_last`` memory, which oneDNN's convolution
and torch's CPU max pooling take directly. The functions here call the same torch ops on that view, with no copy;
outputs come back as NHWC views of channels-last results, which are contiguous. Same kernels, same arithmetic
(oneDNN picks its channels-last path either way, since Keras converts to it), so the values match Keras's own.
Anything other than a 2D, channels-last, ungrouped convolution or pooling falls back to Keras's implementation.

Batch normalization (the improved recipe's): Keras 3 computes a training batch's moments as E[x^2] - E[x]^2 and
normalizes with separate elementwise ops, each a pass over the activations in both directions (about a quarter of
the improved recipe's torch step, docs/benchmarks.md). ``fused_batch_normalization`` runs the training call through
torch's own ``batch_norm`` kernel (one pass, fused backward) on the same channels-last view, and updates Keras's
moving statistics as Keras does. Not bit-identical: torch computes the variance in a numerically better way, so
its results are at least as close to a float64 computation as Keras's (tests/test_torch_ops.py).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as tnn

from fashionnet.training.ops.shapes import pair


def _same_padding(size: int, dilation: int = 1):
    """Symmetric "same" padding of a stride-1 window, or None when it is not symmetric (even kernels)."""
    total = dilation * (size - 1)
    return total // 2 if total % 2 == 0 else None


def conv2d_nhwc(inputs: torch.Tensor, kernel: torch.Tensor, padding, dilation=(1, 1)) -> torch.Tensor:
    """(B, H, W, Cin) * (KH, KW, Cin, Cout), stride 1 -> (B, H', W', Cout), through an NCHW channels-last view."""
    x = inputs.permute(0, 3, 1, 2)  # a view: NCHW shape, channels-last memory
    w = kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)  # small: (Cout, Cin, KH, KW)
    return tnn.conv2d(x, w, padding=padding, dilation=dilation).permute(0, 2, 3, 1)


def max_pool2d_nhwc(inputs: torch.Tensor, pool_size, strides) -> torch.Tensor:
    """(B, H, W, C) -> max over pool_size windows, "valid", through an NCHW channels-last view."""
    return tnn.max_pool2d(inputs.permute(0, 3, 1, 2), kernel_size=pool_size, stride=strides).permute(0, 2, 3, 1)


def _channels_last_4d(tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.ndim == 4 and tensor.is_contiguous()


@contextlib.contextmanager
def channels_last_ops():
    """Route Keras's torch ``conv`` and ``max_pool`` through the functions above where they apply, in the block."""
    from keras.src import backend
    from keras.src.backend.torch import nn as torch_nn

    original_conv, original_pool = torch_nn.conv, torch_nn.max_pool

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        inputs, kernel = torch_nn.convert_to_tensor(inputs), torch_nn.convert_to_tensor(kernel)
        fmt = backend.standardize_data_format(data_format)
        dilation = pair(dilation_rate)
        if (
            fmt == "channels_last"
            and _channels_last_4d(inputs)
            and kernel.ndim == 4
            and inputs.shape[-1] == kernel.shape[2]  # no grouped convolution
            and pair(strides) == (1, 1)
            and inputs.device.type == "cpu"
        ):
            if str(padding).lower() == "valid":
                return conv2d_nhwc(inputs, kernel, 0, dilation)
            same = [_same_padding(k, d) for k, d in zip(kernel.shape[:2], dilation, strict=True)]
            if str(padding).lower() == "same" and None not in same:
                return conv2d_nhwc(inputs, kernel, tuple(same), dilation)
        return original_conv(inputs, kernel, strides, padding, data_format, dilation_rate)

    def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
        inputs = torch_nn.convert_to_tensor(inputs)
        fmt = backend.standardize_data_format(data_format)
        size = pair(pool_size)
        stride = size if strides is None else pair(strides)
        if (
            fmt == "channels_last"
            and str(padding).lower() == "valid"
            and _channels_last_4d(inputs)
            and inputs.device.type == "cpu"
        ):
            return max_pool2d_nhwc(inputs, size, stride)
        return original_pool(inputs, pool_size, strides, padding, data_format)

    torch_nn.conv, torch_nn.max_pool = conv, max_pool
    try:
        yield
    finally:
        torch_nn.conv, torch_nn.max_pool = original_conv, original_pool


def batch_norm_training(layer, inputs: torch.Tensor) -> torch.Tensor:
    """The training call of a Keras ``BatchNormalization`` (last axis, float32) through torch's ``batch_norm``."""
    channels = inputs.shape[-1]
    x = inputs.permute(0, 3, 1, 2) if inputs.ndim == 4 else inputs  # (N, C, H, W) view of channels-last memory
    # torch writes the batch's statistics into "running" buffers with momentum 1; Keras keeps its own averages
    batch_mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
    batch_variance = torch.zeros(channels, dtype=x.dtype, device=x.device)
    gamma = layer.gamma.value if layer.scale else None
    beta = layer.beta.value if layer.center else None
    y = tnn.batch_norm(x, batch_mean, batch_variance, gamma, beta, training=True, momentum=1.0, eps=layer.epsilon)
    count = x.numel() // channels
    variance = batch_variance * ((count - 1) / count)  # torch keeps the unbiased variance, Keras the biased one
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean.value * momentum + batch_mean * (1.0 - momentum))
    layer.moving_variance.assign(layer.moving_variance.value * momentum + variance * (1.0 - momentum))
    return y.permute(0, 2, 3, 1) if inputs.ndim == 4 else y


def _fusable(layer, inputs, training, mask) -> bool:
    rank = getattr(inputs, "ndim", 0)
    return (
        bool(training)
        and layer.trainable
        and mask is None
        and not layer.renorm
        and not layer.synchronized
        and isinstance(inputs, torch.Tensor)
        and inputs.dtype == torch.float32
        and inputs.device.type == "cpu"
        and rank in (2, 4)
        and layer.axis in (-1, rank - 1)
        and (rank == 2 or _channels_last_4d(inputs))
    )


@contextlib.contextmanager
def fused_batch_normalization():
    """Route the training call of Keras's BatchNormalization through batch_norm_training where it applies."""
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    original = BatchNormalization.call

    def call(self, inputs, training=None, mask=None):
        if _fusable(self, inputs, training, mask):
            return batch_norm_training(self, inputs)
        return original(self, inputs, training=training, mask=mask)

    BatchNormalization.call = call
    try:
        yield
    finally:
        BatchNormalization.call = original
