"""Build the wheel with `python -m build`; install each extra alone into a fresh venv and use what it promises.

The pattern of keras's own integration_tests/import_test.py: a user who installs only fashionnet[jax] gets a
working tool, and fashionnet[tensorflow,export] alone can export int8 (a missing dependency of an extra shows
here, not on a newcomer's machine). Run by `tox -e wheel`.

    [jax], [torch]          reproduce a short run (no tensorflow); `export` names the extra it needs (exit 8)
    [tensorflow]            reproduce a short run; the export stage is skipped with the extra named
    [tensorflow,export]     added to the [tensorflow] venv (what a user who adds the extra gets); reproduce with
                            --quantize int8: four artifacts pass the parity gate. With $FASHIONNET_EXPORTED_RUN
                            (CI: the README's main job, which is this extra installed alone and used) that run is
                            checked instead of reproducing it again.
    [edge]                  no backend installed; the edge kit and `fashionnet predict` classify the test set
                            with the exported int8 model and score the accuracy the parity gate measured
    RUN/export alone        the files its README names, copied to a fresh folder; a fresh venv from its
                            requirements.txt (no fashionnet, no keras); --selftest passes on the int8 ONNX and
                            TFLite models; the same requirements resolve to wheels on every device platform

Before the installs: the wheel and the sdist pass `twine check`, and fashionnet[edge] and the Python kit's own
requirements resolve to wheels (no build on a device) for x86-64 and aarch64 Linux on every supported Python,
with uv's resolver for that platform (nothing is installed or downloaded but the index's metadata).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from commands import check, fail, sh  # this folder: the script's own path comes first on sys.path

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("jax", "torch", "tensorflow", "tensorflow,export", "edge")  # edge last: it uses the export's model
VENV = {"tensorflow,export": "tensorflow"}  # installed on top of that extra's venv instead of a fresh one
HEAVY = ("tensorflow", "jax", "torch", "tf2onnx", "onnxruntime", "ai_edge_litert")
# what each install may hold of HEAVY; anything else there means an extra pulls in more than it needs
ALLOWED = {
    "jax": {"jax"},
    "torch": {"torch"},
    "tensorflow": {"tensorflow"},
    "tensorflow,export": {"tensorflow", "tf2onnx", "onnxruntime", "ai_edge_litert"},
    "edge": {"onnxruntime"},
}
BACKEND = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow", "tensorflow,export": "tensorflow"}
RUN_FILES = ("config.json", "model.keras", "history.json", "metrics.json", "confusion_matrix.png", "report.md")
QUICK = ("--epochs", "1", "--limit", "3000")
DEVICE_PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28")  # a Raspberry Pi OS / Debian 12 glibc
PYTHONS = ("3.11", "3.12", "3.13")  # the README's supported versions
KIT_DISTRIBUTIONS = ("numpy", "pillow", "onnxruntime", "ai-edge-litert")  # what fashionnet_edge.py imports


def installed_modules(python: Path) -> set[str]:
    probe = "import importlib.util as u, json, sys; print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m)]))"
    return set(json.loads(check(sh(python, "-c", probe, *HEAVY), "probe the venv").stdout))


def use_backend_extra(extra: str, cli: Path, run: Path, env: dict, work: Path, done: Path | None = None) -> dict:
    """Reproduce a short run with the extra's venv; ``done``: a run that the same install already made, checked."""
    if done is None:
        options = (*QUICK, "--quantize", "int8") if extra == "tensorflow,export" else QUICK
        proc = check(sh(cli, "reproduce", "--out", run, *options, env=env, cwd=work), f"reproduce with [{extra}]")
    else:
        print(f"[{extra}]: checking {done}, made by the same install (the README's main job)", flush=True)
        run = done
    missing = [f for f in RUN_FILES if not (run / f).is_file()]
    if missing:
        fail(f"[{extra}] run lacks {missing}")
    if extra == "tensorflow,export":
        parity = json.loads((run / "export" / "parity.json").read_text())
        kit = run / "export" / "web"  # the browser kit ships as the wheel's fashionnet_web package data
        if not all((kit / name).is_file() for name in ("index.html", "preprocess.js", "package-lock.json", "kit.json")):
            fail(f"[{extra}] export wrote no complete web kit: {sorted(p.name for p in kit.glob('*'))}")
        if not parity["passed"] or len(parity["artifacts"]) != 4:
            fail(f"[{extra}] export: {parity['failures']} {sorted(parity['artifacts'])}")
    elif extra == "tensorflow":
        if "export: skipped" not in proc.stdout or "fashionnet[export]" not in proc.stdout:
            fail(f"[{extra}] reproduce did not say the export needs fashionnet[export]: {proc.stdout[-2000:]}")
    else:  # no tensorflow: export must say which extra to install, exit 8, no traceback
        export = sh(cli, "export", run, env=env, cwd=work)
        if export.returncode != 8 or "fashionnet[export]" not in export.stderr or "Traceback" in export.stderr:
            fail(f"export without tensorflow on [{extra}]: {export.returncode} {export.stderr[-2000:]}")
    return {"test_accuracy": json.loads((run / "metrics.json").read_text())["test_accuracy"]}


