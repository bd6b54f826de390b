"""Paths the user typed (flags, environment variables), made absolute once where they are read."""

from __future__ import annotations

import os
from pathlib import Path


def user_path(value: str | os.PathLike) -> Path:
    """A path the user typed, made absolute once where it is read: it then means the same in every subprocess."""
    return Path(os.path.abspath(Path(value).expanduser()))
