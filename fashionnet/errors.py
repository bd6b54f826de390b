"""fashionnet's own exception family: the library raises, only the CLI turns them into exit codes."""

import re


class FashionNetError(Exception):
    """Base class: every error a user can cause or fix."""

    exit_code = 1
    hint: str | None = None  # what to do next, printed by the CLI on a second line (e.g. the command that resumes)
    hard_exit: bool = False  # the CLI ends the process at once after the message (a data-parallel job that broke)


class ConfigError(FashionNetError):
    """An option out of range or inconsistent with the run folder."""

    exit_code = 2


class DataError(FashionNetError):
    """Missing, truncated, corrupt or mismatching Fashion-MNIST files."""

    exit_code = 3


class ModelError(FashionNetError):
    """A model file that is missing, truncated or not a fashionnet model."""

    exit_code = 4


class InputError(FashionNetError):
    """Prediction inputs of the wrong shape, dtype, range or kind."""

    exit_code = 5


class ExportError(FashionNetError):
    """A conversion failed or an exported artifact disagrees with Keras."""

    exit_code = 6


class RunError(FashionNetError):
    """A run folder that is missing, finished, unwritable or inconsistent."""

    exit_code = 7


class MissingDependencyError(FashionNetError):
    """A heavy optional library is not installed; the message names the extra."""

    exit_code = 8


class DistributedError(FashionNetError):
    """The processes of a data-parallel job could not start together, or one of them failed (--distribute)."""

    exit_code = 9


class StorageError(FashionNetError):
    """A file could not be written or read (disk full, I/O error, permission); a write keeps the previous file."""

    exit_code = 10


def os_reason(exc: BaseException) -> str:
    """'No space left on device (ENOSPC)' from an OSError, also from h5py's, which put errno in the message."""
    import errno
    import os

    number = getattr(exc, "errno", None)
    if not isinstance(number, int):
        found = re.search(r"errno = (\d+)", str(exc))
        number = int(found.group(1)) if found else None
    if isinstance(number, int) and number in errno.errorcode:
        return f"{os.strerror(number)} ({errno.errorcode[number]})"
    return first_line(str(exc)) or type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    """'FILE: cause' for an OSError that reached the top, on one line."""
    name = exc.filename if exc.filename is not None else getattr(exc, "filename2", None)
    return f"{name}: {os_reason(exc)}" if name is not None else os_reason(exc)


def first_line(text: str, limit: int = 300) -> str:
    """A library's message on one line: its first non-empty line, at most ``limit`` characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def require(module: str, extra: str):
    """Import a heavy optional dependency, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with: pip install 'fashionnet[{extra}]'"
        ) from exc
