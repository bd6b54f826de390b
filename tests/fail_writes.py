"""Writes that fail on purpose, in this process: opening for writing a file whose name matches a pattern (fnmatch,
the name only) raises OSError with a chosen errno, as a failing disk would (EIO), or a read-only one (EROFS), at a
point a test chooses. A Python audit hook sees every open() made from Python (zipfile, json, matplotlib, numpy);
it stays installed for the session (audit hooks cannot be removed) and does nothing outside ``failing_writes``."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import sys

_ACTIVE: dict = {}  # pattern and errno while a test asks for failures
_INSTALLED: list[bool] = []


def _hook(event: str, args: tuple) -> None:
    if event != "open" or not _ACTIVE or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    mode, flags = args[1], args[2] if len(args) > 2 else 0
    writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
    )
    path = os.fsdecode(args[0])
    if writes and fnmatch.fnmatch(os.path.basename(path), _ACTIVE["pattern"]):
        raise OSError(_ACTIVE["errno"], os.strerror(_ACTIVE["errno"]), path)


@contextlib.contextmanager
def failing_writes(pattern: str, number: str = "ENOSPC"):
    """Within the block, opening a file named like ``pattern`` for writing fails with errno ``number``."""
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED.append(True)
    _ACTIVE.update(pattern=pattern, errno=getattr(errno, number))
    try:
        yield
    finally:
        _ACTIVE.clear()
