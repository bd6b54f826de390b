"""Helpers of the export, edge and predict tests (their session fixtures are in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EDGE_KIT = REPO / "export" / "fashionnet_edge.py"

# Run python with keras, tensorflow, jax, torch (and fashionnet) unimportable, then the edge kit's main().
BLOCKED_RUNNER = r"""
import importlib.abc, sys
sys.dont_write_bytecode = True  # the kit runs from the shared RUN/export folder: leave no __pycache__ there
BLOCKED = {"keras", "tensorflow", "jax", "jaxlib", "torch", "tf_keras", "fashionnet"}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this edge-device simulation")
        return None
sys.meta_path.insert(0, Blocker())
kit = sys.argv.pop(1)
sys.path.insert(0, kit)
import fashionnet_edge
assert fashionnet_edge.__file__.startswith(kit), fashionnet_edge.__file__
assert not any(m.split(".")[0] in BLOCKED for m in sys.modules), sorted(sys.modules)
sys.exit(fashionnet_edge.main(sys.argv[1:]))
"""


def write_idx(path: Path, images: np.ndarray) -> Path:
    """uint8 (N, 28, 28) -> an IDX file (magic 00 00 08 03, big-endian sizes)."""
    header = bytes([0, 0, 0x08, images.ndim]) + np.asarray(images.shape, dtype=">u4").tobytes()
    path.write_bytes(header + images.astype(np.uint8).tobytes())
    return path


def blocked_edge_command(kit_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", BLOCKED_RUNNER, str(kit_dir), *args]
