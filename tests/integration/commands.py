"""The integration scripts' one way to run a command: echoed, captured, and a failure ends the script with its tail."""

from __future__ import annotations

import subprocess
import sys


def sh(*cmd, env=None, cwd=None) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True)


def check(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        sys.exit(f"FAILED: {what} (exit {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def fail(message: str) -> None:
    sys.exit(f"FAILED: {message}")
