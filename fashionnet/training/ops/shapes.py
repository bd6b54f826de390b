"""Argument normalization shared by the backend ops modules (imports no backend)."""

from __future__ import annotations


def pair(value):
    """Keras's int-or-pair argument (pool size, strides, dilation) as a 2-tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
