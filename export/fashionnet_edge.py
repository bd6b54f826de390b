"""fashionnet edge kit: classify Fashion-MNIST-style inputs with an exported ONNX model.

Needs only numpy and onnxruntime (Pillow for PNG/JPEG images). Copy this file and model.onnx to
the device; it knows nothing of fashionnet, keras or tensorflow.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
IMAGE_SIDE = 28

# IDX type codes (third magic byte) -> numpy big-endian dtypes, from the IDX format description.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class EdgeInputError(ValueError):
    """An input file or array that cannot be classified; the message names it."""


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz; a corrupt archive is an EdgeInputError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgeInputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise EdgeInputError(f"{path}: corrupt or truncated gzip file ({exc})") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (magic 0x00 0x00 TYPE NDIM, NDIM big-endian uint32 sizes, then the data)."""
    if len(data) < 4:
        raise EdgeInputError(f"{name}: not an IDX file: {len(data)} bytes, expected at least a 4-byte header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise EdgeInputError(
            f"{name}: wrong IDX magic: expected 00 00 <type> <ndim> with type in "
            f"{sorted(hex(t) for t in _IDX_DTYPES)}, found {data[:4].hex(' ')}"
        )
    ndim = data[3]
    if ndim == 0:
        raise EdgeInputError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise EdgeInputError(f"{name}: truncated IDX header: expected {header} bytes, found {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise EdgeInputError(
            f"{name}: IDX size mismatch for shape {shape}: expected {expected} bytes, found {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-endian numpy array."""
    return parse_idx(read_bytes(path), str(path))
