"""Imported at start-up by every Python process of a test job (PYTHONPATH): in a data-parallel process other
than process 0, record every attempt to write under $FASHIONNET_TEST_WATCH (an audit hook) in
$FASHIONNET_TEST_WATCH_LOG. The log's first line says the hook is armed, so a test knows it watched."""

import os
import sys

WATCHED, LOG = os.environ.get("FASHIONNET_TEST_WATCH"), os.environ.get("FASHIONNET_TEST_WATCH_LOG")
PROCESS = os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID")

if WATCHED and LOG and PROCESS not in (None, "0"):
    root = os.path.realpath(WATCHED)
    WRITE_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree", "os.chmod",
                    "os.link", "os.symlink", "os.utime"}  # fmt: skip

    def _inside(path) -> bool:
        try:
            return os.path.realpath(os.fsdecode(path)).startswith(root)
        except (TypeError, ValueError):
            return False

    def _record(event: str, path) -> None:
        with open(LOG, "a") as log:
            log.write(f"process {PROCESS} {event} {os.fsdecode(path)}\n")

    def _hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writes and _inside(args[0]):
                _record("open-for-writing", args[0])
        elif event in WRITE_EVENTS and args and _inside(args[0]):
            _record(event, args[0])
        elif event in ("os.rename", "os.replace") and len(args) > 1 and _inside(args[1]):
            _record(event, args[1])

    with open(LOG, "a") as log:
        log.write(f"armed: process {PROCESS} watches {root}\n")
    sys.addaudithook(_hook)
