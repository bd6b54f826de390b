"""Photos with ground truth, made from Fashion-MNIST **test** garments, in the conditions a phone meets.

Each photo puts one test garment (its 28 x 28 levels used as the garment's opacity) on a background in one
condition: background colour and texture, a lighting gradient, sensor noise, JPEG quality, garment size and
position, a small rotation, an EXIF orientation, dark garments on light grounds and light on dark, a shadow, a
second small object, all of them at once; plus drawn silhouettes. Deterministic for a seed: anyone regenerates the
benchmark's photos (``python -m fashionnet.bench.photo_bench``) and the tests draw from the same maker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

# name -> what it varies from the base photo (a dark garment, 45-80 % of the short side, near the centre, on a
# plain light background with mild noise, JPEG quality 85)
CONDITIONS = {
    "plain": "the base photo",
    "light on dark": "a light garment on a dark background",
    "coloured background": "a saturated background colour, a garment of another colour",
    "textured background": "wood-grain and blotchy texture, +-12-28 grey levels",
    "lighting gradient": "light falling off by 20-40 % across the frame",
    "noise": "sensor noise, sigma 6-12 grey levels",
    "jpeg quality": "JPEG quality 35-60",
    "small garment": "the garment 18-30 % of the short side",
    "off centre": "the garment near an edge (3-8 % margin)",
    "rotated": "rotated 3-10 degrees either way",
    "exif orientation": "stored sideways or upside down, an EXIF tag saying how to turn it",
    "shadow": "a soft shadow beside the garment",
    "second object": "a small second object (a coin, a tag) away from the garment",
    "phone photo": "texture, gradient, noise, JPEG 65-80, rotation, off centre, shadow: all at once",
    "drawn silhouette": "a filled pen drawing of the garment's outline on paper",
}


@dataclass
class Photo:
    name: str
    data: bytes
    label: int  # the garment's class
    index: int  # its index in the test set
    condition: str


def _garment_alpha(garment: np.ndarray, side: int, angle: float, Image) -> np.ndarray:  # noqa: N803
    """(28, 28) uint8 -> (h, w) float opacity in [0, 1], enlarged to ``side`` (BICUBIC, slightly soft), rotated."""
    from PIL import ImageFilter

    img = Image.fromarray(garment).resize((side, side), Image.Resampling.BICUBIC)
    img = img.filter(ImageFilter.GaussianBlur(side / 120))
    if angle:
        img = img.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    return np.asarray(img, dtype=np.float64) / 255


def _texture(rng: np.random.Generator, height: int, width: int, amplitude: float, Image) -> np.ndarray:  # noqa: N803
    """Blotches (smooth noise) plus a wood grain (stripes bent by noise), zero mean, about +-amplitude."""
    coarse = rng.normal(0, 1, (max(2, height // 60), max(2, width // 60)))
    blotches = np.asarray(Image.fromarray(coarse.astype(np.float32)).resize((width, height), Image.Resampling.BICUBIC))
    y = np.arange(height)[:, None]
    bend = np.asarray(
        Image.fromarray(rng.normal(0, 1, (4, 4)).astype(np.float32)).resize((width, height), Image.Resampling.BICUBIC)
    )
    period = rng.uniform(8, 24)
    grain = np.sin(2 * np.pi * (y / period + 1.5 * bend))
    texture = 0.6 * blotches / max(1e-6, np.abs(blotches).max()) + 0.4 * grain
    return amplitude * texture


def make_photo(garment: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """One (28, 28) uint8 test garment -> the encoded photo (JPEG, or PNG for drawings) in ``condition``."""
    from PIL import Image, ImageFilter

    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: expected one of {', '.join(CONDITIONS)}")
    every = condition == "phone photo"
    height, width = int(rng.integers(420, 1200)), int(rng.integers(420, 1200))
    short = min(height, width)
    light_ground = condition != "light on dark" and not (every and rng.random() < 0.3)
    if condition == "coloured background":
        hue = rng.permutation([rng.integers(150, 256), rng.integers(60, 160), rng.integers(0, 70)])
        ground, colour = hue.astype(np.float64), rng.integers(0, 90, 3).astype(np.float64)
    elif light_ground:
        ground = rng.integers(185, 246, 3).astype(np.float64)
        colour = rng.integers(10, 110, 3).astype(np.float64)
    else:
        ground = rng.integers(10, 70, 3).astype(np.float64)
        colour = rng.integers(160, 250, 3).astype(np.float64)
    rgb = np.broadcast_to(ground, (height, width, 3)).copy()
    if condition == "textured background" or every:
        rgb += _texture(rng, height, width, rng.uniform(12, 28), Image)[..., None]

    fraction = rng.uniform(0.18, 0.30) if condition == "small garment" else rng.uniform(0.45, 0.8)
    side = int(short * fraction)
    angle = float(rng.uniform(3, 10) * rng.choice([-1, 1])) if condition == "rotated" or every else 0.0
    alpha = _garment_alpha(garment, side, angle, Image)
    if condition == "drawn silhouette":
        alpha = (alpha > 0.12).astype(np.float64)
    a_h, a_w = alpha.shape
    if condition == "off centre" or every:
        margin = int(short * rng.uniform(0.03, 0.08))
        top = margin if rng.random() < 0.5 else height - a_h - margin
        left = margin if rng.random() < 0.5 else width - a_w - margin
    else:
        top = int((height - a_h) / 2 + rng.uniform(-0.08, 0.08) * height)
        left = int((width - a_w) / 2 + rng.uniform(-0.08, 0.08) * width)
    top, left = int(np.clip(top, 0, height - a_h)), int(np.clip(left, 0, width - a_w))

    if condition == "shadow" or (every and light_ground):
        dy, dx = (int(side * rng.uniform(0.03, 0.08)) * int(rng.choice([-1, 1])) for _ in range(2))
        shadow = np.zeros((height, width))
        y0, x0 = int(np.clip(top + dy, 0, height - a_h)), int(np.clip(left + dx, 0, width - a_w))
        shadow[y0 : y0 + a_h, x0 : x0 + a_w] = alpha
        shadow = Image.fromarray(np.round(shadow * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side / 25))
        shadow = np.asarray(shadow, dtype=np.float64) / 255
        rgb *= 1 - rng.uniform(0.2, 0.35) * shadow[..., None]
    if condition == "second object":
        radius = int(side * rng.uniform(0.06, 0.1))
        yy, xx = np.mgrid[:height, :width]
        clear = radius + int(0.12 * side)  # beside the garment, not touching it: a coin, a tag on the table
        for _ in range(200):
            cy, cx = int(rng.integers(radius, height - radius)), int(rng.integers(radius, width - radius))
            if not (top - clear < cy < top + a_h + clear and left - clear < cx < left + a_w + clear):
                break
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(np.float64)
        rgb += disc[..., None] * (rng.integers(0, 256, 3) - rgb) * 0.9

    region = rgb[top : top + a_h, left : left + a_w]
    region += alpha[..., None] * (colour - region)
    if condition == "drawn silhouette":
        rgb = np.broadcast_to(rng.integers(235, 256, 3).astype(np.float64), rgb.shape).copy()
        rgb[top : top + a_h, left : left + a_w] += alpha[..., None] * (rng.integers(0, 60, 3) - 245.0)
    if condition == "lighting gradient" or every:
        direction = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[:height, :width]
        ramp = np.cos(direction) * (xx / width - 0.5) + np.sin(direction) * (yy / height - 0.5)
        ramp = (ramp - ramp.min()) / max(1e-9, np.ptp(ramp))
        rgb *= (1 - rng.uniform(0.2, 0.4) * ramp)[..., None]
    sigma = rng.uniform(6, 12) if condition == "noise" else rng.uniform(3, 7) if every else rng.uniform(1, 3)
    if condition != "drawn silhouette":
        rgb += rng.normal(0, sigma, rgb.shape)
    image = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), "RGB")
    if condition == "drawn silhouette":
        buffer = io.BytesIO()
        image.convert("L").save(buffer, "PNG")
        return buffer.getvalue()
    quality = int(rng.integers(35, 61)) if condition == "jpeg quality" else int(rng.integers(65, 81)) if every else 85
    exif = None
    if condition == "exif orientation":
        orientation = int(rng.choice([3, 6, 8]))
        # the camera's raw pixels: what the viewer's turn (EXIF 3: 180, 6: 90 clockwise, 8: 90 counter) undoes
        undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
        image = image.transpose(undo[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def make_benchmark(images: np.ndarray, labels: np.ndarray, per_condition: int, seed: int = 0) -> list[Photo]:
    """``per_condition`` photos of every condition, each a different test garment, classes in turn.

    ``images``/``labels`` are the Fashion-MNIST **test** set; garment i of a condition is the first unused test
    image of class i % 10 after a random start, so every condition sees every class equally.
    """
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    photos = []
    for c_index, condition in enumerate(CONDITIONS):
        for i in range(per_condition):
            label = i % 10
            pool = by_class[label]
            index = int(pool[(c_index * per_condition + i // 10 * 7919 + seed * 31) % len(pool)])
            suffix = ".png" if condition == "drawn silhouette" else ".jpg"
            name = f"{condition.replace(' ', '-')}-{i:03d}-{index:05d}{suffix}"
            photos.append(Photo(name, make_photo(images[index], condition, rng), label, index, condition))
    return photos
