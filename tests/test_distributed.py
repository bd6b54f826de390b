"""Data-parallel training (`--distribute`, keras.distribution on jax) and the local launcher.

The jobs are real: 2 processes x 1 CPU device on 127.0.0.1 (gloo collectives), against 1 process with 2 virtual CPU
devices and 1 process with 1 device, all at the same global batch. Marked `distributed`: the tox jax env runs them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import REPO, cli, real_data_dir

from fashionnet.training.augment import Augmentation
from fashionnet.training.batches import AugmentedBatches

WATCH_HOOK = REPO / "tests" / "integration" / "watch_writes"
JOB = ["--epochs", "2", "--limit", "1200", "--batch-size", "100", "--seed", "3"]  # 10 global batches an epoch
FINGERPRINT = re.compile(r"process (\d) of (\d): weights sha256 ([0-9a-f]{16})")


def env(**extra) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_") and k != "XLA_FLAGS"}
    return {**base, "KERAS_BACKEND": "jax", "FASHIONNET_DATA": str(real_data_dir()), "PYTHONUNBUFFERED": "1", **extra}


def fashionnet(*args, timeout=600, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashionnet", *args], capture_output=True, text=True,
                          env=env(**extra), timeout=timeout)  # fmt: skip


def weights(run: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


# --- the batches each process reads (no jax needed) ------------------------------------------------------------------


@pytest.mark.parametrize("augmentation", [Augmentation(), Augmentation(flip=True, shift=2)])
def test_the_shards_of_each_global_batch_are_the_one_process_batch(augmentation):
    x = np.random.default_rng(0).random((23, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(23) % 10]
    whole = AugmentedBatches(x, y, 10, augmentation, seed=5, multiple=2)
    halves = [AugmentedBatches(x, y, 10, augmentation, seed=5, shard=(i, 2), multiple=2) for i in range(2)]
    assert len(whole) == len(halves[0]) == 3  # the last batch of 3 images is cut to 2: the devices split it evenly
    for _epoch in range(2):  # a new permutation (and augmentation) each epoch, the same in every shard
        for b in range(len(whole)):
            xs, ys = whole[b]
            parts = [half[b] for half in halves]
            np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), xs)  # same images, same augmentation
            np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), ys)
            assert len(parts[0][0]) == len(parts[1][0]) == len(xs) // 2
        for batches in (whole, *halves):
            batches.on_epoch_end()
    assert len(AugmentedBatches(x, y, 10, augmentation, seed=5, multiple=4)) == 2  # 3 images < 4: dropped


@pytest.mark.per_backend
@pytest.mark.skipif(keras.backend.backend() == "jax", reason="on jax --distribute trains: the distributed tests below")
def test_other_backends_refuse_distribute_instead_of_training_undistributed(tmp_path):
    backend = keras.backend.backend()
    done = cli("train", "--out", tmp_path / "r", *JOB, "--distribute")
    assert done.returncode == 2, done.stderr
    assert f"--distribute needs the jax backend: Keras's distribution engine (keras.distribution) is not " \
           f"implemented for the {backend} backend; set KERAS_BACKEND=jax" in done.stderr  # fmt: skip
    assert not (tmp_path / "r").exists()


# --- real jobs -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """The same training three ways: 2 processes (launcher) with writes of process 1 watched; 1 process with 2
    virtual devices; 1 process with 1 device."""
    root = tmp_path_factory.mktemp("distributed")
    watch_log = root / "process-1-writes.log"
    two = fashionnet("launch", "--processes", "2", "--", "train", "--out", str(root / "two"), *JOB,
                     PYTHONPATH=str(WATCH_HOOK), FASHIONNET_TEST_WATCH=str(root / "two"),
                     FASHIONNET_TEST_WATCH_LOG=str(watch_log))  # fmt: skip
    devices = fashionnet("train", "--out", str(root / "devices"), *JOB, "--distribute",
                         XLA_FLAGS="--xla_force_host_platform_device_count=2")  # fmt: skip
    one = fashionnet("train", "--out", str(root / "one"), *JOB, "--distribute")
    return root, two, devices, one, watch_log


@pytest.mark.distributed
@pytest.mark.slow
def test_two_processes_end_with_identical_weights_equal_to_one_process_with_two_devices(jobs):
    root, two, devices, one, _ = jobs
    for done in (two, devices, one):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = {(int(i), int(n)): sha for i, n, sha in FINGERPRINT.findall(two.stdout)}
    assert set(found) == {(0, 2), (1, 2)} and found[0, 2] == found[1, 2]  # lock-step: the same weights everywhere
    assert "[0] distribute: data parallel over 2 CPU devices in 2 process(es); global batch 100, 50 per device" in (
        two.stdout
    )
    # bit for bit: the same global batches, the same all-reduce over 2 devices, in one process or in two
    for a, b in zip(weights(root / "two"), weights(root / "devices"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert FINGERPRINT.search(devices.stdout).group(3) == found[0, 2]
    # 1 device: the same batches, the gradients summed in another order: equal to float32 rounding (4.5e-07 measured)
    for a, b in zip(weights(root / "two"), weights(root / "one"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    histories = [json.loads((root / run / "history.json").read_text()) for run in ("two", "devices")]
    for history in histories:
        del history["epoch_seconds"]
    assert len(histories[0]["loss"]) == 2 and histories[0] == histories[1]  # metrics of the global batches
    record = json.loads((root / "two" / "config.json").read_text())
    assert record["config"]["distribute"] is True and record["environment"]["distributed"] == {
        "processes": 2, "devices": 2}  # fmt: skip


@pytest.mark.distributed
@pytest.mark.slow
def test_only_process_0_writes_the_run_folder(jobs):
    root, two, devices, _, watch_log = jobs
    assert two.returncode == 0
    lines = watch_log.read_text().splitlines()
    assert lines[0] == f"armed: process 1 watches {os.path.realpath(root / 'two')}"  # the hook did watch process 1
    assert lines[1:] == []  # and saw no write into the run folder
    assert sorted(p.name for p in (root / "two").iterdir()) == sorted(p.name for p in (root / "devices").iterdir())
    assert "[1] train: process 1 done in " in two.stdout and "process 0 writes the run folder" in two.stdout


@pytest.mark.distributed
def test_the_write_watch_catches_a_write(tmp_path):
    """The hook the test above relies on: a process other than 0 writing into the watched folder is recorded."""
    log = tmp_path / "log"
    code = f"open({str(tmp_path / 'run' / 'x')!r}, 'w').close()"
    (tmp_path / "run").mkdir()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(WATCH_HOOK),
                   "KERAS_DISTRIBUTION_PROCESS_ID": "1", "FASHIONNET_TEST_WATCH": str(tmp_path / "run"),
                   "FASHIONNET_TEST_WATCH_LOG": str(log)})  # fmt: skip
    assert log.read_text().splitlines()[1].startswith("process 1 open-for-writing ")


@pytest.mark.distributed
@pytest.mark.slow
def test_a_killed_process_ends_the_job_with_an_error_and_the_rerun_resumes(tmp_path):
    run = tmp_path / "run"
    job = ["train", "--out", str(run), "--epochs", "3", "--limit", "2400", "--batch-size", "100"]
    launcher = subprocess.Popen([sys.executable, "-m", "fashionnet", "launch", "--processes", "2", "--", *job],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())  # fmt: skip
    lines, killed = [], None
    deadline = time.monotonic() + 400
    for line in launcher.stdout:
        lines.append(line)
        if match := re.match(r"fashionnet launch: process 1: pid (\d+)", line):
            pid = int(match.group(1))
        if line.startswith("[0] epoch 1/3") and killed is None:
            os.kill(pid, signal.SIGKILL)  # what an out-of-memory kill or a lost node does
            killed = time.monotonic()
        assert time.monotonic() < deadline, "".join(lines)
    code = launcher.wait(timeout=60)
    output = "".join(lines)
    assert killed is not None, output
    assert code != 0 and "fashionnet launch: process 1 failed (exit 137)" in output, output
    # process 0 notices by itself, says so in one line and stops at once (not after jax's ~100 s heartbeat wait)
    assert re.search(r"\[0\] fashionnet: error: process 0 of 2: another process of the job failed \(.+\); "
                     r"1 of 3 epochs are saved: rerun the same job to resume from epoch 2", output), output  # fmt: skip
    assert "Traceback" not in output
    assert not (run / "model.keras").exists() and (run / "backup").is_dir()

    again = fashionnet("launch", "--processes", "2", "--", *job)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[0] train: 3 epochs in " in again.stdout and "resumed from epoch 2" in again.stdout
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 3


@pytest.mark.distributed
@pytest.mark.parametrize(
    "extra, message",
    [
        ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "BATCH": "101"},
         "--batch-size 101 (the global batch) does not split evenly over 2 devices of 1 process(es); "
         "choose a multiple of 2"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:9", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
          "KERAS_DISTRIBUTION_PROCESS_ID": "2"},
         "KERAS_DISTRIBUTION_PROCESS_ID must be in [0, 2) for 2 processes, found 2"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:9,127.0.0.1:10", "KERAS_DISTRIBUTION_NUM_PROCESSES": "3",
          "KERAS_DISTRIBUTION_PROCESS_ID": "0"},
         "KERAS_DISTRIBUTION_JOB_ADDRESSES lists 2 addresses for KERAS_DISTRIBUTION_NUM_PROCESSES=3"),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"},
         "a multi-process job needs KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
         "KERAS_DISTRIBUTION_PROCESS_ID; missing: KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_PROCESS_ID"),
    ],
)  # fmt: skip
def test_a_job_that_does_not_hold_together_is_a_one_line_error(tmp_path, extra, message):
    batch = extra.pop("BATCH", "100")
    done = fashionnet("train", "--out", str(tmp_path / "r"), "--epochs", "1", "--limit", "600", "--batch-size",
                      batch, "--distribute", timeout=300, **extra)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"fashionnet: error: {message}"
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.distributed
def test_launch_runs_train_or_reproduce_only():
    done = fashionnet("launch", "--processes", "2", "--", "evaluate", "runs/x", timeout=120)
    assert done.returncode == 2
    assert "launch runs one of: train, reproduce (fashionnet launch -N 2 -- train ...); found evaluate" in done.stderr
