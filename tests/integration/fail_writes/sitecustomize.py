"""Imported at start-up by a Python process whose PYTHONPATH holds this folder: opening for writing a file whose
name matches $FASHIONNET_TEST_FAIL_WRITE (fnmatch, the name only) fails with errno $FASHIONNET_TEST_FAIL_ERRNO,
as a failing disk would (EIO), or a read-only one (EROFS), at a point a test chooses."""

import errno
import fnmatch
import os
import sys

PATTERN = os.environ.get("FASHIONNET_TEST_FAIL_WRITE")
NUMBER = getattr(errno, os.environ.get("FASHIONNET_TEST_FAIL_ERRNO", "EIO"))

if PATTERN:

    def _hook(event, args):
        if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
        )
        path = os.fsdecode(args[0])
        if writes and fnmatch.fnmatch(os.path.basename(path), PATTERN):
            raise OSError(NUMBER, os.strerror(NUMBER), path)

    sys.addaudithook(_hook)
