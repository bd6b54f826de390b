"""What a run records besides its config to be rerun: package versions, the data's checksums, the topology."""

from __future__ import annotations

import importlib.metadata
import platform

import keras
import numpy as np

import fashionnet
from fashionnet.core import data as fdata
from fashionnet.core import machine
from fashionnet.training import distributed

# The pip distributions whose version is the backend's (the first one installed).
BACKEND_DISTRIBUTIONS = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "jax": ("jax",), "torch": ("torch",)}


def installed_version(*distributions: str) -> str | None:
    """The version of the first of ``distributions`` that is installed; None if none is."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment(topology: distributed.Topology | None = None) -> dict:
    """Everything besides the config needed to rerun: versions, the data's checksums, and for a data-parallel run
    the processes and devices it trained on."""
    backend = keras.backend.backend()
    extra = {"distributed": topology.describe()} if topology is not None and topology.distributed else {}
    return {
        "fashionnet": fashionnet.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": installed_version(*BACKEND_DISTRIBUTIONS.get(backend, (backend,))),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "data_sha256_of_decompressed_idx": fdata.checksums(),
        "cpu": machine.cpu_summary(),
        "kernel_settings": machine.kernel_settings(),
        **extra,
    }
