"""The Keras callbacks of a training run: a continuous history, progress lines, atomic backups, and Ctrl-C or
SIGTERM between batches."""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import keras

from fashionnet.core import console
from fashionnet.errors import StorageError
from fashionnet.runs import read_json, recover_dir, swap_dir, write_bytes, write_failed, write_json


class HistoryLog(keras.callbacks.Callback):
    """Writes the history after every epoch, indexed by epoch, so a resumed run keeps one continuous history."""

    def __init__(self, path: Path, write: bool = True):
        super().__init__()
        self.path, self.write = Path(path), write  # write=False: a data-parallel process other than process 0

    def load(self) -> dict[str, list[float]]:
        if not self.path.exists():
            return {}
        return read_json(self.path)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        history = self.load()
        logs = {**(logs or {}), "epoch_seconds": time.perf_counter() - self._started}
        for key, value in logs.items():
            # Truncate to this epoch: an epoch redone after an interruption replaces, never duplicates.
            history[key] = history.get(key, [])[:epoch] + [float(value)]
        write_json(self.path, history)


class ProgressLog(keras.callbacks.Callback):
    """One line per epoch with its time and an estimate of the time left; a heartbeat line inside a long epoch.

    The heartbeat is checked when a batch *begins* (see InterruptBetweenBatches): it costs one clock read.
    """

    def __init__(self, epochs: int, log=None, heartbeat_seconds: float = 30.0):
        super().__init__()
        self.epochs, self.heartbeat_seconds = epochs, heartbeat_seconds
        self.log = log or console.log
        self.durations: list[float] = []

    def on_train_begin(self, logs=None):
        self.log(f"training: {self.epochs} epochs, {self.params.get('steps') or '?'} steps each")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._started = epoch, time.monotonic()
        self._next_beat = self._started + self.heartbeat_seconds

    def on_train_batch_begin(self, batch, logs=None):
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_seconds
            steps = self.params.get("steps") or "?"
            self.log(f"  epoch {self._epoch + 1}/{self.epochs}: step {batch}/{steps}, {now - self._started:.0f} s")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._started
        self.durations.append(seconds)
        metrics = "  ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
        left = self.epochs - epoch - 1
        # the first epoch of a process includes tracing/compilation: leave it out of the estimate when possible
        typical = sorted(self.durations[1:] or self.durations)[len(self.durations[1:] or self.durations) // 2]
        eta = f", ~{console.duration(left * typical)} left" if left else ""
        self.log(f"epoch {epoch + 1}/{self.epochs}  {metrics}  ({console.duration(seconds)}{eta})")


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore, but each backup (weights + epoch) replaces the previous one in a single rename.

    Keras writes the weights file and then the metadata in place; a kill between or during the two leaves
    a torn backup. Here both are written to a fresh folder which then replaces the backup folder.
    """

    def __init__(self, backup_dir: Path, write: bool = True):
        super().__init__(backup_dir=str(backup_dir), delete_checkpoint=False)
        self._dir, self._write = Path(backup_dir), write  # every process restores; process 0 alone saves

    # save_freq="epoch": nothing to do after a batch. Keras's own batch-end hook would make Keras convert the logs
    # after every step and turn off its asynchronous callback dispatch (measured in docs/benchmarks.md).
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def on_train_begin(self, logs=None):
        if self._write:
            recover_dir(self._dir)  # killed between swap_dir's two renames
        super().on_train_begin(logs)

    def _save_model(self):
        if not self._write:
            # Reading a variable of a multi-process job is a collective every process must join: the others
            # save the same weights to a scratch folder, never to the run folder.
            with tempfile.TemporaryDirectory(prefix="fashionnet-replica-") as scratch:
                self.model.save_weights(str(Path(scratch) / "latest.weights.h5"))
            return
        staging = self._dir.with_name(self._dir.name + ".new")
        kept = "the previous backup is kept" if self._dir.exists() else "no backup was written"
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            write_bytes(staging / "latest.weights.h5", weights_h5_bytes(self.model))  # Keras restores from it
            meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            write_json(staging / "training_metadata.json", meta)
            swap_dir(staging, self._dir)
        except OSError as exc:  # staging or the swap
            raise write_failed(Path(exc.filename or staging), exc, kept) from exc
        except StorageError as exc:
            raise write_failed(Path(exc.filename), exc.__cause__, kept) from None  # say what the backup keeps
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # after a failure; after success it is the backup already


def weights_h5_bytes(model: keras.Model) -> bytes:
    """What ``model.save_weights`` writes (weights and optimizer state), built in memory by Keras's own writer, as
    Keras builds the weights of a .keras archive. h5py writing straight to a full disk leaves a half-open file
    that prints tracebacks and crashes the interpreter at exit (SIGSEGV, measured); bytes are written by Python."""
    # private Keras API: no public one writes weights to memory; keras is pinned, its H5IOStore takes a BytesIO
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    store.close()
    return buffer.getvalue()


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C or SIGTERM raises KeyboardInterrupt between batches, from Keras's own loop.

    On jax a SIGINT delivered during fit can be swallowed inside the data pipeline (docs/reliability.md). Here the
    signal only sets a flag, and the callback raises where nothing catches it. SIGTERM, what a cluster scheduler
    sends before it kills a pre-empted job, is handled the same way. A second signal interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.requested = False
        self.signum = signal.SIGINT

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _check(self, *args, **kwargs):
        if self.requested:
            raise KeyboardInterrupt

    # Checked when a batch *begins*: a batch-end hook would turn off Keras's asynchronous callback dispatch and
    # sync after every step (measured in docs/benchmarks.md); a begin hook costs nothing and stops just as early.
    on_train_batch_begin = on_test_batch_begin = on_epoch_begin = _check
