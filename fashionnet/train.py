"""Fit the assignment's network with Keras callbacks that make a run resumable and its history continuous."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

import fashionnet
from fashionnet import console, recipes
from fashionnet import data as fdata
from fashionnet.config import TrainConfig
from fashionnet.errors import FashionNetError, RunError
from fashionnet.model import flip_averaged
from fashionnet.runs import (
    RunPaths,
    RunRecord,
    atomic_path,
    ensure_writable_dir,
    read_json,
    read_record,
    recover_dir,
    swap_dir,
    write_json,
    write_record,
)

BACKEND_DISTRIBUTIONS = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "jax": ("jax",), "torch": ("torch",)}


class TrainingInterrupted(FashionNetError):
    """Ctrl-C during fit: the last completed epoch is kept and the same command resumes."""

    exit_code = 130


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment() -> dict:
    """Everything besides the config needed to rerun: versions and the data's checksums."""
    backend = keras.backend.backend()
    return {
        "fashionnet": fashionnet.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _version(*BACKEND_DISTRIBUTIONS.get(backend, (backend,))),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "data_sha256_of_decompressed_idx": fdata.checksums(),
    }


class HistoryLog(keras.callbacks.Callback):
    """Writes the history after every epoch, indexed by epoch, so a resumed run keeps one continuous history."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def load(self) -> dict[str, list[float]]:
        if not self.path.exists():
            return {}
        return read_json(self.path)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
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

    def __init__(self, backup_dir: Path):
        super().__init__(backup_dir=str(backup_dir), delete_checkpoint=False)
        self._dir = Path(backup_dir)

    # save_freq="epoch": nothing to do after a batch. Keras's own batch-end hook would make Keras convert the logs
    # after every step and turn off its asynchronous callback dispatch (measured in docs/benchmarks.md).
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def on_train_begin(self, logs=None):
        recover_dir(self._dir)  # killed between swap_dir's two renames
        super().on_train_begin(logs)

    def _save_model(self):
        staging = self._dir.with_name(self._dir.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.model.save_weights(str(staging / "latest.weights.h5"), overwrite=True)
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        write_json(staging / "training_metadata.json", meta)
        swap_dir(staging, self._dir)


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C raises KeyboardInterrupt between batches, from Keras's own loop.

    On jax a SIGINT delivered during fit can be swallowed inside the data pipeline (docs/reliability.md). Here the
    signal only sets a flag, and the callback raises where nothing catches it.
    A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        super().__init__()
        self.requested = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def _check(self, *args, **kwargs):
        if self.requested:
            raise KeyboardInterrupt

    # Checked when a batch *begins*: a batch-end hook would turn off Keras's asynchronous callback dispatch and
    # sync after every step (measured in docs/benchmarks.md); a begin hook costs nothing and stops just as early.
    on_train_batch_begin = on_test_batch_begin = on_epoch_begin = _check


@dataclass
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]
    paths: RunPaths
    resumed_from_epoch: int


@contextlib.contextmanager
def compute_settings(precision: str = "float32"):
    """The dtype policy for building and fitting, and on jax the faster gradients of fashionnet/jax_ops.py.

    float32 (the default) computes what the assignment computes: jax_ops's pool gradient is bit-identical to
    XLA's, its convolution weight gradient the same sum in another order (equal to float32 rounding), only faster.
    mixed_bfloat16 computes in bfloat16 with float32 weights (opt-in).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        if keras.backend.backend() == "jax":
            from fashionnet.jax_ops import fast_conv_weight_gradient, fast_max_pool

            with fast_max_pool(), fast_conv_weight_gradient():
                yield
        else:
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _float32_output(model: keras.Model) -> keras.Model:
    """Under mixed precision, the softmax layer computes in float32 (Keras's advice for numerical stability)."""
    last = model.layers[-1]

    def clone(layer):
        config = layer.get_config()
        if layer is last:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def _float32_copy(model: keras.Model, recipe: recipes.Recipe) -> keras.Model:
    """The same network built with the float32 policy, holding the trained (float32) weights: what gets saved."""
    with compute_settings("float32"):
        fresh = recipes.build(recipe)
    fresh.set_weights(model.get_weights())
    return fresh


