"""The tox web env's set-up: a Chromium and npm on the machine, installed with apt-get when missing.

A fresh Debian machine has neither Chromium nor always npm; the browser tests need both (Playwright drives the
system Chromium and never downloads one; npm installs the kit's pinned onnxruntime-web). Installing needs root;
without it this prints the command to run and fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from fashionnet.publish.browser import BrowserError, find_chromium  # noqa: E402


def missing_packages() -> list[str]:
    missing = []
    try:
        find_chromium()
    except BrowserError:
        missing.append("chromium")
    if shutil.which("npm") is None:
        missing.append("npm")
    return missing


def main() -> int:
    missing = missing_packages()
    if not missing:
        print(f"web setup: chromium at {find_chromium()}, npm at {shutil.which('npm')}")
        return 0
    command = f"apt-get update && apt-get install -y --no-install-recommends {' '.join(missing)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"web setup: missing {', '.join(missing)}; install them (Debian: {command})", file=sys.stderr)
        return 1
    print(f"web setup: installing {', '.join(missing)}: {command}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)
    still = missing_packages()
    if still:
        print(f"web setup: still missing after apt-get: {', '.join(still)}", file=sys.stderr)
        return 1
    print(f"web setup: chromium at {find_chromium()}, npm at {shutil.which('npm')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
