"""Shared fixtures: the real Fashion-MNIST from $FASHIONNET_DATA (or ../shared beside the checkout), one trained run
and one verified export per test session, and the `fashionnet` command in this process or in a child.

Built once per session and backend, never twice: ``trained_run`` (the CLI's own `reproduce`, 2 epochs on 3,000
images), ``keras_probs`` (its Keras probabilities on the test set) and ``exported`` (the CLI's own `export
--quantize int8` of a copy of it). They are read-only: a test that writes copies them first (``run_copy``).
A test that uses one of them is marked ``slow`` automatically, so ``pytest -m "not slow"`` is the fast lane.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A test that asks for one of these needs a training or an export: slow (the session pays for it once).
SESSION_BUILT = {"trained_run", "keras_probs", "exported", "export_command", "mcu_export", "served_export", "jobs"}
TRAINED_RUN = {"epochs": 2, "limit": 3000, "batch_size": 100}  # the session's training: TrainConfig(**TRAINED_RUN)
TRAINED_RUN_ARGS = tuple(x for key, value in TRAINED_RUN.items() for x in (f"--{key.replace('_', '-')}", str(value)))


def pytest_collection_modifyitems(items):
    for item in items:
        if SESSION_BUILT & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _data_dir_at_start() -> Path:
    if os.environ.get("FASHIONNET_DATA"):
        return Path(os.path.abspath(os.environ["FASHIONNET_DATA"]))
    return REPO.parent / "shared" / "data" / "fashion-mnist"


DATA_DIR = _data_dir_at_start()  # resolved once, in the folder pytest started in (a test may chdir)


def real_data_dir() -> Path:
    """Absolute, so tests that start processes in other folders find it too (the README passes a relative path)."""
    return DATA_DIR


@dataclasses.dataclass
class CliResult:
    """What `fashionnet ARGS` returned and printed (the shape of subprocess.CompletedProcess)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def cli(*args, env: dict | None = None) -> CliResult:
    """`fashionnet ARGS` through ``fashionnet.cli.main`` in this process, its stdout and stderr captured.

    The same code as the command, without a Python and Keras start-up per call. What only a process shows stays
    with ``run_cli``: the native libraries' lines on file descriptor 2, signals, kills, locks held by another
    process, ``os._exit`` paths, another KERAS_BACKEND, and an uncaught exception's traceback (--debug).
    """
    from fashionnet import cli as command

    extra = {"FASHIONNET_DATA": str(real_data_dir()), **(env or {})}
    assert "KERAS_BACKEND" not in extra, "another backend needs a process: run_cli"
    argv = [str(a) for a in args]
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(extra)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = command.main(argv)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved)  # main() sets the quiet-native variables and resolves FASHIONNET_DATA
    return CliResult(tuple(argv), code, out.getvalue(), err.getvalue())


def run_cli(*args, env: dict | None = None, timeout: int = 900, cwd=None) -> subprocess.CompletedProcess:
    """`python -m fashionnet ARGS` in a child process, as a user would call it."""
    full_env = {**os.environ, "FASHIONNET_DATA": str(real_data_dir()), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fashionnet", *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )  # fmt: skip


def copy_run(source: Path, destination: Path) -> Path:
    """A writable copy of a run folder (without its export and the web kit's node_modules)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("export", "node_modules", ".fashionnet.lock"))
    return destination


@pytest.fixture(scope="session")
def data_dir() -> Path:
    folder = real_data_dir()
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real Fashion-MNIST not found at {folder}: set FASHIONNET_DATA")  # never a silent skip
    return folder


@pytest.fixture(scope="session")
def dataset(data_dir):
    from fashionnet.core.data import load_data

    return load_data(data_dir)


@pytest.fixture(scope="session")
def reproduce_command(tmp_path_factory, data_dir) -> subprocess.CompletedProcess:
    """The session's one training: `fashionnet reproduce --no-export`, 2 epochs on 3,000 images, in a child process
    as a user runs it (test_cli reads its output); every test that needs a trained model reads this run."""
    run = tmp_path_factory.mktemp("runs") / "trained"
    proc = run_cli("reproduce", "--out", run, *TRAINED_RUN_ARGS, "--no-export")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def trained_run(reproduce_command):
    """RunPaths of the session's trained and evaluated run (read-only: copy it with ``run_copy`` to write)."""
    from fashionnet.runs import RunPaths

    return RunPaths(Path(reproduce_command.args[reproduce_command.args.index("--out") + 1]))


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A writable copy of the session's trained run."""
    return copy_run(trained_run.root, tmp_path / "run")


@pytest.fixture(scope="session")
def keras_probs(trained_run, dataset):
    """Keras's probabilities of the trained model on the 10,000 test images, in the current backend."""
    import keras

    from fashionnet.core.data import preprocess_images

    model = keras.saving.load_model(trained_run.model, compile=False)
    return model.predict(preprocess_images(dataset[1][0]), batch_size=500, verbose=0)


@pytest.fixture(scope="session")
def export_command(trained_run, tmp_path_factory) -> subprocess.CompletedProcess:
    """The session's one export: `fashionnet export RUN --quantize int8` (onnx + tflite, fp32 + int8, verified on all
    10,000 test images) of a copy of the trained run, in a child process as a user runs it."""
    run = copy_run(trained_run.root, tmp_path_factory.mktemp("export-runs") / "exported")
    proc = run_cli("export", run, "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def exported(export_command) -> tuple[Path, dict]:
    """(RUN/export, its parity report) of the session's export (read-only)."""
    folder = Path(export_command.args[export_command.args.index("export") + 1]) / "export"
    return folder, json.loads((folder / "parity.json").read_text())
