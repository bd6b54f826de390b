"""fashionnet edge kit: classify Fashion-MNIST-style inputs with an exported ONNX or TFLite model.

Needs only numpy and onnxruntime for .onnx models, or a LiteRT interpreter (ai-edge-litert, or the older
tflite-runtime) for .tflite models; Pillow for PNG/JPEG images. Copy this file and a model to the device; it
knows nothing of fashionnet, keras or tensorflow. One file on purpose (what a device receives), so it is the one
module of the project allowed over 400 lines.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import io
import json
import math
import re
import stat
import zlib
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
IMAGE_SIDE = 28
# A top probability below this is shown as "not sure: A p, B p": chosen on the photo benchmark (docs/photos.md).
NOT_SURE_BELOW = 0.8

# IDX type codes (third magic byte) -> numpy big-endian dtypes, from the IDX format description.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class EdgeInputError(ValueError):
    """An input file or array that cannot be classified; the message names it."""


# The most bytes an input may hold, on disk or once un-gzipped (a 10,000-image IDX is 7.8 MB; one million 784 MB):
# a few-kB .gz can claim gigabytes, so it is decompressed in pieces and refused past this.
MAX_INPUT_BYTES = 1 << 30


def _one_line(exc: BaseException) -> str:
    """A library's error message on one line (its first), for messages that name the file first."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:300]


def _check_regular_file(path: Path) -> int:
    """The size of ``path``, or an EdgeInputError saying why it is not a file one can classify."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EdgeInputError(f"{path}: symbolic link loop, expected a file") from None
        raise EdgeInputError(f"{path}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise EdgeInputError(f"{path}: is a folder, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise EdgeInputError(f"{path}: not a regular file (a device, pipe or socket), expected a file")
    if info.st_size > MAX_INPUT_BYTES:
        raise EdgeInputError(f"{path}: too large: {info.st_size:,} bytes, at most {MAX_INPUT_BYTES:,} allowed")
    return info.st_size


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz; a corrupt archive is an EdgeInputError."""
    path = Path(path)
    _check_regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgeInputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if path.suffix != ".gz":
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as archive:
            data = archive.read(MAX_INPUT_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise EdgeInputError(f"{path}: corrupt or truncated gzip file ({_one_line(exc)})") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise EdgeInputError(f"{path}: decompresses to more than {MAX_INPUT_BYTES:,} bytes, the most allowed")
    return data


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
    expected = header + math.prod(shape) * dtype.itemsize  # exact: a header may claim 4 x (2**32 - 1)
    if len(data) != expected:
        raise EdgeInputError(
            f"{name}: IDX size mismatch for shape {shape}: expected {expected} bytes, found {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-endian numpy array."""
    return parse_idx(read_bytes(path), str(path))


# ----------------------------------------------------------------------------------------------------------------
# Inputs: IDX, .npy, PNG/JPEG -> (N, 28, 28, 1) float32 in [0, 1]
# ----------------------------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_NPY_MAGIC = b"\x93NUMPY"
# The size a header may claim before anything is decoded (the web kit's limit too): a few-kB PNG can claim
# 30,000 x 30,000 pixels, gigabytes once decoded; Pillow's own bomb check stops only at 179 megapixels.
MAX_IMAGE_PIXELS = 40_000_000


class EdgeModelError(EdgeInputError):
    """A model file that is missing, truncated or not a Fashion-MNIST classifier."""


def _require_pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:
        raise EdgeInputError(
            "reading PNG/JPEG images needs Pillow: pip install pillow (IDX and .npy inputs work without it)"
        ) from exc
    return Image, ImageOps


def _too_large(path, pixels: int | None) -> EdgeInputError:
    claimed = f"{pixels:,} pixels" if pixels else "more pixels than Pillow allows"
    return EdgeInputError(f"{path}: image too large: {claimed}, at most {MAX_IMAGE_PIXELS:,} allowed")


def load_image(path: str | Path) -> np.ndarray:
    """A PNG/JPEG photo or drawing -> (28, 28) float32 in [0, 1], converted the way Fashion-MNIST was made.

    Decoded (EXIF orientation applied, transparency over white) to 8-bit RGB, then ``garment_input`` finds the
    garment and makes the model's input: see there.
    """
    path = Path(path)
    Image, ImageOps = _require_pillow()
    try:
        with Image.open(path) as img:
            width, height = img.size  # from the header: nothing decoded yet
            if width * height > MAX_IMAGE_PIXELS:
                raise _too_large(path, width * height)
            img = ImageOps.exif_transpose(img)
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent -> white background
                img = Image.alpha_composite(canvas, rgba)
            if img.mode.startswith("I"):  # 16-bit grey ("I;16", "I"): L would clip everything above 255 to white
                wide = np.asarray(img, dtype=np.float64)
                rgb = np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8)
            else:
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:  # Pillow refuses over 2 x its own limit while opening
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, int(claimed.group(1)) if claimed else None) from exc
    except EdgeInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged files make Pillow raise OSError, SyntaxError, struct.error...
        raise EdgeInputError(f"{path}: not a readable PNG/JPEG image ({_one_line(exc)})") from exc
    if rgb.size == 0:
        raise EdgeInputError(f"{path}: empty image (0 pixels)")
    try:
        return garment_input(rgb).astype(np.float32) / 255
    except NoGarmentError as exc:
        raise EdgeInputError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# A photo -> the garment as Fashion-MNIST shows it. Integers wherever possible and float64 in a fixed order
