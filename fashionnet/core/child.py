"""Child processes: the one protocol for every Python process fashionnet starts and waits for.

Keras cannot switch backend in-process, so the export converts in a tensorflow child, the parity reference runs
in the training backend's child, and bench measures each backend in its own child. Every one of them:

* is started by ``run_child`` (a command, this environment plus ``env``, an optional timeout), which returns the
  exit code, both streams, the wall time and the child's peak RSS (``os.wait4``);
* reports a FashionNetError as one stderr line ``PROG: Type: message`` and its exit code (``child_main``), which
  the parent raises again (``raise_from_child``);
* returns a result, when it has one, as a JSON object on its last stdout line (``print_result``/``result_of``).

The data-parallel launcher streams its processes' output instead of waiting for it; it shares ``shell_code``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from fashionnet.errors import (
    DataError,
    ExportError,
    FashionNetError,
    MissingDependencyError,
    ModelError,
    StorageError,
    describe_os_error,
)

STDERR_TAIL = 4000  # characters of a child's stderr kept for error messages


@dataclass(frozen=True)
class ChildResult:
    returncode: int  # 128 + N for a child ended by signal N, as a shell reports it
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float  # ru_maxrss of the child (Linux: kilobytes / 1024)


def module_command(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS`` with this interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]


def shell_code(returncode: int) -> int:
    """A child killed by signal N reads as 128 + N, as in a shell."""
    return 128 - returncode if returncode < 0 else returncode


def run_child(command: list[str], env: dict | None = None, timeout: float | None = None) -> ChildResult:
    """Run ``command`` to its end (killed after ``timeout`` seconds); streams go to files, never a full pipe."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildResult(
            returncode=shell_code(proc.returncode),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace")[-STDERR_TAIL:],
            wall_s=time.perf_counter() - started,
            peak_rss_mb=usage.ru_maxrss / 1024,
        )


def child_main(prog: str, work) -> int:
    """Run ``work()`` as a child process's main: a FashionNetError becomes one stderr line and its exit code."""
    try:
        work()
    except FashionNetError as exc:
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # disk full, I/O error while the child writes: the parent's staging folder is dropped
        print(f"{prog}: StorageError: {describe_os_error(exc)}", file=sys.stderr)
        return StorageError.exit_code
    return 0


def raise_from_child(prog: str, done: ChildResult, failure: str, error=ExportError) -> None:
    """In the parent: the child's missing dependency, model, data or storage error again; anything else an
    ``error`` saying ``failure`` with the child's own message (or the tail of its stderr)."""
    if done.returncode == 0:
        return
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"{prog}: ")]
    message = lines[-1].split(": ", 2)[-1] if lines else "\n".join(done.stderr.strip().splitlines()[-15:])
    for kind in (MissingDependencyError, ModelError, DataError, StorageError):
        if done.returncode == kind.exit_code:
            raise kind(message)
    raise error(f"{failure} (exit {done.returncode}): {message}")


def print_result(result: dict) -> None:
    """The child's result: one JSON line, the last on stdout."""
    print(json.dumps(result), flush=True)


def result_of(done: ChildResult) -> dict | None:
    """The JSON object a child printed last (print_result), or None."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None
