"""Fit a recipe's network into a run folder with Keras callbacks that make the run resumable and its history
continuous."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from fashionnet.config import TrainConfig
from fashionnet.core import console, machine, recipes
from fashionnet.core import data as fdata
from fashionnet.core.networks import flip_averaged
from fashionnet.errors import FashionNetError, RunError, StorageError
from fashionnet.runs import (
    RunPaths,
    RunRecord,
    atomic_path,
    ensure_writable_dir,
    read_record,
    training_in_progress,
    write_json,
    write_record,
    writer_lock,
)
from fashionnet.training import distributed, fit
from fashionnet.training.callbacks import AtomicBackupAndRestore, HistoryLog, InterruptBetweenBatches, ProgressLog
from fashionnet.training.environment import environment
from fashionnet.training.precision import compute_settings, float32_copy, float32_output


class TrainingInterrupted(FashionNetError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143, a scheduler pre-empting the job) during fit: the last completed
    epoch is kept and the same command resumes."""

    exit_code = 130

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)  # the shell's convention for a process ended by that signal


@dataclass
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]
    paths: RunPaths
    resumed_from_epoch: int
    topology: distributed.Topology = distributed.SINGLE  # is_chief False: this process wrote nothing


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


@dataclass(frozen=True)
class TrainJob:
    """What train() was asked, once the run folder and the job's processes are known."""

    config: TrainConfig
    paths: RunPaths
    recipe: recipes.Recipe
    topology: distributed.Topology
    force: bool = False
    verbose: int | None = None
    callbacks: tuple = ()  # added after fashionnet's own
    log: Callable[[str], None] | None = None  # None: console.log

    @property
    def chief(self) -> bool:
        return self.topology.is_chief  # process 0 alone writes the run folder and prints progress


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
    machine.check_precision_kernels(keras.backend.backend(), config.precision)  # before the run folder exists
    topology = distributed.SINGLE
    if config.distribute:  # before any jax computation; a bad job description before the data is read
        topology = distributed.setup(config.batch_size, log=log or console.log)
    x, y = load_training_arrays(config, data)  # data errors before the run folder is created
    chief = topology.is_chief
    paths = RunPaths(ensure_writable_dir(Path(run_dir)) if chief else Path(run_dir))
    job = TrainJob(
        config, paths, recipe, topology, force=force, verbose=verbose, callbacks=tuple(callbacks or ()), log=log
    )
    with writer_lock(paths.root, "train") if chief else contextlib.nullcontext():
        return _train_locked(job, x, y)


def _train_locked(job: TrainJob, x, y) -> TrainResult:
    """train() once this process may write the run folder (or, in a data-parallel job, is not process 0)."""
    _prepare_run_folder(job)
    keras.utils.set_random_seed(job.config.seed)
    fit_data, steps = _fit_data(job, x, y)
    history_log = HistoryLog(job.paths.history_partial, write=job.chief)
    resumed_from = len(history_log.load().get("loss", []))
    model = _fit(job, fit_data, steps, history_log)
    model = _saved_network(job, model)
    history = _save(job, model, history_log)
    return TrainResult(model, history, job.paths, resumed_from, job.topology)


def _prepare_run_folder(job: TrainJob) -> None:
    """Check the run folder, record the run, and wait until every process may read it."""
    _check_run_state(job.paths, job.config, job.force, write=job.chief)
    if job.chief:
        write_record(job.paths, RunRecord(job.config, job.recipe.to_dict(), environment(job.topology)))
        if job.force:  # at once, so that an interrupted retrain is resumed, never mistaken for the run it replaces
            write_json(job.paths.history_partial, {})
    distributed.barrier(job.topology, "fashionnet: the run folder is ready")  # --force cleared it before anyone reads