# elsewhere, so export/web/preprocess.js reproduces every step to the pixel (docs/photos.md explains the steps).
# ----------------------------------------------------------------------------------------------------------------

WORK_SIDE = 256  # the garment is found on the photo shrunk to at most this many pixels a side
BORDER_DEPTH = 2  # rows/columns at each edge that sample the background
MIN_CONTRAST = 16  # levels of 255: a smoothed distance from the background at or below this is background
KEEP_DIVISOR = 4  # parts at least 1/4 of the largest part's area belong to the garment too (a second object less)


class NoGarmentError(ValueError):
    """The photo holds nothing that stands out from its background."""


def garment_input(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 photo -> (28, 28) uint8: the garment light on black, filling the frame as in the
    data set.

    1. Shrink to ``WORK_SIDE`` (Pillow's BOX filter). 2. Model the background of each colour channel from the
    border: running medians along each edge, joined across the image by a Coons patch, so a lighting gradient is
    background too. 3. Each pixel's distance from the background: the largest channel difference, so a garment
    differs by colour even where its grey matches (and dark-on-light and light-on-dark come out alike).
    4. That distance smoothed (5 x 5 mean), Otsu's level grown into the faint parts (``_hysteresis``); opening
    drops specks (noise, texture), closing joins a garment's parts; the largest connected part and any at least
    1/``KEEP_DIVISOR`` of it are the garment, its holes filled. 5. Crop to the garment, stretch its
    99th-percentile distance to 255, resize the longest side to 28 (LANCZOS), centre, stretch the maximum to 255:
    the data set's garments fill the frame's longest side and reach 255.
    """
    Image, _ = _require_pillow()
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    work = _shrink(rgb, Image).astype(np.int64)
    height, width = work.shape[:2]
    distance = np.zeros((height, width), dtype=np.int64)
    for c in range(3):
        diff = work[..., c] - _background(work[..., c])
        distance = np.maximum(distance, np.rint(np.abs(diff)).astype(np.int64))
    strength = _box_mean(distance, 2)
    if int(strength.max()) <= MIN_CONTRAST:
        raise NoGarmentError("no garment found: the image is uniform (expected an object on a plain background)")
    mask = _hysteresis(strength)
    close = max(1, max(height, width) // 64)
    mask = _erode(_dilate(mask, close), close)
    mask = _fill_holes(_largest_parts(mask))
    if not mask.any():
        raise NoGarmentError("no garment found: nothing stands out from the background but specks")
    level = distance.copy()
    level[~_dilate(mask, 1)] = 0
    reference = _percentile99(level[mask])
    if reference == 0:
        raise NoGarmentError("no garment found: the object found is no darker or lighter than its background")
    seen = level * 8 > reference  # the box: what a viewer sees of the garment, not the edge's JPEG ringing
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    crop = level[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = _stretch(crop, reference)
    crop_h, crop_w = crop.shape
    scale = IMAGE_SIDE / max(crop_h, crop_w)
    new_w, new_h = max(1, round(crop_w * scale)), max(1, round(crop_h * scale))
    small = np.asarray(Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.LANCZOS), dtype=np.int64)
    out = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.int64)
    top, left = (IMAGE_SIDE - new_h) // 2, (IMAGE_SIDE - new_w) // 2
    out[top : top + new_h, left : left + new_w] = small
    peak = int(out.max())
    if peak == 0:
        raise NoGarmentError("no garment found: the object found is too faint")
    return _stretch(out, peak)


def _percentile99(values: np.ndarray) -> int:
    """The 99th percentile of integer levels as both kits take it: the sorted value at int(0.99 * (n - 1))."""
    ranked = np.sort(values, axis=None)
    return int(ranked[int(0.99 * (len(ranked) - 1))])


def _stretch(values: np.ndarray, reference: int) -> np.ndarray:
    """values * 255 / reference rounded half up, at most 255: integers, so both kits agree."""
    return np.minimum(255, (values * 510 + reference) // (2 * reference)).astype(np.uint8)


def _shrink(rgb: np.ndarray, Image) -> np.ndarray:  # noqa: N803 - Pillow's module, passed in
    height, width = rgb.shape[:2]
    if max(height, width) <= WORK_SIDE:
        return rgb
    scale = WORK_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _running_median(strip: np.ndarray, half: int) -> np.ndarray:
    """(depth, n) -> (n,) float64: the median of columns i - half .. i + half (cut at the ends) of every i."""
    n, k = strip.shape[1], 2 * half + 1
    out = np.empty(n)
    ends = range(n)
    if n >= k:  # the full windows at once; only the cut ones at the ends one by one
        windows = np.lib.stride_tricks.sliding_window_view(strip, k, axis=1).transpose(1, 0, 2)
        out[half : n - half] = np.median(windows.reshape(n - k + 1, -1), axis=1)
        ends = [*range(half), *range(n - half, n)]
    for i in ends:
        out[i] = np.median(strip[:, max(0, i - half) : i + half + 1])
    return out


def _background(work: np.ndarray) -> np.ndarray:
    """One channel's background level at every pixel: a Coons patch through running medians of the four edges."""
    height, width = work.shape
    depth = min(BORDER_DEPTH, height, width)
    top = _running_median(work[:depth], max(1, width // 16))
    bottom = _running_median(work[height - depth :], max(1, width // 16))
    left = _running_median(work[:, :depth].T, max(1, height // 16))
    right = _running_median(work[:, width - depth :].T, max(1, height // 16))
    u = (np.arange(width) / max(1, width - 1))[None, :]
    v = (np.arange(height) / max(1, height - 1))[:, None]
    c00, c10 = (top[0] + left[0]) / 2, (top[-1] + right[0]) / 2
    c01, c11 = (bottom[0] + left[-1]) / 2, (bottom[-1] + right[-1]) / 2
    across = (1 - v) * top[None, :] + v * bottom[None, :]
    down = (1 - u) * left[:, None] + u * right[:, None]
    corners = (1 - u) * (1 - v) * c00 + u * (1 - v) * c10 + (1 - u) * v * c01 + u * v * c11
    return across + down - corners


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """The sum over each pixel's (2r + 1)^2 window, zero outside the image (integers: exact)."""
    k = 2 * radius + 1
    padded = np.pad(a.astype(np.int64), ((radius + 1, radius), (radius + 1, radius)))
    c = padded.cumsum(0).cumsum(1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    total, count = _box_sum(a, radius), _box_sum(np.ones_like(a), radius)
    return (2 * total + count) // (2 * count)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    return _box_sum(mask, radius) > 0


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    return _box_sum(mask, radius) == (2 * radius + 1) ** 2


def _hysteresis(strength: np.ndarray) -> np.ndarray:
    """Pixels above Otsu's level, grown into every connected pixel above the border's own level (its faint parts).

    The border's level is its 99th percentile plus a margin: texture and noise stay out, while a light garment
    part against a light ground joins the dark part that Otsu's level found.
    """
    high = max(_otsu(strength), MIN_CONTRAST)
    band = BORDER_DEPTH
    edge = np.concatenate(
        [strength[:band].ravel(), strength[-band:].ravel(), strength[:, :band].ravel(), strength[:, -band:].ravel()]
    )
    low = min(high, max(MIN_CONTRAST, _percentile99(edge) + MIN_CONTRAST // 2))
    labels, _ = _label(strength > low, diagonal=True)
    seeded = np.zeros(labels.max() + 1, dtype=bool)
    seeded[labels[strength > high]] = True
    seeded[0] = False
    return seeded[labels]


def _otsu(values: np.ndarray) -> int:
    """Otsu's threshold of integer levels 0..255: the level t that best splits them into <= t and > t."""
    hist = np.bincount(values.ravel(), minlength=256)[:256].astype(np.float64)
    w0 = np.cumsum(hist)
    s0 = np.cumsum(hist * np.arange(256.0))
    w1, s1 = w0[-1] - w0, s0[-1] - s0
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = s0 / w0 - s1 / w1
        between = (w0 * w1) * (gap * gap)
    between[(w0 == 0) | (w1 == 0)] = -1.0
    return int(np.argmax(between))


def _label(mask: np.ndarray, diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Connected parts of a boolean mask (8-connected if ``diagonal``, else 4): (labels, area per label)."""
    parent: list[int] = []

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    reach = 1 if diagonal else 0
    runs, previous = [], []
    for y, row in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        current = []
        for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            label = len(parent)
            parent.append(label)
            for p_start, p_end, p_label in previous:
                if p_start < end + reach and p_end + reach > start:
                    a, b = root(label), root(p_label)
                    parent[max(a, b)] = min(a, b)
            current.append((start, end, label))
            runs.append((y, start, end, label))
        previous = current
    labels = np.zeros(mask.shape, dtype=np.int64)
    roots = [root(i) for i in range(len(parent))]
    for y, start, end, label in runs:
        labels[y, start:end] = roots[label] + 1
    return labels, np.bincount(labels.ravel(), minlength=len(parent) + 1)


def _largest_parts(mask: np.ndarray) -> np.ndarray:
    labels, areas = _label(mask, diagonal=True)
    areas[0] = 0
    if areas.max() == 0:
        return mask
    keep = areas * KEEP_DIVISOR >= areas.max()
    keep[0] = False
    return keep[labels]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every background region that does not reach the image's edge filled (4-connected)."""
    labels, _ = _label(~mask, diagonal=False)
    outside = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return mask | ~np.isin(labels, outside)


def _images_from_array(array: np.ndarray, name: str) -> np.ndarray:
    """(28,28), (N,28,28) or (N,28,28,1) uint8 or float in [0,1] -> (N,28,28,1) float32."""
    side = IMAGE_SIDE
    if array.shape == (side, side):
        array = array[None]
    elif array.ndim == 4 and array.shape[1:] == (side, side, 1):
        array = array[..., 0]
    elif not (array.ndim == 3 and array.shape[1:] == (side, side)):
        raise EdgeInputError(
            f"{name}: wrong shape: expected (28, 28), (N, 28, 28) or (N, 28, 28, 1), found {array.shape}"
        )
    if len(array) == 0:
        raise EdgeInputError(f"{name}: empty: expected at least one 28 x 28 image, found shape {array.shape}")
    if array.dtype == np.uint8:
        images = array.astype(np.float32)
        images /= 255  # in place: the same float32 values as astype(float32) / 255 without a second full copy
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise EdgeInputError(
                f"{name}: expected finite pixel values, found {int((~np.isfinite(array)).sum())} NaN/inf"
            )
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise EdgeInputError(f"{name}: float pixels must be in [0, 1], found range [{low:g}, {high:g}]")
        images = array.astype(np.float32)
    else:
        raise EdgeInputError(f"{name}: wrong dtype: expected uint8 (0..255) or float in [0, 1], found {array.dtype}")
    return images.reshape(-1, side, side, 1)


def _load_npy(path: Path) -> np.ndarray:
    """A .npy array, its header checked before any data is read: a plain dtype and a shape the file can hold."""
    size = _check_regular_file(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:  # 3.0 exists only for unicode field names: never an image array
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            shape, _, dtype = readers[version](f)
            offset = f.tell()
    except Exception as exc:  # noqa: BLE001 - numpy parses the header with ast/tokenize: many error types
        raise EdgeInputError(f"{path}: not a readable .npy array ({_one_line(exc)})") from exc
    if any(side < 0 for side in shape):
        raise EdgeInputError(f"{path}: not a readable .npy array (negative size in its shape {shape})")
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "uif":
        raise EdgeInputError(f"{path}: wrong dtype: expected uint8 (0..255) or float in [0, 1], found {dtype}")
    expected = offset + math.prod(shape) * dtype.itemsize
    if expected != size:
        raise EdgeInputError(f"{path}: .npy size mismatch for shape {shape}: expected {expected} bytes, found {size}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EdgeInputError(f"{path}: not a readable .npy array ({_one_line(exc)})") from exc
    return _images_from_array(array, str(path))


def _load_one(path: Path) -> tuple[np.ndarray, bool]:
    """(images, is_single_image) for one input file."""
    suffix = path.suffix.lower()
    if _check_regular_file(path) == 0:
        raise EdgeInputError(f"{path}: empty file (0 bytes)")
    if suffix == ".npy":
        return _load_npy(path), False
    if suffix in IMAGE_SUFFIXES:
        return load_image(path)[None, ..., None], True
    data = read_bytes(path)
    if data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC):
        return load_image(path)[None, ..., None], True
    if data.startswith(_NPY_MAGIC):
        return _load_npy(path), False
    if data[:2] == b"\x00\x00":
        array = parse_idx(data, str(path))
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise EdgeInputError(
                f"{path}: expected an IDX file of uint8 images (N, 28, 28), found {array.dtype} {array.shape}"
            )
        return _images_from_array(array, str(path)), False
    raise EdgeInputError(
        f"{path}: unsupported input: expected an IDX file (.gz or raw), a .npy array, or a PNG/JPEG image"
    )


def load_inputs_named(paths) -> tuple[np.ndarray, list[str]]:
    """Like load_inputs, plus one name per image: the file, or file[i] for the i-th image of an IDX/.npy."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    batches, names = [], []
    for path in map(Path, paths):
        images, single = _load_one(path)
        batches.append(images)
        names += [str(path)] if single else [f"{path}[{i}]" for i in range(len(images))]
    if not batches:
        raise EdgeInputError("no inputs given")
    # One input file (e.g. the 10,000-image test set): no concatenated copy (peak memory, docs/benchmarks.md).
    return (batches[0] if len(batches) == 1 else np.concatenate(batches)), names


def load_inputs(paths) -> np.ndarray:
    """IDX (.gz or raw, uint8 (N,28,28)), .npy ((28,28), (N,28,28), (N,28,28,1); uint8 or float in [0,1]) and
    PNG/JPEG files -> one (N, 28, 28, 1) float32 array in [0, 1], in the order given."""
    return load_inputs_named(paths)[0]


def validate_batch(x, name: str = "input") -> np.ndarray:
    """The model's contract: (N, 28, 28, 1) float32, finite, in [0, 1], N >= 1."""
    if not isinstance(x, np.ndarray):
        raise EdgeInputError(f"{name}: expected a numpy array, found {type(x).__name__}")
    if x.ndim != 4 or x.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1) or len(x) == 0:
        raise EdgeInputError(f"{name}: expected shape (N, 28, 28, 1) with N >= 1, found {x.shape}")
    if x.dtype != np.float32:
        raise EdgeInputError(f"{name}: expected float32, found {x.dtype}")
    if not np.isfinite(x).all():
        raise EdgeInputError(f"{name}: expected finite values, found NaN/inf")
    if x.min() < 0 or x.max() > 1:
        raise EdgeInputError(f"{name}: expected values in [0, 1], found [{x.min():g}, {x.max():g}]")
    return x


# ----------------------------------------------------------------------------------------------------------------
# The export's manifest: the SHA-256 of every file the export verified
# ----------------------------------------------------------------------------------------------------------------

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "fashionnet-export-manifest/1"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict | None:
    """FOLDER/manifest.json as written by `fashionnet export`, or None when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), dict):
            found = manifest.get("format")
            raise ValueError(f"expected format {MANIFEST_FORMAT!r} with a files table, found {found!r}")
    except (OSError, ValueError, AttributeError, RecursionError) as exc:  # RecursionError: [[[[... nested JSON
        raise EdgeModelError(f"{path}: unreadable manifest ({_one_line(exc)}); --no-verify skips the check") from exc
    return manifest


def verify_file(path: str | Path) -> str | None:
    """Refuse a file whose bytes differ from what manifest.json beside it records (EdgeModelError naming both
    hashes). Returns the verified SHA-256, or None when there is no manifest or it does not list this file."""
    path = Path(path)
    manifest = read_manifest(path.parent)
    entry = manifest["files"].get(path.name) if manifest else None
    if entry is None:
        return None
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        raise EdgeModelError(
            f"{path}: does not match {MANIFEST_NAME}: sha256 {actual} ({path.stat().st_size} bytes), the manifest "
            f"records {entry.get('sha256')} ({entry.get('bytes')} bytes): a modified or truncated copy "
            "(--no-verify loads it anyway)"
        )
    return actual


# ----------------------------------------------------------------------------------------------------------------
# The classifiers: one interface, (N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 probabilities
# ----------------------------------------------------------------------------------------------------------------


def _dims(shape) -> tuple:
    """A shape as Keras writes it: ints, None for a dynamic size (None, -1 in TFLite, a name in ONNX)."""
    dims = []
    for size in () if shape is None else shape:
        if size is None or isinstance(size, str):
            dims.append(None)
            continue
        try:
            size = int(size)
        except TypeError:  # e.g. one shape per output of a multi-output model: shown as found, never the contract
            return tuple(shape)
        dims.append(size if size >= 0 else None)
    return tuple(dims)


def check_contract(path, input_shape, output_shape) -> None:
    """EdgeModelError naming ``path`` unless the model maps (N, 28, 28, 1) images to (N, 10) probabilities: the
    one definition of "a fashionnet model", for Keras, ONNX and TFLite alike (fashionnet.parity.runtimes re-raises
    it)."""
    expected_in, expected_out = (None, IMAGE_SIDE, IMAGE_SIDE, 1), (None, len(CLASS_NAMES))
    found_in, found_out = _dims(input_shape), _dims(output_shape)
    if found_in[1:] != expected_in[1:] or found_out[1:] != expected_out[1:]:
        raise EdgeModelError(
            f"{path} is not a fashionnet model: expected input {expected_in} and output {expected_out}, "
            f"found {found_in} and {found_out}"
        )


class OnnxClassifier:
    """An exported fashionnet ONNX model (fp32 or int8) on onnxruntime's CPU provider."""

    def __init__(self, model_path: str | Path, threads: int | None = None, verify: bool = True):
        """``verify``: check the file against the export's manifest.json beside it, when there is one."""
        self.path = Path(model_path)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EdgeModelError("onnxruntime is not installed: pip install onnxruntime") from exc
        if not self.path.is_file():
            raise EdgeModelError(f"{self.path}: model file not found")
        self.sha256 = verify_file(self.path) if verify else None  # before parsing: a damaged file is named as such
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise EdgeModelError(f"{self.path}: not a loadable ONNX model ({exc})") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeModelError(f"{self.path}: expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")
        check_contract(self.path, inputs[0].shape, outputs[0].shape)
        self.runtime = f"onnxruntime {ort.__version__}"
        self.input_name = inputs[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One batch in one inference: (N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 class probabilities."""
        return self._run(validate_batch(x)).astype(np.float32, copy=False)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 class probabilities, batch_size images at a time."""
        x = validate_batch(x)
        batch_size = max(1, int(batch_size))
        parts = [self._run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


def _litert_interpreter():
    """(Interpreter class, "LiteRT VERSION"): ai-edge-litert, else the older tflite-runtime."""
    from importlib import metadata

    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, f"LiteRT {metadata.version('ai-edge-litert')}"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, f"tflite-runtime {metadata.version('tflite-runtime')}"
    except ImportError as exc:
        raise EdgeModelError(
            ".tflite models need a LiteRT interpreter: pip install ai-edge-litert (or run model.onnx with onnxruntime)"
        ) from exc


class TfliteClassifier:
    """An exported fashionnet .tflite model (fp32, int8, or the microcontroller model) on LiteRT, resized to each
    batch; models with integer input or output are (de)quantized here, with their own parameters."""

    def __init__(self, model_path: str | Path, threads: int | None = None, verify: bool = True):
        """``verify``: check the file against the export's manifest.json beside it, when there is one."""
        self.path = Path(model_path)
        Interpreter, self.runtime = _litert_interpreter()
        if not self.path.is_file():
            raise EdgeModelError(f"{self.path}: model file not found")
        self.sha256 = verify_file(self.path) if verify else None
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        except Exception as exc:  # noqa: BLE001 - the interpreter raises ValueError/RuntimeError for bad flatbuffers
            raise EdgeModelError(f"{self.path}: not a loadable TFLite model ({type(exc).__name__}: {exc})") from exc
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        check_contract(self.path, self.input["shape_signature"], self.output["shape_signature"])
        fixed = int(self.input["shape_signature"][0])
        self.fixed_batch = fixed if fixed > 0 else None  # the microcontroller model is saved for one image at a time
        self._batch = None

    def ops(self) -> list[str]:
        """The model's operators, e.g. ['CONV_2D', ...]; [] when this LiteRT cannot list them."""
        try:
            return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})
        except Exception:  # noqa: BLE001 - private API; absent means "not inspectable", reported as such
            return []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One batch in one inference: (N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 class probabilities."""
        return self._run(validate_batch(x))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 class probabilities, batch_size images at a time."""
        x = validate_batch(x)
        batch_size = max(1, int(batch_size))
        return np.concatenate([self._run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch:  # one call per slice of the saved batch size, the last one zero-padded
            step = self.fixed_batch
            padded = np.concatenate([x, np.zeros((-len(x) % step, *x.shape[1:]), np.float32)])
            return np.concatenate([self._invoke(padded[i : i + step]) for i in range(0, len(x), step)])[: len(x)]
        return self._invoke(x)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        if self._batch != len(x):
            if not self.fixed_batch:
                it.resize_tensor_input(self.input["index"], [len(x), *self.input["shape_signature"][1:]])
            it.allocate_tensors()
            self._batch = len(x)
        if self.input["dtype"] != np.float32:
            scale, zero = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])
        it.set_tensor(self.input["index"], x)
        it.invoke()
        out = it.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero = self.output["quantization"]
            return (out.astype(np.float32) - zero) * np.float32(scale)
        return out.astype(np.float32, copy=True)


MODEL_SUFFIXES = {".onnx": OnnxClassifier, ".tflite": TfliteClassifier}


def open_classifier(model_path: str | Path, threads: int | None = None, verify: bool = True):
    """The classifier for a model file, chosen by its suffix: .onnx on onnxruntime, .tflite on LiteRT."""
    suffix = Path(model_path).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        found = f"a {suffix} file" if suffix else "a file without a suffix"
        raise EdgeModelError(f"{model_path}: expected an .onnx or .tflite model, found {found}")
    return MODEL_SUFFIXES[suffix](model_path, threads=threads, verify=verify)


# ----------------------------------------------------------------------------------------------------------------
# Device self-test: rerun the export's parity check with this device's runtime
# ----------------------------------------------------------------------------------------------------------------

SELFTEST_NAME = "selftest.json"
SELFTEST_FORMAT = "fashionnet-selftest/1"


def cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def selftest(model_path: str | Path, threads: int | None = None, verify: bool = True) -> tuple[bool, str]:
    """(passed, one line): the model on this device's runtime (onnxruntime or LiteRT) against Keras's answers
    recorded by the export.

    selftest.json (beside the model) holds test images whose top class Keras puts well ahead but not at p = 1 (a
    saturated softmax would hide small errors), with Keras's probabilities.
    Passing means the same top-1 class on every one and, for an fp32 model, every probability within the export
    gate's tolerance; an int8 model's probabilities are reported, not gated (its gate is accuracy).
    """
    model_path = Path(model_path)
    reference_path = model_path.parent / SELFTEST_NAME
    if not reference_path.is_file():
        raise EdgeInputError(
            f"{reference_path}: no self-test reference beside the model (`fashionnet export` writes it)"
        )
    if verify:
        verify_file(reference_path)
    try:
        reference = json.loads(reference_path.read_text())
        if reference.get("format") != SELFTEST_FORMAT:
            raise ValueError(f"expected format {SELFTEST_FORMAT!r}, found {reference.get('format')!r}")
        images = np.frombuffer(base64.b64decode(reference["images"]), dtype=np.uint8).reshape(-1, 28, 28)
        keras = np.asarray(reference["keras_probabilities"], dtype=np.float32).reshape(len(images), len(CLASS_NAMES))
        artifacts = reference["artifacts"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise EdgeInputError(f"{reference_path}: unreadable self-test reference ({_one_line(exc)})") from exc
    entry = artifacts.get(model_path.name)
    if entry is None:
        raise EdgeInputError(f"{reference_path}: no entry for {model_path.name}: found {sorted(artifacts)}")
    classifier = open_classifier(model_path, threads=threads, verify=verify)
    probs = classifier.predict(_images_from_array(images, "selftest"))
    agree = int((probs.argmax(1) == keras.argmax(1)).sum())
    diff = float(np.abs(probs.astype(np.float64) - keras).max())
    tolerance = entry.get("max_abs_diff_tolerance")
    passed = agree == len(images) and (tolerance is None or diff <= tolerance)
    gate = "not gated (int8)" if tolerance is None else f"{'<=' if diff <= tolerance else '>'} {tolerance:.0e}"
    line = (
        f"selftest {model_path.name}: {'PASS' if passed else 'FAIL'}, top-1 as Keras on {agree}/{len(images)} images, "
        f"max |\u0394p| {diff:.1e} {gate}, {classifier.runtime}, {cpu_name()}"
    )
    return passed, line


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


MODEL_HELP = "an exported fashionnet model: model.onnx, model.int8.onnx (onnxruntime) or a .tflite model (LiteRT)"
INPUTS_HELP = "IDX files (.gz or raw), .npy arrays ((28, 28), (N, 28, 28) or (N, 28, 28, 1)) or PNG/JPEG images"


def _top_count(text: str) -> int:
    """--top's type: a bad K is a one-line usage error naming the valid range, in both command lines."""
    import argparse

    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= len(CLASS_NAMES):
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {len(CLASS_NAMES)}, found {text!r}")
    return k


def add_model_options(parser) -> None:
    """--no-verify: `fashionnet predict` adds it too."""
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help=f"load the model even if it does not match the export's {MANIFEST_NAME} beside it",
    )


def add_output_options(parser) -> None:
    """--top and --json: `fashionnet predict` adds these same options, so both commands are used the same way."""
    parser.add_argument(
        "--top",
        type=_top_count,
        default=1,
        metavar="K",
        help=f"show the K most likely classes, 1 to {len(CLASS_NAMES)} (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of one line per image")


def format_predictions(
    probs: np.ndarray, names: list[str], model: str | Path, top: int = 1, as_json: bool = False
) -> str:
    """The output of this kit's command line and of `fashionnet predict`: one format, defined only here.

    Text: one line per image, INPUT<TAB>Class 0.9876[, Class2 0.0100 ...], the K most likely classes with 4
    decimals; when the top probability is below NOT_SURE_BELOW, INPUT<TAB>not sure: Class 0.4100, Class2 0.3800
    (at least two classes). JSON: one document {"model": FILE NAME, "not_sure_below": float, "predictions":
    [{"input", "label", "index", "probability", "sure", "top": [{"label", "index", "probability"}, ... K],
    "probabilities": [10 floats]}, ...]}, floats rounded to 6 decimals. Ties rank the lower class index first.
    """
    probs = np.asarray(probs)
    if probs.shape != (len(names), len(CLASS_NAMES)):
        raise ValueError(
            f"expected ({len(names)}, {len(CLASS_NAMES)}) probabilities for {len(names)} inputs, found {probs.shape}"
        )
    if not 1 <= top <= len(CLASS_NAMES):
        raise ValueError(f"top must be from 1 to {len(CLASS_NAMES)}, found {top}")
    order = np.argsort(-probs, axis=1, kind="stable")
    ranking = order[:, :top].tolist()
    rows = probs.tolist()  # Python floats: float32 -> float64 is exact, so rounding sees the model's values
    sure = [row[best[0]] >= NOT_SURE_BELOW for row, best in zip(rows, ranking, strict=True)]
    if not as_json:
        lines = []
        for name, row, best, confident, full in zip(names, rows, ranking, sure, order.tolist(), strict=True):
            shown = best if confident else full[: max(top, 2)]
            classes = ", ".join(f"{CLASS_NAMES[j]} {row[j]:.4f}" for j in shown)
            lines.append(f"{name}\t{'' if confident else 'not sure: '}{classes}\n")
        return "".join(lines)
    import json

    predictions = []
    for name, row, best, confident in zip(names, rows, ranking, sure, strict=True):
        ranked = [{"label": CLASS_NAMES[j], "index": j, "probability": round(row[j], 6)} for j in best]
        predictions.append(
            {"input": name, **ranked[0], "sure": confident, "top": ranked, "probabilities": [round(p, 6) for p in row]}
        )
    document = {"model": Path(model).name, "not_sure_below": NOT_SURE_BELOW, "predictions": predictions}
    return json.dumps(document) + "\n"


def print_predictions(
    probs: np.ndarray, names: list[str], model: str | Path, top: int = 1, as_json: bool = False
) -> None:
    """format_predictions to stdout; a reader that stops early (e.g. head) ends it quietly, like other tools."""
    import os
    import sys

    try:
        sys.stdout.write(format_predictions(probs, names, model, top, as_json))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="fashionnet_edge.py",
        description="Classify Fashion-MNIST-style inputs (IDX, .npy, PNG/JPEG) with an exported ONNX or TFLite model.",
    )
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("inputs", nargs="*", help=INPUTS_HELP)
    add_output_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--selftest",
        action="store_true",
        help=f"check the model on this device against the Keras answers in {SELFTEST_NAME} beside it; exit 0 or 1",
    )
    # small batches: onnxruntime's arena grows with the batch, throughput does not (docs/benchmarks.md)
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per inference (default 64)")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: all)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.selftest != (not args.inputs):
        parser.error("give INPUTS to classify, or --selftest without inputs")
    if args.selftest:
        try:
            passed, line = selftest(args.model, threads=args.threads, verify=not args.no_verify)
        except EdgeInputError as exc:
            print(f"fashionnet_edge: error: {exc}".replace("\n", " "), file=sys.stderr)
            return 2
        print(line)
        return 0 if passed else 1
    try:
        classifier = open_classifier(args.model, threads=args.threads, verify=not args.no_verify)
        images, names = load_inputs_named(args.inputs)
        probs = classifier.predict(images, batch_size=args.batch_size)
    except EdgeInputError as exc:
        print(f"fashionnet_edge: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    print_predictions(probs, names, args.model, top=args.top, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
