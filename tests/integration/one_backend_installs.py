"""Build the wheel, install it into fresh venvs that hold one backend each, and reproduce a short run in each.

The pattern of keras's own integration_tests/import_test.py: a user who installs only fashionnet[jax] (no
tensorflow) gets a working tool, and the export command names the extra it needs. Run by `tox -e wheel`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("jax", "torch", "tensorflow")
RUN_FILES = ("config.json", "model.keras", "history.json", "metrics.json", "confusion_matrix.png", "report.md")


def sh(*cmd, env=None, cwd=None) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True)


def check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        sys.exit(f"FAILED: {what} (exit {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    uv = shutil.which("uv") or sys.exit("uv not found: pip install uv")
    env = {**os.environ, "UV_FIND_LINKS": os.environ.get("UV_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS", "")}

    check(sh(uv, "build", "--wheel", "--out-dir", work / "dist", REPO, env=env), "build the wheel")
    wheel = next((work / "dist").glob("fashionnet-*.whl"))
    results = {}
    for backend in args.backends.split(","):
        venv = work / f"venv-{backend}"
        check(sh(uv, "venv", "--python", sys.executable, venv, env=env), f"create venv for {backend}")
        python = venv / "bin" / "python"
        started = time.monotonic()
        check(sh(uv, "pip", "install", "--python", python, f"{wheel}[{backend}]", env=env), f"install [{backend}]")
        installed = {}
        for module in ("tensorflow", "jax", "torch", "onnxruntime"):
            probe = sh(python, "-c", f"import importlib.util as u; print(u.find_spec('{module}') is not None)")
            installed[module] = probe.stdout.strip() == "True"
        others = [m for m in ("tensorflow", "jax", "torch") if m != backend and installed[m]]
        if others or not installed[backend]:
            sys.exit(f"FAILED: fashionnet[{backend}] venv holds {installed}")

        run = work / f"run-{backend}"
        run_env = {**env, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cli = venv / "bin" / "fashionnet"
        proc = sh(cli, "reproduce", "--out", run, "--epochs", "1", "--limit", "3000", env=run_env, cwd=work)
        check(proc, f"reproduce on {backend}")
        missing = [f for f in RUN_FILES if not (run / f).is_file()]
        if missing:
            sys.exit(f"FAILED: {backend} run lacks {missing}")
        metrics = json.loads((run / "metrics.json").read_text())
        if backend != "tensorflow":
            # No tensorflow here: export must say which extra to install, with exit code 8 and no traceback.
            export = sh(cli, "export", run, env=run_env, cwd=work)
            if export.returncode != 8 or "fashionnet[export]" not in export.stderr or "Traceback" in export.stderr:
                sys.exit(f"FAILED: export without tensorflow on {backend}: {export.returncode} {export.stderr[-2000:]}")
        results[backend] = {
            "test_accuracy": metrics["test_accuracy"],
            "seconds": round(time.monotonic() - started, 1),
            "installed": installed,
        }
        print(f"ok {backend}: {results[backend]}", flush=True)
    print(json.dumps(results, indent=2))
    print(f"{len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
