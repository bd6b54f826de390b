"""The run folder's layout and atomic writes: a file appears complete under its real name, or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fashionnet.errors import RunError


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def history_partial(self) -> Path:
        return self.root / "history.partial.json"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def confusion_csv(self) -> Path:
        return self.root / "confusion_matrix.csv"

    @property
    def classification_report(self) -> Path:
        return self.root / "classification_report.txt"

    @property
    def accuracy_png(self) -> Path:
        return self.root / "accuracy.png"

    @property
    def loss_png(self) -> Path:
        return self.root / "loss.png"

    @property
    def confusion_png(self) -> Path:
        return self.root / "confusion_matrix.png"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"


def ensure_writable_dir(path: Path) -> Path:
    """Create the folder, or say plainly why it cannot hold a run."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"run folder {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create run folder {path}: {exc.strerror or exc}") from exc
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise RunError(f"run folder {path} is not writable: {exc.strerror or exc}") from exc
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files 0600 and a rename keeps the mode: give them what open() would, 0666 less the umask
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling path (same suffix, for writers that check it); rename it over `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, FILE_MODE)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunError(f"{path} not found") from exc
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is unreadable or not JSON: {exc}") from exc
