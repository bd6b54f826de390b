"""Fused batch normalization for Keras's tensorflow backend (used by the trainer on tensorflow only).

Keras 3's ``BatchNormalization`` computes a training batch's statistics with ``ops.moments`` and normalizes with
``ops.batch_normalization``: on tensorflow a chain of separate reductions and elementwise ops, each a pass over the
activations, and the same again, differentiated op by op, in the backward pass. TensorFlow's ``FusedBatchNormV3``
(oneDNN's kernel on x86) does the statistics and the normalization in one op and has one fused gradient. For the
improved recipe, whose three batch normalizations sit on 28x28x32 and 14x14x72 activations at batch 128, that
roughly halves a training step (docs/benchmarks.md).

The arithmetic is the layer's own: y = (x - mean) / sqrt(var + epsilon) * gamma + beta with the batch's mean and
biased variance, and the moving statistics updated as Keras updates them (``FusedBatchNormV3`` returns the
Bessel-corrected variance for TensorFlow's own running average; it is converted back). Equal to Keras's path
within float32 rounding (tests/test_tensorflow_ops.py). Only the training call of an unmasked, float32,
channels-last layer without renormalization takes this path; everything else is Keras's.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf


def fused_batch_norm_training(layer, inputs: tf.Tensor) -> tf.Tensor:
    """The training-mode call of a Keras BatchNormalization ``layer`` (last axis) through FusedBatchNormV3."""
    channels = inputs.shape[-1]
    x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])  # the op is 4-D only
    gamma = tf.convert_to_tensor(layer.gamma) if layer.scale else tf.ones([channels])
    beta = tf.convert_to_tensor(layer.beta) if layer.center else tf.zeros([channels])
    empty = tf.zeros([0])  # training: the op computes the batch's own statistics
    y, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=layer.epsilon,
        exponential_avg_factor=1.0, data_format="NHWC", is_training=True,
    )  # fmt: skip
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = unbiased_variance * (count - 1.0) / count  # Keras's moving variance averages the biased one
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1.0 - momentum))
    return y if len(inputs.shape) == 4 else tf.reshape(y, tf.shape(inputs))


def _fusable(layer, inputs, training, mask) -> bool:
    rank = len(inputs.shape)
    return (
        bool(training)
        and layer.trainable
        and mask is None
        and not layer.renorm
        and not layer.synchronized
        and inputs.dtype == tf.float32
        and rank in (2, 4)
        and layer.axis in (-1, rank - 1)
    )


@contextlib.contextmanager
def fused_batch_normalization():
    """Route the training call of Keras's BatchNormalization through FusedBatchNormV3 where it applies."""
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    original = BatchNormalization.call

    def call(self, inputs, training=None, mask=None):
        if _fusable(self, inputs, training, mask):
            return fused_batch_norm_training(self, inputs)
        return original(self, inputs, training=training, mask=mask)

    BatchNormalization.call = call
    try:
        yield
    finally:
        BatchNormalization.call = original
