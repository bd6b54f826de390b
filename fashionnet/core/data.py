"""Fashion-MNIST: find the official IDX files, verify them, and preprocess exactly as the assignment does."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashionnet.core.paths import user_path
from fashionnet.errors import DataError
from fashionnet_edge import CLASS_NAMES, EdgeInputError, parse_idx, read_bytes

__all__ = ["CLASS_NAMES", "IMAGE_SHAPE", "NUM_CLASSES", "load_data", "preprocess", "find_data_dir"]

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = len(CLASS_NAMES)
DATA_ENV = "FASHIONNET_DATA"
KERAS_CACHE = Path("~/.keras/datasets/fashion-mnist")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class IdxFile:
    name: str
    shape: tuple[int, ...]
    sha256: str  # of the decompressed IDX bytes: accepts the official and Debian's recompressed copies


FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte.gz",
        (60000, 28, 28),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte.gz",
        (60000,),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte.gz",
        (10000, 28, 28),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        (10000,),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


def _has_all_files(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f.name).is_file() for f in FILES.values())


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The look-up order: argument, $FASHIONNET_DATA, the Keras cache, Debian's package."""
    found = []
    if data_dir is not None:
        found.append(("argument", user_path(data_dir)))
    if os.environ.get(DATA_ENV):
        found.append((f"${DATA_ENV}", user_path(os.environ[DATA_ENV])))
    found.append(("keras cache", KERAS_CACHE.expanduser()))
    found.append(("debian package", DEBIAN_DIR))
    return found


def resolve_data_env() -> None:
    """$FASHIONNET_DATA made absolute in this process's environment, so child processes started elsewhere agree."""
    if os.environ.get(DATA_ENV):
        os.environ[DATA_ENV] = str(user_path(os.environ[DATA_ENV]))


def find_data_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The first folder holding all four files; an explicit folder must hold them, it is never skipped."""
    searched = []
    for source, folder in candidate_dirs(data_dir):
        if _has_all_files(folder):
            return folder
        if source in ("argument", f"${DATA_ENV}"):
            missing = [f.name for f in FILES.values() if not (folder / f.name).is_file()]
            what = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
            raise DataError(f"Fashion-MNIST folder {folder} (from {source}) {what}")
        searched.append(f"{folder} ({source})")
    if download:
        return _download()
    raise DataError("Fashion-MNIST not found; searched: " + "; ".join(searched))


def _download() -> Path:
    """The official download, into the same cache keras.datasets.fashion_mnist uses."""
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - keras is a core dependency
        raise DataError("Fashion-MNIST not found locally and keras is missing for the download") from exc
    folder = None
    for f in FILES.values():
        try:
            path = keras.utils.get_file(f.name, origin=DOWNLOAD_BASE + f.name, cache_subdir="datasets/fashion-mnist")
        except Exception as exc:  # noqa: BLE001 - any network failure becomes one clear message
            raise DataError(
                f"Fashion-MNIST not found locally and the download of {f.name} failed ({exc}); "
                f"pass --data-dir or set {DATA_ENV} to a folder with the four IDX .gz files"
            ) from exc
        folder = Path(path).parent
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_checked(folder: Path, spec: IdxFile, verify: bool = True) -> np.ndarray:
    """One IDX file, checked for shape, dtype and (when verify) the official checksum."""
    path = folder / spec.name
    try:
        data = read_bytes(path)
        if verify and (found := sha256(data)) != spec.sha256:
            raise DataError(f"{path}: checksum mismatch: expected sha256 {spec.sha256}, found {found}")
        array = parse_idx(data, str(path))
    except EdgeInputError as exc:
        raise DataError(str(exc)) from exc
    if array.shape != spec.shape or array.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8 array of shape {spec.shape}, found {array.dtype} {array.shape}")
    return array


Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_arrays(folder: Path, verify: bool = True) -> Dataset:
    """Read and cross-check the four files of one folder."""
    arrays = {key: read_checked(folder, spec, verify) for key, spec in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{folder}: {split} has {len(images)} images but {len(labels)} labels")
        if labels.max(initial=0) >= NUM_CLASSES:
            raise DataError(f"{folder}: {split} labels must be 0..{NUM_CLASSES - 1}, found {labels.max()}")
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


def load_data(data_dir: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """Same contract as keras.datasets.fashion_mnist.load_data(): uint8 arrays in the official order."""
    return load_arrays(find_data_dir(data_dir), verify=verify)


DataSource = str | os.PathLike | Dataset | None


def dataset_from(data: DataSource = None) -> Dataset:
    """``data``: arrays already loaded (as load_data returns them), a folder, or None (the look-up order)."""
    return data if isinstance(data, tuple) else load_data(data)


def checksums() -> dict[str, str]:
    """The sha256 of each file's decompressed IDX bytes (what read_checked verifies), by IDX name without .gz."""
    return {spec.name.removesuffix(".gz"): spec.sha256 for spec in FILES.values()}


def preprocess_images(images: np.ndarray) -> np.ndarray:
    """(N,28,28) uint8 -> (N,28,28,1) float32 in [0,1], the assignment's reshape and /255."""
    return images.reshape(images.shape[0], *IMAGE_SHAPE).astype("float32") / 255


def one_hot(labels: np.ndarray) -> np.ndarray:
    """The assignment's to_categorical, in numpy so the data stage needs no backend."""
    return np.eye(NUM_CLASSES, dtype="float32")[labels]


def preprocess(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exactly the assignment's steps: reshape to (N,28,28,1) float32, divide by 255, one-hot labels."""
    return preprocess_images(images), one_hot(labels)
