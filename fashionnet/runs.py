"""The run folder: its layout (RunPaths), its record (config.json, RunRecord) and atomic writes.

Everything that reads or writes a run goes through here: a file appears complete under its real name or not at
all, a folder is swapped in whole, and config.json has one versioned schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fashionnet.config import TrainConfig
from fashionnet.errors import ConfigError, RunError, StorageError, first_line, os_reason


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
    def timings(self) -> Path:
        """Each stage's wall time when it last did its work, and the CPU it ran on (fashionnet/pipeline.py)."""
        return self.root / "timings.json"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def export_rejected(self) -> Path:
        """Artifacts that failed the parity gate, kept for inspection beside the good export."""
        return self.root / "export.rejected"

    @property
    def parity(self) -> Path:
        return self.export_dir / "parity.json"

    @property
    def parity_md(self) -> Path:
        return self.export_dir / "parity.md"

    @property
    def manifest(self) -> Path:
        """SHA-256 of every exported file (publish/manifest.py writes it, the edge kit checks models against it)."""
        from fashionnet_edge import MANIFEST_NAME

        return self.export_dir / MANIFEST_NAME


# ---------------------------------------------------------------------------------------------------------------
# The run record: config.json
# ---------------------------------------------------------------------------------------------------------------

RECORD_SCHEMA = 2  # 1: no "schema" key (fashionnet 0.1.0 before the record had an owner)


@dataclass(frozen=True)
class RunRecord:
    """What a run was trained with: the options, the recipe, and the environment (backend, versions, data)."""

    config: TrainConfig
    recipe: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)

    @property
    def backend(self) -> str | None:
        """The Keras backend that trained the run."""
        return self.environment.get("backend")

    def differences(self, config: TrainConfig) -> list[str]:
        """'option: recorded -> wanted' for every training option that differs."""
        saved, wanted = self.config.to_dict(), config.to_dict()
        return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in wanted.items() if saved.get(k) != v]

    def to_json(self) -> dict:
        return {
            "schema": RECORD_SCHEMA,
            "config": self.config.to_dict(),
            "recipe": self.recipe,
            "environment": self.environment,
        }

    @classmethod
    def from_json(cls, data, source: Path | str = "config.json") -> RunRecord:
        """Schema 2, or schema 1 (read as 2); anything else is refused with the version or the problem named."""
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise RunError(f"{source}: not a fashionnet run record: expected an object with a 'config' object")
        schema = data.get("schema", 1)
        if schema not in (1, RECORD_SCHEMA):
            raise RunError(
                f"{source}: run record schema {schema!r}, this fashionnet {_version()} reads schemas 1 and "
                f"{RECORD_SCHEMA}: use the fashionnet that wrote it"
            )
        config = dict(data["config"])
        environment = dict(data.get("environment") or {})
        if schema == 1:
            for legacy in ("optimizer", "loss"):  # schema 1 kept the assignment's compile strings in the config
                config.pop(legacy, None)
            if "data_sha256" in environment:
                checksums = environment.pop("data_sha256")
                environment["data_sha256_of_decompressed_idx"] = {
                    name.removesuffix(".gz"): value for name, value in checksums.items()
                }
        try:
            train_config = TrainConfig.from_dict(config)
        except ConfigError as exc:
            raise RunError(f"{source}: {exc}") from exc
        return cls(train_config, dict(data.get("recipe") or {}), environment)


def _version() -> str:
    from fashionnet import __version__

    return __version__


def write_record(paths: RunPaths, record: RunRecord) -> Path:
    return write_json(paths.config, record.to_json())


def read_record(paths: RunPaths) -> RunRecord:
    return RunRecord.from_json(read_json(paths.config), paths.config)


def read_record_if_any(paths: RunPaths) -> RunRecord | None:
    """The record, or None for a folder without config.json (e.g. a model.keras copied in by hand)."""
    return read_record(paths) if paths.config.exists() else None


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


def training_in_progress(paths: RunPaths) -> bool:
    """A training started in this folder and not finished: the next run without --force resumes it."""
    return paths.history_partial.exists() or paths.backup.exists()


LOCK_NAME = ".fashionnet.lock"
_HELD: set[Path] = set()  # the run folders this process holds the writer lock of (re-entered as a no-op)


@contextlib.contextmanager
def writer_lock(root: Path, command: str):
    """One writer per run folder: an exclusive ``flock`` on ROOT/.fashionnet.lock while ``command`` writes there.

    A second writer gets a RunError (exit 7) naming the folder and the process that holds it. The kernel drops
    the lock when its process ends, however it ends, so a killed run never blocks the next one. Readers (predict,
    bench on a finished run) take no lock. Re-entering in the same process (reproduce -> train) is a no-op.
    """
    import fcntl  # POSIX: fashionnet's platforms

    root = Path(os.path.abspath(root))
    if root in _HELD:
        yield
        return
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise RunError(f"cannot lock run folder {root}: {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise RunError(
            f"run folder {root} is in use by {holder}; wait for it to finish or stop it, then rerun"
        ) from None
    with contextlib.suppress(OSError):  # the holder's name is a courtesy: a full disk must not stop the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"fashionnet {command} (pid {os.getpid()} on {os.uname().nodename})\n".encode(), 0)
    _HELD.add(root)
    try:
        yield
    finally:
        _HELD.discard(root)
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files 0600 and a rename keeps the mode: give them what open() would, 0666 less the umask
FILE_MODE = 0o666 & ~_umask()


def write_failed(path: Path, exc: BaseException, kept: str | None = None) -> StorageError:
    """The one-line error for a write that failed: the file, the cause, and what is still there."""
    path = Path(path)
    if kept is None:
        kept = f"the previous {path.name} is unchanged" if path.exists() else "no file was left under that name"
    error = StorageError(f"cannot write {path}: {os_reason(exc)}; {kept}")
    error.filename = str(path)
    return error


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling path (same suffix, for writers that check it); rename it over `path` on success.

    A write that fails (disk full, I/O error) raises StorageError naming `path`; the previous file stays.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    tmp = Path(tmp)
    try:
        os.chmod(tmp, FILE_MODE)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def swap_dir(staged: Path, target: Path) -> Path:
    """Put the folder ``staged`` in place of ``target`` by renames on one filesystem; the old ``target`` is kept
    as ``target.old`` until the new one is in place (``recover_dir`` puts it back after a crash in between)."""
    previous = target.with_name(target.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        os.replace(target, previous)
    try:
        os.replace(staged, target)
    except OSError:
        if previous.exists():
            os.replace(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return target


def recover_dir(target: Path) -> None:
    """After a crash between swap_dir's two renames: the previous folder comes back."""
    previous = target.with_name(target.name + ".old")
    if not target.exists() and previous.exists():
        os.replace(previous, target)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_timings(paths: RunPaths) -> dict:
    """timings.json, or {} where a run has none yet (or an unreadable one: the next stage rewrites it)."""
    try:
        timings = read_json(paths.timings)
    except RunError:
        return {}
    return timings if isinstance(timings, dict) else {}


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunError(f"{path} not found") from exc
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise RunError(f"{path} is unreadable or not JSON: {first_line(exc)}") from exc