def _fit_data(job: TrainJob, x, y) -> tuple[dict, int]:
    """model.fit's data arguments, and the steps of one epoch."""
    config = job.config
    topology = job.topology if config.distribute else None
    fit_data = fit.fit_arguments(
        job.recipe, x, y, config.batch_size, config.validation_split, seed=config.seed, topology=topology
    )
    if isinstance(fit_data["x"], keras.utils.PyDataset):
        return fit_data, len(fit_data["x"])
    return fit_data, recipes.steps_per_epoch(len(x), config.batch_size, config.validation_split)


def _fit(job: TrainJob, fit_data: dict, steps: int, history_log: HistoryLog) -> keras.Model:
    """Build, compile and fit the recipe's network under the run's compute settings."""
    config = job.config
    backup = AtomicBackupAndRestore(job.paths.backup, write=job.chief)
    interrupt = InterruptBetweenBatches()
    progress = [] if job.verbose == 0 or not job.chief else [ProgressLog(config.epochs, job.log)]
    verbose = job.verbose
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() and job.chief else 0  # Keras's live bar on a terminal; else ProgressLog's
    with compute_settings(config.precision):
        model = fit.build(job.recipe)
        if config.precision != "float32":
            model = float32_output(model)
        model = fit.compile_for(model, job.recipe, steps, config.epochs)
        with _fit_errors(job, history_log, interrupt), interrupt.installed():
            model.fit(
                **fit_data,
                epochs=config.epochs,
                # history first: a kill between the two redoes the epoch
                callbacks=[history_log, backup, interrupt, *progress, *job.callbacks],
                verbose=verbose,
            )
    return model


@contextlib.contextmanager
def _fit_errors(job: TrainJob, history_log: HistoryLog, interrupt: InterruptBetweenBatches):
    """What went wrong during fit, told as what to do: free space, a failed peer process, or how to resume."""
    try:
        yield
    except StorageError as exc:
        exc.hint = "free space (or fix the disk) and rerun the same command to resume from the last backup"
        raise
    except Exception as exc:
        if job.topology.process_count > 1 and distributed.is_peer_failure(exc):
            done = len(history_log.load().get("loss", []))
            raise distributed.peer_failure(exc, job.topology, done, job.config.epochs) from exc
        raise
    except KeyboardInterrupt:
        done = len(history_log.load().get("loss", []))
        by = "stopped by SIGTERM" if interrupt.signum == signal.SIGTERM else "interrupted"
        raise TrainingInterrupted(
            f"{by} after {done} of {job.config.epochs} completed epochs; "
            f"rerun the same command to resume from epoch {done + 1}",
            interrupt.signum,
        ) from None


def _saved_network(job: TrainJob, model: keras.Model) -> keras.Model:
    """The network to save: float32, and averaged with the mirror image when the recipe says so."""
    topology = job.topology
    if topology.distributed:
        weights = model.get_weights()  # in a multi-process job, a collective every process joins
        (job.log or console.log)(
            f"distribute: process {topology.process_index} of {topology.process_count}: "
            f"weights sha256 {distributed.weights_fingerprint(weights)}"
        )
        distributed.end(topology)  # the job ends here: process 0 saves, evaluates and exports alone
        model = float32_copy(weights, job.recipe)
    elif job.config.precision != "float32":
        model = float32_copy(model.get_weights(), job.recipe)
    if job.recipe.test_time_flip:
        model = flip_averaged(model)  # after fit: training and its validation curves use the plain network
    return model


def _save(job: TrainJob, model: keras.Model, history_log: HistoryLog) -> dict[str, list[float]]:
    """Save the model and the history (process 0), then drop the backup; the history of the run."""
    paths = job.paths
    if job.chief:
        try:
            with atomic_path(paths.model) as tmp:
                model.save(tmp)
            history = history_log.load()
            write_json(paths.history, history)
        except StorageError as exc:
            exc.hint = "the trained epochs are in the backup: free space and rerun the same command to save the model"
            raise
    history = history_log.load()
    if job.chief:
        paths.history_partial.unlink(missing_ok=True)
        shutil.rmtree(paths.backup, ignore_errors=True)
    return history
