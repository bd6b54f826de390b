"""A run's stages in order: train -> evaluate -> plots -> export (with its parity gate) -> report.

The command line only calls this module: ``train``, ``evaluate`` (metrics, plots, report), ``export`` (artifacts,
parity gate, report) and ``reproduce`` (all of them) give a Python user the same files as the CLI. Each stage is
skipped when its outputs exist and are newer than its inputs, so rerunning after a failure in evaluation,
plotting or export does only the stages still missing (training itself resumes from its last completed epoch),
and a failure after training says which command finishes the run. Each stage that does its work records its wall
time in timings.json (report.md's "Time"); ``reproduce`` ends with the time of every stage it ran.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from fashionnet.config import TrainConfig
from fashionnet.core import console, machine
from fashionnet.errors import FashionNetError, MissingDependencyError, RunError, StorageError, describe_os_error
from fashionnet.runs import (
    RunPaths,
    read_json,
    read_record,
    read_timings,
    training_in_progress,
    write_json,
    writer_lock,
)
from fashionnet.training import distributed


def _newer_than(outputs: Iterable[Path], inputs: Iterable[Path]) -> bool:
    """Every output exists and none is older than any existing input (make's rule)."""
    outputs, inputs = list(outputs), [p for p in inputs if p.exists()]
    if not all(p.exists() for p in outputs):
        return False
    return not inputs or min(p.stat().st_mtime_ns for p in outputs) >= max(p.stat().st_mtime_ns for p in inputs)


STAGES = ("train", "evaluate", "plots", "export", "report")


def _record_time(paths: RunPaths, stage: str, watch: console.Stopwatch, **facts) -> None:
    """timings.json[stage]: this stage's wall time, when it finished and on which CPU (the stage just did its work).
    A courtesy: skipped when another writer holds the folder (training releases its lock before this)."""
    entry = {"seconds": round(watch.seconds, 2), "finished": time.time(), "cpu": machine.cpu_summary(), **facts}
    with contextlib.suppress(RunError), writer_lock(paths.root, f"{stage} (its time)"):
        timings = {**read_timings(paths), stage: entry}
        write_json(paths.timings, {s: timings[s] for s in STAGES if s in timings})


def is_trained(paths: RunPaths) -> bool:
    """model.keras and history.json, and no training in progress (an interrupted --force retrain resumes)."""
    return paths.model.is_file() and paths.history.is_file() and not training_in_progress(paths)


# ---------------------------------------------------------------------------------------------------------------
# The stages; each returns True when it did work, False when it found its outputs up to date
# ---------------------------------------------------------------------------------------------------------------


def train_stage(
    config: TrainConfig, paths: RunPaths, data_dir=None, *, force=False, skip_done=True, log=console.log
) -> bool:
    """Train (or resume); a finished run with the same options is skipped, or refused when not ``skip_done``.

    Returns whether this process goes on to the later stages: False for the processes of a data-parallel job
    other than process 0, which trained but write nothing."""
    if skip_done and is_trained(paths) and not force:
        diffs = read_record(paths).differences(config)
        if diffs:
            raise RunError(
                f"run {paths.root} was trained with other options ({'; '.join(diffs)}); "
                "pass --force to train it again, or choose another --out"
            )
        if config.distribute and not distributed.launched_as_chief():
            return False
        log(f"train: done before ({paths.model.name}, {len(read_json(paths.history).get('loss', []))} epochs)")
        return True
    from fashionnet.training.trainer import train

    watch = console.Stopwatch()
    result = train(config, paths.root, data_dir, force=force, log=log)
    if not result.topology.is_chief:
        log(f"train: process {result.topology.process_index} done in {watch}; process 0 writes the run folder")
        return False
    resumed = f", resumed from epoch {result.resumed_from_epoch + 1}" if result.resumed_from_epoch else ""
    epochs = len(result.history["loss"])
    log(f"train: {epochs} epochs in {watch}{resumed}; model saved to {result.paths.model}")
    _record_time(paths, "train", watch, epochs=epochs, resumed_from_epoch=result.resumed_from_epoch)
    return True


def evaluate_stage(paths: RunPaths, data_dir=None, *, force=False, log=console.log) -> bool:
    outputs = (paths.metrics, paths.confusion_csv, paths.classification_report)
    if not force and _newer_than(outputs, [paths.model]):
        log(f"evaluate: done before ({paths.metrics.name})")
        return False
    from fashionnet.evaluation.evaluate import crosstab_text, evaluate_run

    watch = console.Stopwatch()
    log("evaluate: the 10,000 test images")
    result = evaluate_run(paths.root, data_dir)
    log(crosstab_text(result.confusion))
    log(result.report_text)
    log(f"evaluate: test loss {result.test_loss:.4f}  test accuracy {result.test_accuracy:.4f} ({watch})")
    _record_time(paths, "evaluate", watch)
    return True


def plots_stage(paths: RunPaths, *, force=False, log=console.log) -> bool:
    has_history = paths.history.exists()
    outputs = [paths.confusion_png, *((paths.accuracy_png, paths.loss_png) if has_history else ())]
    if not force and _newer_than(outputs, [paths.metrics, paths.history]):
        log("plots: done before")
        return False
    from fashionnet.evaluation import plots
    from fashionnet.evaluation.evaluate import read_confusion_csv

    watch = console.Stopwatch()
    if has_history:
        history = read_json(paths.history)
        plots.plot_train_history(history, "accuracy", paths.accuracy_png)
        plots.plot_train_history(history, "loss", paths.loss_png)
    plots.plot_confusion_matrix(read_confusion_csv(paths.confusion_csv), paths.confusion_png)
    log(f"plots: {', '.join(p.name for p in outputs)} ({watch})")
    _record_time(paths, "plots", watch)
    return True


def _export_is_current(paths: RunPaths, formats, quantize) -> bool:
    from fashionnet.convert.formats import artifact_names

    if not _newer_than([paths.parity], [paths.model]):
        return False
    report = read_json(paths.parity)
    return bool(report.get("passed")) and set(artifact_names(formats, quantize)) <= set(report.get("artifacts", {}))


def export_stage(paths: RunPaths, formats, quantize, data_dir=None, *, force=False, log=console.log) -> bool:
    if not force and _export_is_current(paths, formats, quantize):
        log(f"export: done before ({paths.parity})")
        return False
    from fashionnet.parity.report import format_report
    from fashionnet.publish.stage import export_run

    watch = console.Stopwatch()
    report = export_run(paths.root, formats=formats, quantize=quantize, data_dir=data_dir, log=log)
    log(format_report(report))
    log(f"export: {len(report['artifacts'])} artifacts verified and published in {paths.export_dir} ({watch})")
    _record_time(paths, "export", watch, artifacts=len(report["artifacts"]))
    return True


def report_stage(paths: RunPaths, *, log=console.log) -> Path | None:
    """report.md from whatever the run holds; needs at least a training and an evaluation."""
    if not (paths.config.exists() and paths.history.exists() and paths.metrics.exists()):
        return None
    from fashionnet.evaluation.report import write_report

    watch = console.Stopwatch()
    path = write_report(paths.root)
    log(f"report: {path}")
    _record_time(paths, "report", watch)
    return path


# ---------------------------------------------------------------------------------------------------------------
# What the commands do
# ---------------------------------------------------------------------------------------------------------------


def train(config: TrainConfig, run_dir, data_dir=None, *, force: bool = False, log=console.log) -> RunPaths:
    """`fashionnet train`: train or resume; a finished run is refused unless ``force``."""
    paths = RunPaths(Path(run_dir))
    train_stage(config, paths, data_dir, force=force, skip_done=False, log=log)
    return paths


def evaluate(run_dir, data_dir=None, *, log=console.log) -> RunPaths:
    """`fashionnet evaluate`: test metrics, confusion matrix and report, the plots, and report.md (always redone)."""
    paths = RunPaths(Path(run_dir))
    with _writing(paths, "evaluate"):
        evaluate_stage(paths, data_dir, force=True, log=log)
        plots_stage(paths, force=True, log=log)
        report_stage(paths, log=log)
    return paths


def export(run_dir, formats=("onnx", "tflite"), quantize=None, data_dir=None, *, log=console.log) -> RunPaths:
    """`fashionnet export`: convert, verify and publish RUN/export/ (always redone), then refresh report.md."""
    paths = RunPaths(Path(run_dir))
    with _writing(paths, "export"):
        export_stage(paths, formats, quantize, data_dir, force=True, log=log)
        report_stage(paths, log=log)
    return paths


def reproduce(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    data_dir=None,
    *,
    formats: tuple[str, ...] = ("onnx", "tflite"),
    quantize: str | None = None,
    export: bool = True,
    force: bool = False,
    finish_command: str | None = None,
    log: Callable[[str], None] = console.log,
) -> RunPaths:
    """Every stage of the assignment into ``run_dir``; stages already done are skipped (``force`` redoes all).

    ``finish_command`` is what the user should rerun after a failed stage (the CLI passes its own command line).
    Without the export extra installed, the export stage is skipped with a message, not failed.
    """
    paths = RunPaths(Path(run_dir))
    started, watch = time.time(), console.Stopwatch()
    if not train_stage(config, paths, data_dir, force=force, log=log):
        return paths  # a data-parallel process other than process 0: process 0 evaluates and exports alone
    with _writing(paths, "reproduce"):
        _finish(paths, data_dir, formats, quantize, export, force, finish_command, log)
    log(time_summary(paths, watch, since=started))
    return paths


def time_summary(paths: RunPaths, watch: console.Stopwatch, since: float) -> str:
    """reproduce's last line: its wall time, the time of each stage it ran (not those done before) and the CPU."""
    timings = {s: t for s, t in read_timings(paths).items() if t.get("finished", 0) >= since}
    stages = ", ".join(f"{s} {console.duration(t['seconds'])}" for s, t in timings.items()) or "every stage done before"
    return f"reproduce: {watch} ({stages}) on {machine.cpu_summary()}"


def _writing(paths: RunPaths, command: str):
    """The run folder's writer lock (runs.writer_lock); none for a folder that does not exist (the stage says so)."""
    return writer_lock(paths.root, command) if paths.root.is_dir() else contextlib.nullcontext()


def _finish(paths, data_dir, formats, quantize, export, force, finish_command, log) -> None:
    """reproduce's stages after training."""
    try:
        evaluate_stage(paths, data_dir, force=force, log=log)
        plots_stage(paths, force=force, log=log)
        if export:
            try:
                export_stage(paths, formats, quantize, data_dir, force=force, log=log)
            except MissingDependencyError as exc:
                log(f"export: skipped: {exc}")
        report_stage(paths, log=log)
    except (FashionNetError, OSError) as exc:
        error = exc if isinstance(exc, FashionNetError) else StorageError(describe_os_error(exc))
        again = finish_command or f"reproduce(config, {str(paths.root)!r}) again"
        error.hint = f"the run is trained; fix the above and run `{again}` to finish it (done stages are skipped)"
        if error is exc:
            raise
        raise error from exc
