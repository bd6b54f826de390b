"""The CLI as a user meets it: one command reproduces the assignment; bad input gets one line and an exit code."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, TRAINED_RUN_ARGS, cli, real_data_dir, run_cli

RUN_FILES = (
    "config.json", "model.keras", "history.json", "metrics.json", "confusion_matrix.csv",
    "classification_report.txt", "accuracy.png", "loss.png", "confusion_matrix.png", "report.md", "timings.json",
)  # fmt: skip


@pytest.mark.per_backend  # the one end-to-end run of each backend: the session's trained run
def test_reproduce_end_to_end_on_limited_data(reproduce_command, trained_run):
    proc, run = reproduce_command, trained_run.root
    for name in RUN_FILES:
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    for png in ("accuracy.png", "loss.png", "confusion_matrix.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    report = (run / "report.md").read_text()
    assert f"{metrics['test_accuracy']:.4f}" in report and "![confusion matrix](confusion_matrix.png)" in report
    assert "test accuracy" in proc.stdout and "Ankle boot" in proc.stdout
    assert not list(run.glob(".*tmp*")), "temporary files left behind"
    # one line per stage, and per epoch with its time; nothing on stderr (native chatter is hidden)
    lines = proc.stdout.splitlines()
    for stage in ("train:", "evaluate:", "plots:", "report:"):
        assert any(line.startswith(stage) for line in lines), stage
    # each stage's time: in timings.json, in report.md, and reproduce's last line
    timings = json.loads((run / "timings.json").read_text())
    assert list(timings) == ["train", "evaluate", "plots", "report"]
    assert (
        all(t["seconds"] >= 0 and "logical CPUs" in t["cpu"] for t in timings.values())
        and timings["train"]["seconds"] > 0
    )
    assert timings["train"]["epochs"] == 2 and timings["train"]["resumed_from_epoch"] == 0
    assert f"| train | {timings['train']['seconds']:.1f} s |" in report
    assert lines[-1].startswith("reproduce: ") and "(train " in lines[-1] and ", report " in lines[-1]
    assert any(line.startswith("epoch 1/2 ") and line.endswith(" left)") for line in lines), lines[:5]
    assert any(line.startswith("epoch 2/2 ") and line.endswith(" s)") for line in lines), lines[:5]
    assert proc.stderr == "", proc.stderr[-2000:]
    # files respect the umask, like any other program's (the temporary file's 0600 must not survive the rename)
    mask = os.umask(0)
    os.umask(mask)
    assert {stat.S_IMODE((run / name).stat().st_mode) for name in RUN_FILES} == {0o666 & ~mask}

    again = cli("train", "--out", run, *TRAINED_RUN_ARGS)
    assert again.returncode == 7 and "already trained" in again.stderr and "Traceback" not in again.stderr


KERNELS = """
import json, os
from fashionnet.core import console, machine
console.set_up(precision=os.environ.get("PRECISION", "float32"))
print(json.dumps({**machine.kernel_settings(), "cpu": machine.cpu_summary()}))
"""


@pytest.mark.skipif(__import__("platform").machine() != "x86_64", reason="the oneDNN default is x86-64's")
def test_the_fastest_kernels_are_chosen_unless_the_user_chose():
    """TF_ENABLE_ONEDNN_OPTS=1 before any backend loads; a value in the environment wins; a child process that
    inherits fashionnet's choice still records it as fashionnet's; an ISA cap the user set is recorded and named
    with the CPU."""
    from fashionnet.core.machine import KERNEL_ENV

    clean = {k: v for k, v in os.environ.items() if k not in (*KERNEL_ENV, "FASHIONNET_KERNEL_DEFAULTS")}

    def recorded(env):
        done = subprocess.run([sys.executable, "-c", KERNELS], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    def settings(env):
        return recorded(env)["TF_ENABLE_ONEDNN_OPTS"]

    assert settings(clean) == {"value": "1", "set_by": "fashionnet"}
    assert settings({**clean, "TF_ENABLE_ONEDNN_OPTS": "0"}) == {"value": "0", "set_by": "user"}
    inherited = {**clean, "TF_ENABLE_ONEDNN_OPTS": "1", "FASHIONNET_KERNEL_DEFAULTS": "TF_ENABLE_ONEDNN_OPTS"}
    assert settings(inherited) == {"value": "1", "set_by": "fashionnet"}
    uncapped = recorded(clean)
    assert set(uncapped) == {"TF_ENABLE_ONEDNN_OPTS", "cpu"} and "capped" not in uncapped["cpu"]
    capped = recorded({**clean, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert capped["ONEDNN_MAX_CPU_ISA"] == {"value": "AVX2", "set_by": "user"}
    assert capped["cpu"].endswith("(kernels capped: ONEDNN_MAX_CPU_ISA=AVX2)")
    # oneDNN has no bf16 convolution for AVX2 kernels: TensorFlow's own compute mixed_bfloat16 there
    bf16 = recorded({**clean, "ONEDNN_MAX_CPU_ISA": "AVX2", "PRECISION": "mixed_bfloat16"})
    assert bf16["TF_ENABLE_ONEDNN_OPTS"] == {"value": "0", "set_by": "fashionnet"}


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="oneDNN is tensorflow's")
def test_bf16_with_onednn_forced_on_a_cpu_without_bf16_is_one_line(tmp_path):
    """TF_ENABLE_ONEDNN_OPTS=1 by the user + mixed_bfloat16 + AVX2 kernels: oneDNN would fail mid-fit with a
    traceback; instead exit 2 with one line, before the run folder exists."""
    run = tmp_path / "run"
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    proc = cli("train", "--out", run, "--epochs", "1", "--limit", "600", "--precision", "mixed_bfloat16", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "--precision mixed_bfloat16 on tensorflow with TF_ENABLE_ONEDNN_OPTS=1 needs bf16" in line
    assert "capped at AVX2" in line and not run.exists()


def test_help_lists_every_command():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("summary", "train", "evaluate", "reproduce", "export", "predict", "bench"):
        assert command in proc.stdout


def test_version_and_every_subcommand_described():
    from fashionnet import __version__

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fashionnet {__version__}"
    for command in ("summary", "train", "evaluate", "reproduce", "export", "predict", "bench"):
        proc = cli(command, "--help")
        description = proc.stdout.split("\n\n")[1]  # argparse: usage, blank line, description
        assert proc.returncode == 0 and not description.lstrip().startswith(("positional", "options")), command
    for command in ("evaluate", "export"):
        assert "run folder (made by" in cli(command, "--help").stdout, command


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
        (["--batch-size", "-1"], "--batch-size must be an integer >= 1, got -1"),
        (["--validation-split", "1.5"], "--validation-split must be in [0, 1), got 1.5"),
        (["--limit", "100000"], "--limit 100000 is larger than the 60000 training images"),
    ],
)
def test_options_out_of_range(tmp_path, options, message):
    proc = cli("train", "--out", str(tmp_path / "run"), *options)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 or "fashionnet: error:" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_a_bad_option_is_answered_before_keras_is_imported(tmp_path, command):
    """A typo in a flag costs no backend start-up: the options are checked first."""
    code = ("import sys\nfrom fashionnet.cli import main\ncode = main(sys.argv[1:])\n"
            "print('exit', code, 'keras imported:', 'keras' in sys.modules)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, command, "--out", str(tmp_path / "run"), "--epochs", "-1"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "--epochs must be an integer >= 1, got -1" in proc.stderr
    assert proc.stdout.strip() == "exit 2 keras imported: False", proc.stdout + proc.stderr
    assert not (tmp_path / "run").exists()


def test_missing_data_folder(tmp_path):
    proc = cli("train", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "nodata"))
    assert proc.returncode == 3
    assert f"Fashion-MNIST folder {tmp_path / 'nodata'} (from argument) does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists(), "a failed command left an empty run folder behind"


@pytest.mark.slow
def test_relative_paths_mean_the_same_in_every_folder(tmp_path, monkeypatch):
    """FASHIONNET_DATA, --data-dir and --out relative to where the command runs, as the README types them."""
    work = tmp_path / "work"
    work.mkdir()
    relative_data = os.path.relpath(real_data_dir(), work)
    monkeypatch.chdir(work)
    done = cli("train", "--out", "runs/r", "--epochs", "1", "--limit", "300", env={"FASHIONNET_DATA": relative_data})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "runs" / "r" / "model.keras").is_file()
    assert f"model saved to {work / 'runs' / 'r' / 'model.keras'}" in done.stdout


def test_evaluate_without_a_model(tmp_path):
    proc = cli("evaluate", str(tmp_path))
    assert proc.returncode == 4 and f"model file {tmp_path / 'model.keras'} not found" in proc.stderr


def test_run_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli("train", "--out", str(blocker / "run"), "--epochs", "1", "--limit", "600")
    assert proc.returncode == 7 and "cannot create run folder" in proc.stderr
    proc = cli("train", "--out", str(blocker), "--epochs", "1", "--limit", "600")
    assert proc.returncode == 7 and "is not a folder" in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "evaluate", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ModelError" in proc.stderr


def _train_process(run, epochs: int, *options: str):
    cmd = [sys.executable, "-m", "fashionnet", "train", "--out", str(run), "--epochs", str(epochs),
           "--limit", "4000", "--batch-size", "50", *options]  # fmt: skip
    env = {**__import__("os").environ, "FASHIONNET_DATA": str(real_data_dir())}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(run, n: int, proc, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    partial = run / "history.partial.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()[-2000:]}")
        try:
            history = json.loads(partial.read_text())
            if len(history.get("loss", [])) >= n:
                return history
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {n} epochs within {timeout}s")


@pytest.mark.slow
@pytest.mark.per_backend  # the trainer's backup and resume
def test_killed_training_resumes_with_one_continuous_history(tmp_path):
    run = tmp_path / "run"
    proc = _train_process(run, epochs=4)
    before = _wait_for_epochs(run, 2, proc)
    time.sleep(1.0)  # well inside epoch 3
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait()
    assert not (run / "model.keras").exists()
    # the lock file stays, with the dead process's name in it; the kernel dropped the lock: the rerun is not blocked
    assert f"(pid {proc.pid} on " in (run / ".fashionnet.lock").read_text()

    resumed = _train_process(run, epochs=4)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from epoch" in out
    history = json.loads((run / "history.json").read_text())
    assert all(len(v) == 4 for v in history.values())
    done = len(before["loss"])
    assert history["loss"][:done] == before["loss"]  # the epochs before the kill are kept, not retrained
    assert history["loss"][-1] < history["loss"][0]
    assert not (run / "backup").exists() and not (run / "history.partial.json").exists()


@pytest.mark.slow
def test_two_trainings_of_one_folder_at_once_one_trains_the_other_is_refused(tmp_path):
    run = tmp_path / "run"
    first = _train_process(run, epochs=2)
    time.sleep(1.0)
    second = _train_process(run, epochs=2)
    results = [(proc, *proc.communicate(timeout=900)) for proc in (first, second)]
    codes = sorted(proc.returncode for proc, _, _ in results)
    assert codes == [0, 7], [(p.returncode, err[-2000:]) for p, _, err in results]
    refused = next(err for proc, _, err in results if proc.returncode == 7)
    winner = next(proc for proc, _, _ in results if proc.returncode == 0)
    assert f"fashionnet: error: run folder {run} is in use by fashionnet train (pid {winner.pid} on " in refused
    assert "Traceback" not in refused
    history = json.loads((run / "history.json").read_text())
    assert all(len(values) == 2 for values in history.values())  # the winner's 2 epochs, whole
    assert (run / ".fashionnet.lock").read_text() == ""  # released: the next writer is welcome
    again = cli("evaluate", str(run))
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("epochs_done", [0, 1])
def test_an_interrupted_forced_retrain_is_resumed_never_mistaken_for_the_old_run(run_copy, epochs_done):
    run = run_copy  # a finished run (the session's, copied), retrained with other options
    old_model = (run / "model.keras").read_bytes()

    forced = _train_process(run, 3, "--force")
    partial = run / "history.partial.json"
    deadline = time.monotonic() + 600
    while not (partial.exists() and len(json.loads(partial.read_text() or "{}").get("loss", [])) >= epochs_done):
        assert forced.poll() is None and time.monotonic() < deadline, "the forced training did not start"
        time.sleep(0.05)
    forced.kill()  # SIGKILL, before its first epoch ends or after it
    forced.wait()
    assert (run / "model.keras").read_bytes() == old_model  # the old model is only replaced by a complete one
    assert json.loads((run / "config.json").read_text())["config"]["epochs"] == 3

    again = _train_process(run, 3)  # no --force: the forced retrain goes on, it is not "already trained"
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert "already trained" not in err
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 3 and (run / "model.keras").read_bytes() != old_model
    assert not partial.exists() and not (run / "backup").exists()


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_without_a_traceback(tmp_path):
    run = tmp_path / "run"
    proc = _train_process(run, epochs=5)
    _wait_for_epochs(run, 1, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert "rerun the same command to resume" in err and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_stops_at_a_batch_boundary_keeps_the_epochs_and_exits_143(tmp_path):
    """What a cluster scheduler sends before it kills a pre-empted job: handled like Ctrl-C, exit 128 + 15."""
    run = tmp_path / "run"
    proc = _train_process(run, epochs=5)
    before = _wait_for_epochs(run, 1, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    grace = time.monotonic() - sent
    assert proc.returncode == 143, err[-3000:]
    stopped = re.search(r"stopped by SIGTERM after (\d) of 5 completed epochs; rerun the same command to resume "
                        r"from epoch (\d)", err)  # fmt: skip
    assert stopped and "Traceback" not in err, err[-3000:]
    done = int(stopped.group(1))
    assert done >= len(before["loss"]) and int(stopped.group(2)) == done + 1
    assert len(json.loads((run / "history.partial.json").read_text())["loss"]) == done  # the completed epochs kept
    assert grace < 60, f"{grace:.1f} s from SIGTERM to exit"  # a batch of 100 images, not an epoch (docs)
    resumed = _train_process(run, epochs=5)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0 and f"resumed from epoch {done + 1}" in out, err[-3000:]


# --- predict and export from the command line --------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A 57-byte PNG whose header claims width x height grey pixels (a decompression bomb's first bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.fixture
def npy_inputs(tmp_path, dataset):
    """Good and bad .npy inputs for `fashionnet predict`."""
    import numpy as np

    _, (x_test, _) = dataset
    files = {
        "good": x_test[:5],
        "wrong_shape": np.zeros((3, 27, 28), np.uint8),
        "nan": np.full((2, 28, 28), np.nan, np.float32),
        "out_of_range": np.full((2, 28, 28), 3.0, np.float32),
        "empty": np.zeros((0, 28, 28), np.uint8),
    }
    paths = {}
    for name, array in files.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    paths["not_an_image"] = tmp_path / "notes.png"
    paths["not_an_image"].write_text("not a picture")
    paths["huge_image"] = tmp_path / "huge.png"
    paths["huge_image"].write_bytes(png_header_only(30_000, 30_000))
    return paths


@pytest.mark.per_backend  # the .keras model runs on each backend
def test_predict_with_a_keras_model(trained_run, npy_inputs, dataset):
    from fashionnet_edge import CLASS_NAMES

    proc = cli("predict", str(trained_run.model), str(npy_inputs["good"]), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fashionnet: using" not in proc.stderr  # a model file is used as named, without comment
    document = json.loads(proc.stdout)
    assert document["model"] == "model.keras"
    rows = document["predictions"]
    assert [r["input"] for r in rows] == [f"{npy_inputs['good']}[{i}]" for i in range(5)]
    for r in rows:
        assert abs(sum(r["probabilities"]) - 1) < 1e-4 and len(r["top"]) == 1
        assert r["label"] == CLASS_NAMES[r["index"]] and r["probability"] == max(r["probabilities"])
    _, (_, y_test) = dataset
    assert sum(r["index"] == int(y) for r, y in zip(rows, y_test[:5], strict=True)) >= 3


def test_predict_with_a_run_folder_uses_its_model_keras(trained_run, npy_inputs):
    from fashionnet_edge import CLASS_NAMES

    folder = trained_run.root
    proc = cli("predict", str(folder), str(npy_inputs["good"]), "--top", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.splitlines().count(f"fashionnet: using {trained_run.model}") == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 5
    for i, line in enumerate(lines):
        name, ranked = line.split("\t")
        pairs = [item.rsplit(" ", 1) for item in ranked.removeprefix("not sure: ").split(", ")]
        assert name == f"{npy_inputs['good']}[{i}]" and len(pairs) == 3
        assert all(label in CLASS_NAMES and len(value.split(".")[1]) == 4 for label, value in pairs)


def test_predict_with_a_folder_without_model_keras(tmp_path, npy_inputs):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("predict", str(empty), str(npy_inputs["good"]))
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"fashionnet: error: {empty}: no model.keras in this folder: expected a run folder")


def test_predict_help_describes_model_and_inputs():
    from fashionnet_edge import CLASS_NAMES, INPUTS_HELP

    proc = cli("predict", "--help")
    assert proc.returncode == 0, proc.stderr
    usage = " ".join(proc.stdout.split())
    for text in (".keras, .onnx or .tflite file, or a run folder (uses its model.keras)", INPUTS_HELP, "--top K"):
        assert " ".join(text.split()) in usage
    proc = cli("predict", "model.onnx", "x.npy", "--top", "0")
    assert proc.returncode == 2
    assert f"argument --top: expected an integer from 1 to {len(CLASS_NAMES)}" in proc.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("wrong_shape", "27, 28"),
        ("nan", "NaN"),
        ("out_of_range", "[0, 1]"),
        ("empty", "expected at least one"),
        ("not_an_image", "notes.png"),
        ("huge_image", "huge.png: image too large: 900,000,000 pixels, at most 40,000,000 allowed"),
    ],
)
def test_predict_bad_inputs_exit_5_naming_the_problem(trained_run, npy_inputs, name, message):
    proc = cli("predict", str(trained_run.model), str(npy_inputs[name]))
    assert proc.returncode == 5, (proc.returncode, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fashionnet: error:") and message in last and "Traceback" not in proc.stderr


def test_predict_with_a_missing_or_truncated_model(tmp_path, trained_run, npy_inputs):
    proc = cli("predict", str(tmp_path / "none.keras"), str(npy_inputs["good"]))
    assert proc.returncode == 4 and "none.keras" in proc.stderr
    truncated = tmp_path / "cut.keras"
    truncated.write_bytes(trained_run.model.read_bytes()[:3000])
    proc = cli("predict", str(truncated), str(npy_inputs["good"]))
    assert proc.returncode == 4 and "cut.keras" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.export
def test_export_of_a_run_without_a_model(tmp_path):
    proc = cli("export", str(tmp_path))
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "model.keras" in proc.stderr and "Traceback" not in proc.stderr