def use_edge_extra(venv: Path, export_run: Path, data: Path, env: dict, work: Path) -> dict:
    if not (export_run / "export" / "parity.json").is_file():
        fail("[edge] needs the [tensorflow,export] run first")
    parity = json.loads((export_run / "export" / "parity.json").read_text())["artifacts"]["model.int8.onnx"]
    labels = data / "t10k-labels-idx1-ubyte.gz"
    import gzip

    truth = list(gzip.decompress(labels.read_bytes())[8:])
    results = {}
    for name, cmd in (
        ("fashionnet-edge", [venv / "bin" / "fashionnet-edge"]),
        ("fashionnet predict", [venv / "bin" / "fashionnet", "predict"]),
    ):
        model = export_run / "export" / "model.int8.onnx"
        proc = check(sh(*cmd, model, data / "t10k-images-idx3-ubyte.gz", "--json", env=env, cwd=work), name)
        predicted = [row["index"] for row in json.loads(proc.stdout)["predictions"]]
        accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
        if abs(accuracy - parity["accuracy"]) > 1e-9:
            fail(f"[edge] {name}: accuracy {accuracy} differs from the parity gate's {parity['accuracy']}")
        results[name] = accuracy
    return results


def kit_requirements() -> list[str]:
    """The Python kit's requirements with the ranges pyproject.toml declares for them."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    found = {}
    for requirement in declared:
        name = requirement.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        if name in KIT_DISTRIBUTIONS:
            found.setdefault(name, requirement)
    missing = sorted(set(KIT_DISTRIBUTIONS) - set(found))
    if missing:
        fail(f"pyproject.toml declares no range for the kit's {missing}")
    return list(found.values())


def without_lock(env: dict) -> dict:
    """The environment with tox's lock removed: what a device resolves is the requirements' own ranges or pins."""
    return {k: v for k, v in env.items() if k not in ("UV_CONSTRAINT", "PIP_CONSTRAINT")}


def resolve_on_devices(uv: str, source: Path, label: str, env: dict) -> dict:
    """{"PLATFORM PYTHON": {onnxruntime, ai-edge-litert versions}}: ``source`` resolved to wheels for each device
    platform and Python, or the failure named."""
    resolved = {}
    for platform in DEVICE_PLATFORMS:
        for python in PYTHONS:
            done = check(
                sh(uv, "pip", "compile", source, "--python-platform", platform, "--python-version", python,
                   "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet", env=without_lock(env)),
                f"{label} on {platform}, Python {python}: no wheel resolution",
            )  # fmt: skip
            pins = dict(line.split("==", 1) for line in done.stdout.splitlines() if "==" in line)
            resolved[f"{platform} {python}"] = {k: pins.get(k) for k in ("onnxruntime", "ai-edge-litert")}
    return resolved


def check_device_resolution(uv: str, wheel: Path, work: Path, env: dict) -> dict:
    """fashionnet[edge] and the kit's own requirements resolve to wheels on every device platform and Python."""
    wanted = {"fashionnet[edge]": [f"fashionnet[edge] @ {wheel.as_uri()}"], "the kit": kit_requirements()}
    resolved = {}
    for label, requirements in wanted.items():
        source = work / f"{label.replace(' ', '-')}.in"
        source.write_text("\n".join(requirements) + "\n")
        resolved[label] = resolve_on_devices(uv, source, label, env)
    return resolved