def _recipe_for(config: TrainConfig, recipe: recipes.Recipe | None) -> recipes.Recipe:
    return recipe if recipe is not None else recipes.get_recipe(config.recipe)


def _check_run_state(paths: RunPaths, config: TrainConfig, force: bool) -> None:
    """Refuse to silently retrain a finished run or resume one with other options."""
    if force:
        for stale in (paths.backup, paths.backup.with_name("backup.old"), paths.backup.with_name("backup.new")):
            shutil.rmtree(stale, ignore_errors=True)
        paths.history_partial.unlink(missing_ok=True)
        return
    if paths.model.exists() and paths.history.exists():
        raise RunError(
            f"run {paths.root} is already trained (model.keras and history.json exist); "
            "evaluate it, or pass --force to train it again"
        )
    if paths.config.exists() and (paths.backup.exists() or paths.history_partial.exists()):
        diffs = read_record(paths).differences(config)
        if diffs:
            raise RunError(
                f"run {paths.root} was started with other options ({'; '.join(diffs)}); "
                "rerun with the same options to resume, or pass --force to start over"
            )


def load_training_arrays(config: TrainConfig, data: fdata.DataSource = None):
    """The assignment's preprocessed training arrays, cut to --limit (``data``: see data.dataset_from)."""
    (x_train, y_train), _ = fdata.dataset_from(data)
    config.validate(n_available=len(x_train))
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    return fdata.preprocess(x_train, y_train)


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    data: fdata.DataSource = None,
    *,
    force: bool = False,
    verbose: int | None = None,
    recipe: recipes.Recipe | None = None,
    callbacks: list | None = None,
    log=None,
) -> TrainResult:
    """Train into a run folder; rerunning after an interruption resumes from the last completed epoch.

    The network, compile settings and training data come from ``config.recipe`` (fashionnet/recipes.py);
    ``recipe`` replaces that Recipe (the ablation in docs/accuracy.md uses it), and is recorded in config.json.
    ``callbacks`` are added after fashionnet's own (the benchmark times epochs with one).
    Progress goes to ``log`` (default: stdout), one line per epoch; ``verbose=0`` trains silently.
    """
    recipe = _recipe_for(config, recipe)
    x, y = load_training_arrays(config, data)  # data errors before the run folder is created
    paths = RunPaths(ensure_writable_dir(Path(run_dir)))
    _check_run_state(paths, config, force)
    write_record(paths, RunRecord(config, recipe.to_dict(), environment()))

    keras.utils.set_random_seed(config.seed)
    steps = recipes.steps_per_epoch(len(x), config.batch_size, config.validation_split)
    history_log = HistoryLog(paths.history_partial)
    backup = AtomicBackupAndRestore(paths.backup)
    interrupt = InterruptBetweenBatches()
    resumed_from = len(history_log.load().get("loss", []))
    progress = [] if verbose == 0 else [ProgressLog(config.epochs, log)]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 0  # Keras's live bar on a terminal; ProgressLog's lines anywhere
    with compute_settings(config.precision):
        model = recipes.build(recipe)
        if config.precision != "float32":
            model = _float32_output(model)
        model = recipes.compile_for(model, recipe, steps, config.epochs)
        try:
            with interrupt.installed():
                model.fit(
                    **recipes.fit_arguments(recipe, x, y, config.batch_size, config.validation_split, config.seed),
                    epochs=config.epochs,
                    # history first: a kill between the two redoes the epoch
                    callbacks=[history_log, backup, interrupt, *progress, *(callbacks or [])],
                    verbose=verbose,
                )
        except KeyboardInterrupt:
            done = len(history_log.load().get("loss", []))
            raise TrainingInterrupted(
                f"interrupted after {done} of {config.epochs} completed epochs; "
                f"rerun the same command to resume from epoch {done + 1}"
            ) from None

    if config.precision != "float32":
        model = _float32_copy(model, recipe)
    if recipe.test_time_flip:
        model = flip_averaged(model)  # after fit: training and its validation curves use the plain network
    with atomic_path(paths.model) as tmp:
        model.save(tmp)
    history = history_log.load()
    write_json(paths.history, history)
    paths.history_partial.unlink(missing_ok=True)
    shutil.rmtree(paths.backup, ignore_errors=True)
    return TrainResult(model=model, history=history, paths=paths, resumed_from_epoch=resumed_from)
