"""What fashionnet prints: one progress line per stage on stdout, native libraries' chatter hidden unless --debug.

TensorFlow, the TFLite converter and LiteRT write C++ log lines straight to file descriptor 2 (``fully_quantize:
0 ...``, ``Created TensorFlow Lite XNNPACK delegate``), which no Python logging setting reaches: they are sent to
/dev/null around the calls that make them (errors still reach the user as fashionnet's own one-line messages).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings

from fashionnet.core import machine

DEBUG_ENV = "FASHIONNET_DEBUG"  # set by --debug; inherited by the export's tensorflow child process

# Read by TensorFlow, XLA/absl and gRPC when they start: only errors, unless --debug.
_QUIET_NATIVE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2"}


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def set_up(debug_on: bool = False, precision: str = "float32") -> None:
    """Before any heavy import: the backends' fastest kernels (machine.kernel_defaults), quiet native loggers and known
    third-party warnings (everything shown with --debug)."""
    machine.apply_kernel_defaults(precision)
    if debug_on:
        os.environ[DEBUG_ENV] = "1"
        return
    for key, value in _QUIET_NATIVE_ENV.items():
        os.environ.setdefault(key, value)
    # keras's tf2onnx shim probes np.object at import: numpy's FutureWarning is about that probe, not our code
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*np\.object.*")


def log(message: str) -> None:
    """One progress line on stdout, flushed at once (output may be a pipe or a CI log)."""
    print(message, flush=True)


class Stopwatch:
    """Seconds since creation, formatted for progress lines."""

    def __init__(self):
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def __str__(self) -> str:
        return duration(self.seconds)


def duration(seconds: float) -> str:
    """29.4 s, 3 min 05 s, 1 h 02 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@contextlib.contextmanager
def native_stderr_hidden():
    """Send file descriptor 2 to /dev/null for the block, unless --debug (then everything shows)."""
    if debug():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_keras_quietly() -> None:
    """Import keras (and its backend) with native start-up lines hidden; an import error surfaces later, in full."""
    with native_stderr_hidden():
        try:
            import keras  # noqa: F401
        except ImportError:
            pass
