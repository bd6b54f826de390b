"""`fashionnet launch`: a data-parallel job of N processes on this machine, for trying --distribute without a
cluster.

It starts ``python -m fashionnet COMMAND ... --distribute`` N times with Keras's ``KERAS_DISTRIBUTION_*``
variables (process 0 coordinates on 127.0.0.1), forwards each process's output line by line with a ``[i]``
prefix, and ends every process when one fails or on Ctrl-C, so none is left behind. On a cluster the
launcher is the scheduler's own (srun, mpirun): docs/distributed.md.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from fashionnet.core.child import module_command, shell_code
from fashionnet.errors import ConfigError
from fashionnet.training.distributed import ENV_ADDRESSES, ENV_PROCESS_ID, ENV_PROCESSES

LAUNCHABLE = ("train", "reproduce")
GRACE_SECONDS = 20.0  # after a Ctrl-C or a failed process: time to stop at a batch boundary before SIGKILL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _forward(index: int, stream, out, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            out.write(f"[{index}] {line}")
            out.flush()
    stream.close()


def _stop(procs: list[subprocess.Popen], sig: int) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _wait_all(procs: list[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    _stop(procs, signal.SIGKILL)
    for proc in procs:
        proc.wait()


def command_for(argv: list[str]) -> list[str]:
    """The fashionnet command every process runs: ``argv`` (after ``--``) with --distribute added."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or argv[0] not in LAUNCHABLE:
        found = argv[0] if argv else "nothing"
        raise ConfigError(
            f"launch runs one of: {', '.join(LAUNCHABLE)} (fashionnet launch -N 2 -- train ...); found {found}"
        )
    return module_command("fashionnet", *argv, *([] if "--distribute" in argv else ["--distribute"]))


def launch(processes: int, argv: list[str], devices_per_process: int | None = None, port: int | None = None,
           out=None, log=None) -> int:  # fmt: skip
    """Run the job; its exit code is the first failing process's (0 when every process succeeded)."""
    out = out or sys.stdout
    log = log or (lambda message: print(f"fashionnet launch: {message}", file=sys.stderr, flush=True))
    if processes < 1:
        raise ConfigError(f"--processes must be >= 1, got {processes}")
    if devices_per_process is not None and devices_per_process < 1:
        raise ConfigError(f"--devices-per-process must be >= 1, got {devices_per_process}")
    command = command_for(argv)
    address = f"127.0.0.1:{port or free_port()}"
    env = {**os.environ, "KERAS_BACKEND": "jax", ENV_ADDRESSES: address, ENV_PROCESSES: str(processes),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    if devices_per_process:  # N CPU devices per process (jax's flag); GPUs and TPUs are found as they are
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices_per_process}".strip()
    lock, procs, threads = threading.Lock(), [], []
    log(f"{processes} processes, coordinator {address}: {' '.join(command[2:])}")
    for index in range(processes):
        proc = subprocess.Popen(
            command, env={**env, ENV_PROCESS_ID: str(index)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,  # our Ctrl-C reaches them through us, once
        )  # fmt: skip
        procs.append(proc)
        thread = threading.Thread(target=_forward, args=(index, proc.stdout, out, lock), daemon=True)
        thread.start()
        threads.append(thread)
        log(f"process {index}: pid {proc.pid}")
    failures: list[tuple[int, int]] = []  # (process, exit code) in the order they were seen

    def note_failures() -> None:
        for index, proc in enumerate(procs):
            if proc.returncode not in (None, 0) and index not in dict(failures):
                failures.append((index, shell_code(proc.returncode)))
                log(f"process {index} failed (exit {failures[-1][1]})")

    interrupted = False
    try:
        while any(p.poll() is None for p in procs):
            note_failures()
            if failures:
                log("stopping the other processes")
                _stop(procs, signal.SIGINT)  # fashionnet stops at a batch boundary on SIGINT
                _wait_all(procs, GRACE_SECONDS)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        log("interrupted; stopping every process")
        _stop(procs, signal.SIGINT)
        _wait_all(procs, GRACE_SECONDS)
        interrupted = True
    for thread in threads:
        thread.join(timeout=5)
    note_failures()
    if interrupted:
        return 130
    return failures[0][1] if failures else 0
