"""Fit the assignment's network with Keras callbacks that make a run resumable and its history continuous."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

import fashionnet
from fashionnet.config import TrainConfig
from fashionnet.core import console, recipes
from fashionnet.core import data as fdata
from fashionnet.core.networks import flip_averaged
from fashionnet.errors import FashionNetError, RunError, StorageError
from fashionnet.runs import (
    RunPaths,
    RunRecord,
    atomic_path,
    ensure_writable_dir,
    read_json,
    read_record,
    recover_dir,
    swap_dir,
    training_in_progress,
    write_bytes,
    write_failed,
    write_json,
    write_record,
    writer_lock,
)
from fashionnet.training import distributed

BACKEND_DISTRIBUTIONS = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "jax": ("jax",), "torch": ("torch",)}


class TrainingInterrupted(FashionNetError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143, a scheduler pre-empting the job) during fit: the last completed
    epoch is kept and the same command resumes."""

    exit_code = 130

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)  # the shell's convention for a process ended by that signal


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment(topology: distributed.Topology | None = None) -> dict:
    """Everything besides the config needed to rerun: versions, the data's checksums, and for a data-parallel run
    the processes and devices it trained on."""
    backend = keras.backend.backend()
    extra = {"distributed": topology.describe()} if topology is not None and topology.distributed else {}
    return {
        "fashionnet": fashionnet.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _version(*BACKEND_DISTRIBUTIONS.get(backend, (backend,))),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "data_sha256_of_decompressed_idx": fdata.checksums(),
        **extra,
    }


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
    from keras.src.saving import saving_lib  # pinned keras; its H5IOStore takes a BytesIO (saving_lib.py)

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


@dataclass
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]
    paths: RunPaths
    resumed_from_epoch: int
    topology: distributed.Topology = distributed.SINGLE  # is_chief False: this process wrote nothing


@contextlib.contextmanager
def compute_settings(precision: str = "float32"):
    """The dtype policy for building and fitting, and the backend's faster ops: on jax the gradients of
    training/ops/jax_ops.py, on torch the copy-free channels-last convolution and pooling of training/ops/torch_ops.py
    and its fused batch normalization (the improved recipe's).

    float32 (the default) computes what the assignment computes: jax_ops's pool gradient is bit-identical to
    XLA's, its convolution weight gradient the same sum in another order (equal to float32 rounding), only faster;
    torch_ops runs Keras's own torch kernels on a channels-last view instead of a copy (bit-identical values), and
    batch normalization as torch's one kernel (as close to a float64 result as Keras's, or closer).
    mixed_bfloat16 computes in bfloat16 with float32 weights (opt-in).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        if keras.backend.backend() == "jax":
            from fashionnet.training.ops.jax_ops import fast_conv_weight_gradient, fast_max_pool

            with fast_max_pool(), fast_conv_weight_gradient():
                yield
        elif keras.backend.backend() == "torch":
            from fashionnet.training.ops.torch_ops import channels_last_ops, fused_batch_normalization

            with channels_last_ops(), fused_batch_normalization():
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


def _float32_copy(weights: list[np.ndarray], recipe: recipes.Recipe) -> keras.Model:
    """The network built with the float32 policy (and no distribution), holding the trained float32 weights."""
    with compute_settings("float32"):
        fresh = recipes.build(recipe)
    fresh.set_weights(weights)
    return fresh


def _recipe_for(config: TrainConfig, recipe: recipes.Recipe | None) -> recipes.Recipe:
    return recipe if recipe is not None else recipes.get_recipe(config.recipe)


def _check_run_state(paths: RunPaths, config: TrainConfig, force: bool, write: bool = True) -> None:
    """Refuse to silently retrain a finished run or resume one with other options (``write``: clear it for
    --force; every process of a data-parallel job checks, process 0 alone clears)."""
    if force:
        if not write:
            return
        for stale in (paths.backup, paths.backup.with_name("backup.old"), paths.backup.with_name("backup.new")):
            shutil.rmtree(stale, ignore_errors=True)
        paths.history_partial.unlink(missing_ok=True)
        return
    if training_in_progress(paths):
        pass  # resumed below, even over the model of an earlier training (an interrupted --force retrain)
    elif paths.model.exists() and paths.history.exists():
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

    The network, compile settings and training data come from ``config.recipe`` (fashionnet/core/recipes.py);
    ``recipe`` replaces that Recipe (the ablation in docs/accuracy.md uses it), and is recorded in config.json.
    ``callbacks`` are added after fashionnet's own (the benchmark times epochs with one).
    Progress goes to ``log`` (default: stdout), one line per epoch; ``verbose=0`` trains silently.
    """
    recipe = _recipe_for(config, recipe)
    topology = distributed.SINGLE
    if config.distribute:  # before any jax computation; a bad job description before the data is read
        topology = distributed.setup(config.batch_size, log=log or console.log)
    x, y = load_training_arrays(config, data)  # data errors before the run folder is created
    chief = topology.is_chief  # process 0 alone writes the run folder and prints progress
    paths = RunPaths(ensure_writable_dir(Path(run_dir)) if chief else Path(run_dir))
    with writer_lock(paths.root, "train") if chief else contextlib.nullcontext():
        return _train_locked(config, paths, x, y, topology, recipe, force, verbose, callbacks, log)


