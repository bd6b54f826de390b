"""Generated "photos" for the preprocessing tests: real Fashion-MNIST garments enlarged, coloured and placed on a
background, saved in the modes and formats users upload (PNG grey/RGB/RGBA/LA/palette, JPEG, EXIF-rotated JPEG)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

# (file suffix, Pillow mode to save in, light background?, EXIF orientation or None)
PHOTO_KINDS = (
    (".png", "RGB", True, None),
    (".png", "RGB", False, None),
    (".png", "L", True, None),
    (".png", "L", False, None),
    (".png", "RGBA", None, None),  # transparent background, opaque garment
    (".png", "LA", None, None),
    (".png", "P", True, None),
    (".png", "P", False, None),
    (".jpg", "RGB", True, None),
    (".jpg", "L", False, None),
    (".jpg", "RGB", True, 6),  # stored sideways, EXIF says rotate 90 degrees
)


@dataclass
class Photo:
    name: str
    data: bytes


def make_photo(garment: np.ndarray, kind: tuple, rng: np.random.Generator, index: int) -> Photo:
    """One (28, 28) uint8 garment -> a photo of random size, colour, placement and noise, in ``kind``'s format."""
    from PIL import Image

    suffix, mode, light, orientation = kind
    height = int(rng.integers(40, 420))
    width = int(rng.integers(40, 420))
    side = int(rng.integers(20, min(height, width) + 1))
    mask = np.asarray(Image.fromarray(garment).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    background = rng.integers(200, 256, 3) if light else rng.integers(0, 50, 3)
    if light is None:
        background = rng.integers(0, 256, 3)
    colour = rng.integers(0, 120, 3) if light else rng.integers(150, 256, 3)
    rgb = np.broadcast_to(background, (height, width, 3)).astype(np.float64).copy()
    rgb[top : top + side, left : left + side] += mask[..., None] * (colour - background)
    rgb += rng.normal(0, 4, rgb.shape) * (index % 2)
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    if mode in ("RGBA", "LA"):
        alpha = np.zeros((height, width), np.uint8)
        alpha[top : top + side, left : left + side] = np.where(mask > 0.05, 255, 0)
        image = image.convert("RGB" if mode == "RGBA" else "L")
        image.putalpha(Image.fromarray(alpha))
    elif mode == "P":
        image = image.quantize(colors=32)
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    if suffix == ".jpg":
        exif = None
        if orientation:
            image = image.transpose(Image.Transpose.ROTATE_270)  # the camera's raw sideways pixels
            exif = Image.Exif()
            exif[0x0112] = orientation
        image.save(buffer, "JPEG", quality=90, **({"exif": exif} if exif else {}))
    else:
        image.save(buffer, "PNG")
    return Photo(f"photo{index:02d}-{mode}{'-exif' if orientation else ''}{suffix}", buffer.getvalue())


def make_photos(garments: np.ndarray, per_kind: int = 2, seed: int = 0) -> list[Photo]:
    """``per_kind`` photos of every kind in PHOTO_KINDS, from consecutive garments of ``garments`` (N, 28, 28)."""
    rng = np.random.default_rng(seed)
    photos = []
    for i in range(per_kind * len(PHOTO_KINDS)):
        photos.append(make_photo(garments[i % len(garments)], PHOTO_KINDS[i % len(PHOTO_KINDS)], rng, i))
    return photos