def use_export_folder(uv: str, export_run: Path, work: Path, env: dict) -> dict:
    """RUN/export/ as a device gets it: what its README says to copy, installed as its README says."""
    folder = export_run / "export"
    readme = (folder / "README.md").read_text().split("## Install")[0]
    named = set(re.findall(r"`([\w.]+\.(?:py|txt|json|onnx|tflite))`", readme))
    device = work / "device"
    device.mkdir()
    for name in named:
        shutil.copy2(folder / name, device / name)
    env = without_lock(env)  # its own pins only
    resolved = resolve_on_devices(uv, device / "requirements.txt", "RUN/export/requirements.txt", env)
    venv = work / "venv-device"
    check(sh(uv, "venv", "--python", sys.executable, venv, env=env), "create the device venv")
    python = venv / "bin" / "python"
    check(sh(uv, "pip", "install", "--python", python, "-r", device / "requirements.txt", env=env), "install")
    found = installed_modules(python)
    if found - {"onnxruntime", "ai_edge_litert"}:
        fail(f"RUN/export/requirements.txt installs {sorted(found)}")
    for model in ("model.int8.onnx", "model.int8.tflite"):
        done = check(sh(python, device / "fashionnet_edge.py", device / model, "--selftest", env=env, cwd=device),
                     f"--selftest of {model} in the export folder alone")  # fmt: skip
        if f"selftest {model}: PASS" not in done.stdout:
            fail(f"--selftest of {model}: {done.stdout}")
        resolved[model] = done.stdout.strip()
    return {"copied": sorted(named), **resolved}


def check_metadata(dist: Path, env: dict) -> None:
    """The wheel's and the sdist's metadata render on PyPI (twine check)."""
    files = sorted(dist.glob("fashionnet-*"))
    if len(files) != 2:
        fail(f"expected a wheel and an sdist in {dist}, found {[f.name for f in files]}")
    check(sh(sys.executable, "-m", "twine", "check", "--strict", *files, env=env), "twine check")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--extras", default=";".join(EXTRAS), help="';'-separated (default: all)")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    uv = shutil.which("uv") or sys.exit("uv not found: pip install uv")
    env = {**os.environ, "UV_FIND_LINKS": os.environ.get("UV_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS", "")}
    data = Path(os.path.abspath(os.environ.get("FASHIONNET_DATA", REPO.parent / "shared/data/fashion-mnist")))
    env["FASHIONNET_DATA"] = str(data)  # resolved here, where it is read: the runs below start in another folder

    check(sh(sys.executable, "-m", "build", "--outdir", work / "dist", REPO, env=env), "python -m build")
    wheel = next((work / "dist").glob("fashionnet-*.whl"))
    check_metadata(work / "dist", env)
    devices = check_device_resolution(uv, wheel, work, env)
    print(f"ok: twine check; device resolution {json.dumps(devices)}", flush=True)
    exported = Path(os.environ["FASHIONNET_EXPORTED_RUN"]) if os.environ.get("FASHIONNET_EXPORTED_RUN") else None
    export_run = exported or work / "run-tensorflow-export"  # what [edge] classifies with
    results = {}
    for extra in args.extras.split(";"):
        venv = work / f"venv-{VENV.get(extra, extra).replace(',', '-')}"
        if not venv.is_dir():
            check(sh(uv, "venv", "--python", sys.executable, venv, env=env), f"create venv for [{extra}]")
        python = venv / "bin" / "python"
        started = time.monotonic()
        check(sh(uv, "pip", "install", "--python", python, f"{wheel}[{extra}]", env=env), f"install [{extra}]")
        found = installed_modules(python)
        if found - ALLOWED[extra] or (extra in BACKEND and BACKEND[extra] not in found):
            fail(f"fashionnet[{extra}] venv holds {sorted(found)}; expected {sorted(ALLOWED[extra])}")
        run_env = {**env, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if extra == "edge":
            result = use_edge_extra(venv, export_run, data, run_env, work)
            result["export folder alone"] = use_export_folder(uv, export_run, work, run_env)
        else:
            run_env["KERAS_BACKEND"] = BACKEND[extra]
            run = work / f"run-{extra.replace(',', '-')}"
            done = exported if extra == "tensorflow,export" else None
            result = use_backend_extra(extra, venv / "bin" / "fashionnet", run, run_env, work, done)
        results[extra] = {**result, "seconds": round(time.monotonic() - started, 1), "installed": sorted(found)}
        print(f"ok [{extra}]: {results[extra]}", flush=True)
    print(json.dumps(results, indent=2))
    print(f"{len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