def _train_locked(config, paths, x, y, topology, recipe, force, verbose, callbacks, log) -> TrainResult:
    """train() once this process may write the run folder (or, in a data-parallel job, is not process 0)."""
    chief = topology.is_chief
    _check_run_state(paths, config, force, write=chief)
    if chief:
        write_record(paths, RunRecord(config, recipe.to_dict(), environment(topology)))
        if force:  # at once, so that an interrupted retrain is resumed, never mistaken for the run it replaces
            write_json(paths.history_partial, {})
    distributed.barrier(topology, "fashionnet: the run folder is ready")  # --force cleared it before anyone reads

    keras.utils.set_random_seed(config.seed)
    fit_data = recipes.fit_arguments(
        recipe, x, y, config.batch_size, config.validation_split, config.seed, topology if config.distribute else None
    )
    steps = (
        len(fit_data["x"])
        if isinstance(fit_data["x"], keras.utils.PyDataset)
        else (recipes.steps_per_epoch(len(x), config.batch_size, config.validation_split))
    )
    history_log = HistoryLog(paths.history_partial, write=chief)
    backup = AtomicBackupAndRestore(paths.backup, write=chief)
    interrupt = InterruptBetweenBatches()
    resumed_from = len(history_log.load().get("loss", []))
    progress = [] if verbose == 0 or not chief else [ProgressLog(config.epochs, log)]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() and chief else 0  # Keras's live bar on a terminal; else ProgressLog's lines
    with compute_settings(config.precision):
        model = recipes.build(recipe)
        if config.precision != "float32":
            model = _float32_output(model)
        model = recipes.compile_for(model, recipe, steps, config.epochs)
        try:
            with interrupt.installed():
                model.fit(
                    **fit_data,
                    epochs=config.epochs,
                    # history first: a kill between the two redoes the epoch
                    callbacks=[history_log, backup, interrupt, *progress, *(callbacks or [])],
                    verbose=verbose,
                )
        except StorageError as exc:
            exc.hint = "free space (or fix the disk) and rerun the same command to resume from the last backup"
            raise
        except Exception as exc:
            if topology.process_count > 1 and distributed.is_peer_failure(exc):
                done = len(history_log.load().get("loss", []))
                raise distributed.peer_failure(exc, topology, done, config.epochs) from exc
            raise
        except KeyboardInterrupt:
            done = len(history_log.load().get("loss", []))
            by = "stopped by SIGTERM" if interrupt.signum == signal.SIGTERM else "interrupted"
            raise TrainingInterrupted(
                f"{by} after {done} of {config.epochs} completed epochs; "
                f"rerun the same command to resume from epoch {done + 1}",
                interrupt.signum,
            ) from None

    if topology.distributed:
        weights = model.get_weights()  # in a multi-process job, a collective every process joins
        (log or console.log)(
            f"distribute: process {topology.process_index} of {topology.process_count}: "
            f"weights sha256 {distributed.weights_fingerprint(weights)}"
        )
        distributed.end(topology)  # the job ends here: process 0 saves, evaluates and exports alone
        model = _float32_copy(weights, recipe)
    elif config.precision != "float32":
        model = _float32_copy(model.get_weights(), recipe)
    if recipe.test_time_flip:
        model = flip_averaged(model)  # after fit: training and its validation curves use the plain network
    if chief:
        try:
            with atomic_path(paths.model) as tmp:
                model.save(tmp)
            history = history_log.load()
            write_json(paths.history, history)
        except StorageError as exc:
            exc.hint = "the trained epochs are in the backup: free space and rerun the same command to save the model"
            raise
    history = history_log.load()
    if chief:
        paths.history_partial.unlink(missing_ok=True)
        shutil.rmtree(paths.backup, ignore_errors=True)
    return TrainResult(model, history, paths, resumed_from, topology)
