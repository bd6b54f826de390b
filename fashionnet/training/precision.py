"""The compute settings of fitting (dtype policy, the backend's faster ops) and the float32 network that is saved."""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from fashionnet.core.recipes import Recipe
from fashionnet.training import fit


@contextlib.contextmanager
def compute_settings(precision: str = "float32"):
    """The dtype policy for building and fitting, and the backend's faster ops: on jax the gradients of
    training/ops/jax_ops.py, on torch the copy-free channels-last convolution and pooling of training/ops/torch_ops.py
    and its fused batch normalization (the improved recipe's).

    float32 (the default) computes what the assignment computes: jax_ops's pool gradient is bit-identical to
    XLA's, its convolution weight gradient the same sum in another order (equal to float32 rounding), only faster;
    torch_ops runs Keras's own torch kernels on a channels-last view instead of a copy (bit-identical values), and
    batch normalization as torch's one kernel (as close to a float64 result as Keras's, or closer).
    mixed_bfloat16 computes in bfloat16 with float32 weights (opt-in).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        if keras.backend.backend() == "jax":
            from fashionnet.training.ops.jax_ops import fast_conv_weight_gradient, fast_max_pool

            with fast_max_pool(), fast_conv_weight_gradient():
                yield
        elif keras.backend.backend() == "torch":
            from fashionnet.training.ops.torch_ops import channels_last_ops, fused_batch_normalization

            with channels_last_ops(), fused_batch_normalization():
                yield
        else:
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def float32_output(model: keras.Model) -> keras.Model:
    """Under mixed precision, the softmax layer computes in float32 (Keras's advice for numerical stability)."""
    last = model.layers[-1]

    def clone(layer):
        config = layer.get_config()
        if layer is last:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def float32_copy(weights: list[np.ndarray], recipe: Recipe) -> keras.Model:
    """The network built with the float32 policy (and no distribution), holding the trained float32 weights."""
    with compute_settings("float32"):
        fresh = fit.build(recipe)
    fresh.set_weights(weights)
    return fresh
