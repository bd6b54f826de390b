"""The Python kit as a Raspberry Pi runs it: a Debian arm64 root file system, emulated (qemu-user-static, binfmt).

What a 64-bit Raspberry Pi OS user does with RUN/export/, done in a chroot on an x86-64 machine. Run by
`tox -e arm64` (opt-in; needs root: mmdebstrap, binfmt_misc and chroot):

    rootfs      `mmdebstrap --architectures=arm64 --variant=minbase --include=python3,python3-venv SUITE`, from
                Debian's own arm64 packages; built once into the cache folder (minutes), reused after
    wheels      the export's pinned requirements.txt as aarch64 wheels (`pip download --platform ... --only-binary`
                for the root file system's Python and glibc), fetched on the host once per requirements.txt
    install     a fresh venv in the root file system, `pip install --no-index --find-links wheels`: offline,
                nothing built, what a device installs from the same pins
    selftest    `fashionnet_edge.py MODEL --selftest` in the chroot for every exported model
    agreement   the kit's classifier on the first 1,000 test images, in the chroot (aarch64 onnxruntime and LiteRT
                builds, emulated) and on this machine (the same pins, x86-64 wheels): top-1 agreement and max |dp|

Fails (exit 1) when a self-test fails, an fp32 model's top-1 differs from x86-64's on any image, or an int8
model's top-1 (ONNX, TFLite) is Keras's (RUN/model.keras, computed here) on fewer than 99.5 % of the images, as the
parity gate requires on x86-64; the microcontroller model's agreement is reported. The chroot starts
with a clean environment and its own /proc (a private mount namespace: nothing stays mounted); the host's /sys is
not mounted (onnxruntime crashes under emulation with it; without it, it only warns that cpuinfo failed).

    python tests/integration/arm64.py RUN/export --cache .tox/arm64-cache --json arm64.json
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from commands import check, fail, sh  # this folder: the script's own path comes first on sys.path

from fashionnet.parity.checks import INT8_MIN_TOP1_AGREEMENT  # the gate's limit on x86-64

REPO = Path(__file__).resolve().parents[2]
MODELS = ("model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite", "model.mcu.tflite")
KIT_FILES = ("fashionnet_edge.py", "requirements.txt", "manifest.json", "selftest.json")
SUITE = "trixie"  # Raspberry Pi OS's current Debian release (Python 3.13)
MIRROR = "http://deb.debian.org/debian"
ROOTFS_PACKAGES = "python3,python3-venv"
HOST_PACKAGES = {  # Debian package: the file it provides here
    "mmdebstrap": "/usr/bin/mmdebstrap",
    "arch-test": "/usr/bin/arch-test",  # mmdebstrap's check for a foreign architecture
    "qemu-user-static": "/usr/bin/qemu-aarch64-static",
    "binfmt-support": "/usr/sbin/update-binfmts",
}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IN_ROOT = "/root/fashionnet-arm64"  # the work folder inside the root file system
VENV = "/root/fashionnet-arm64-venv"  # the kit's venv there
IMAGES = 1000
BATCH = 64  # the kit's default --batch-size
SHORT_RUN = ("--epochs", "2", "--limit", "3000", "--quantize", "int8")  # without an export given
LOCK = ("UV_CONSTRAINT", "PIP_CONSTRAINT")  # tox's lock: the device installs the export's own pins only

# the kit's classifier on IMAGES.npy, probabilities saved as .npy; the same file runs in the chroot and here
PROBE = """\
import json, platform, sys, time
import numpy as np
kit, model, images, out = sys.argv[1:5]
sys.path.insert(0, kit)
import fashionnet_edge
classifier = fashionnet_edge.open_classifier(model)
x = fashionnet_edge.load_inputs([images])
start = time.perf_counter()
probs = classifier.predict(x, batch_size=int(sys.argv[5]))
seconds = time.perf_counter() - start
np.save(out, probs)
print(json.dumps({"runtime": classifier.runtime, "machine": platform.machine(), "seconds": seconds}))
"""


def host_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in LOCK}


def beside_python(name: str) -> str | None:
    """A command of this Python's venv (not always on PATH), else of PATH."""
    return shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def find_uv() -> str | None:
    return beside_python("uv")


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------------------------------
# The host: root, mmdebstrap, qemu-user-static and binfmt_misc
# ----------------------------------------------------------------------------------------------------------------


def set_up_host() -> None:
    missing = [package for package, path in HOST_PACKAGES.items() if not Path(path).exists()]
    command = f"apt-get update && apt-get install -y --no-install-recommends {' '.join(missing)}"
    if os.geteuid() != 0:
        fail("arm64 needs root (mmdebstrap, binfmt_misc, chroot)" + (f"; then: {command}" if missing else ""))
    if missing:
        if shutil.which("apt-get") is None:
            fail(f"missing {', '.join(missing)} and no apt-get to install them")
        print(f"arm64 setup: installing {', '.join(missing)}: {command}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        check(sh("apt-get", "update", "-qq", env=env), "apt-get update")
        check(sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env), "apt-get install")
    if not (BINFMT / "status").exists():
        check(sh("mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT), "mount binfmt_misc")
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        check(sh("update-binfmts", "--enable", "qemu-aarch64"), "update-binfmts --enable qemu-aarch64")
    text = entry.read_text() if entry.exists() else ""
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), "")
    if "enabled" not in text or "F" not in flags:
        # F: the kernel opens the interpreter now, so the chroot needs no copy of qemu inside it
        fail(f"binfmt qemu-aarch64 is not enabled with the F flag: {text.strip()!r}")
    print(f"arm64 setup: binfmt qemu-aarch64 enabled (flags {flags})", flush=True)


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# ----------------------------------------------------------------------------------------------------------------
# The root file system
# ----------------------------------------------------------------------------------------------------------------


def build_rootfs(cache: Path, suite: str, mirror: str) -> tuple[Path, dict]:
    """(root, how it was made): the cached root file system, built first when there is none."""
    root = cache / f"rootfs-{suite}-arm64"
    marker = cache / f"rootfs-{suite}-arm64.json"
    if marker.is_file() and (root / "usr" / "bin" / "python3").exists():
        made = json.loads(marker.read_text())
        print(f"rootfs: reusing {root} (built {made['date']} in {made['seconds']:.0f} s)", flush=True)
        return root, {**made, "cached": True}
    partial = cache / f"rootfs-{suite}-arm64.partial"
    for stale in (root, partial):
        shutil.rmtree(stale, ignore_errors=True)
    marker.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        "mmdebstrap", "--architectures=arm64", "--variant=minbase", f"--include={ROOTFS_PACKAGES}",
        suite, partial, mirror,
    ]  # fmt: skip
    started = time.monotonic()
    check(sh(*command), f"mmdebstrap {suite} arm64")
    partial.rename(root)
    made = {
        "command": " ".join(map(str, command)),
        "seconds": round(time.monotonic() - started, 1),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    marker.write_text(json.dumps(made, indent=2) + "\n")
    print(f"rootfs: built {root} in {made['seconds']:.0f} s", flush=True)
    return root, {**made, "cached": False}


def in_chroot(root: Path, *cmd, what: str, may_fail: bool = False) -> subprocess.CompletedProcess:
    """``cmd`` in the root file system: its own /proc in a private mount namespace, no /sys, a clean environment."""
    proc = sh(
        "unshare", "--mount", "--pid", "--fork", f"--mount-proc={root / 'proc'}",
        "chroot", root, "/usr/bin/env", "-i", f"PATH={CHROOT_PATH}", "HOME=/root", "LANG=C.UTF-8", *cmd,
    )  # fmt: skip
    return proc if may_fail else check(proc, what)


def probe_rootfs(root: Path) -> dict:
    """The root file system's machine, Python and glibc, asked of its own (emulated) python3."""
    code = "import json, platform as p, sys; print(json.dumps([p.machine(), sys.version.split()[0], p.libc_ver()]))"
    found = in_chroot(root, "python3", "-c", code, what="python3 in the rootfs").stdout
    machine, python, (libc, glibc) = json.loads(found)
    if machine != "aarch64" or libc != "glibc":
        fail(f"the root file system's python3 reports {machine} {libc}: expected aarch64 glibc")
    return {"machine": machine, "python": python, "glibc": glibc}


# ----------------------------------------------------------------------------------------------------------------
# Wheels and the install
# ----------------------------------------------------------------------------------------------------------------


def host_pip(cache: Path) -> list[str]:
    """A pip with `download --platform`: this Python's, else a scratch venv's (uv venv --seed)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    venv = cache / "host-pip"
    if not (venv / "bin" / "pip").exists():
        uv = find_uv() or fail("neither pip nor uv here: pip install uv")
        check(sh(uv, "venv", "--seed", "--python", sys.executable, venv, env=host_env()), "a venv with pip")
    return [str(venv / "bin" / "python"), "-m", "pip"]


def platforms(glibc: str) -> list[str]:
    """Every manylinux tag the root file system's glibc accepts: pip's --platform matches tags exactly
    (ai-edge-litert publishes manylinux_2_27 only, protobuf manylinux2014)."""
    major, minor = (int(part) for part in glibc.split(".")[:2])
    if major != 2:
        fail(f"unexpected glibc {glibc}")
    return ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, minor + 1)]


def fetch_wheels(cache: Path, requirements: Path, system: dict) -> tuple[Path, float, bool]:
    """(folder, seconds, cached): the requirements' aarch64 wheels for the root file system's Python."""
    python = ".".join(system["python"].split(".")[:2])
    key = digest(requirements.read_bytes(), python.encode(), system["glibc"].encode())
    wheels = cache / f"wheels-aarch64-cp{python.replace('.', '')}-{key}"
    if (wheels / ".complete").is_file():
        print(f"wheels: reusing {wheels}", flush=True)
        return wheels, 0.0, True
    shutil.rmtree(wheels, ignore_errors=True)
    started = time.monotonic()
    tags = [option for tag in platforms(system["glibc"]) for option in ("--platform", tag)]
    check(
        sh(*host_pip(cache), "download", *tags, "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "-r", requirements, "-d", wheels, "--quiet", env=host_env()),
        f"pip download aarch64 wheels for Python {python}",
    )  # fmt: skip
    (wheels / ".complete").write_text("")
    return wheels, time.monotonic() - started, False


def stage(root: Path, folder: Path, models: list[str], wheels: Path, images: np.ndarray) -> Path:
    """The export's kit files, models, wheels and the test images copied into the root file system."""
    work = root / IN_ROOT.lstrip("/")
    shutil.rmtree(work, ignore_errors=True)
    (work / "kit").mkdir(parents=True)
    for name in (*KIT_FILES, *models):
        shutil.copy2(folder / name, work / "kit" / name)
    shutil.copytree(wheels, work / "wheels")
    np.save(work / "images.npy", images)
    (work / "probe.py").write_text(PROBE)
    (work / "out").mkdir()
    return work


def install_in_chroot(root: Path, wheels: Path) -> tuple[float, bool]:
    """(seconds, cached): the kit's venv in the root file system, as its README says, from the wheels only;
    kept for the next run with the same wheels (emulated pip byte-compiles for minutes)."""
    marker = root / VENV.lstrip("/") / ".fashionnet-wheels"
    if marker.is_file() and marker.read_text() == wheels.name:
        print(f"install: reusing {VENV} in the rootfs (the same {wheels.name})", flush=True)
        return 0.0, True
    shutil.rmtree(root / VENV.lstrip("/"), ignore_errors=True)
    started = time.monotonic()
    in_chroot(root, "python3", "-m", "venv", VENV, what="python3 -m venv in the rootfs")
    in_chroot(root, f"{VENV}/bin/pip", "install", "--no-index", "--find-links", f"{IN_ROOT}/wheels",
              "--disable-pip-version-check", "-q", "-r", f"{IN_ROOT}/kit/requirements.txt",
              what="pip install --no-index in the rootfs")  # fmt: skip
    marker.write_text(wheels.name)
    return time.monotonic() - started, False


def x86_venv(cache: Path, requirements: Path) -> Path:
    """The x86-64 kit for the comparison: a venv with the same pins (cached per requirements.txt)."""
    venv = cache / f"x86-kit-{digest(requirements.read_bytes(), sys.version.encode())}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        uv = find_uv() or fail("uv not found: pip install uv")
        check(sh(uv, "venv", "--python", sys.executable, venv, env=host_env()), "create the x86-64 kit venv")
        check(sh(uv, "pip", "install", "--python", python, "-r", requirements, env=host_env()), "x86-64 kit install")
        (venv / ".complete").write_text("")
    return python


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------


def export_folder(given: str | None, cache: Path) -> Path:
    """RUN/export from the argument or $FASHIONNET_EXPORTED_RUN (a run folder or its export/ folder); without
    either, a short run reproduced and exported into the cache (reused when finished: reproduce resumes)."""
    given = given or os.environ.get("FASHIONNET_EXPORTED_RUN")
    if not given:
        cli = beside_python("fashionnet")
        if cli is None:
            fail("give RUN/export, set FASHIONNET_EXPORTED_RUN, or install fashionnet[tensorflow,export]")
        given = cache / "short-run"
        check(sh(cli, "reproduce", *SHORT_RUN, "--out", given, env=host_env()), "fashionnet reproduce (short run)")
    folder = Path(given).resolve()
    if not (folder / "fashionnet_edge.py").is_file() and (folder / "export" / "fashionnet_edge.py").is_file():
        folder = folder / "export"
    missing = [name for name in KIT_FILES if not (folder / name).is_file()]
    if missing:
        fail(f"{folder} is not an export folder: it lacks {', '.join(missing)}")
    return folder


def test_images(count: int) -> np.ndarray:
    """The first ``count`` Fashion-MNIST test images, uint8 (count, 28, 28)."""
    try:
        from fashionnet.core.data import find_data_dir

        data = find_data_dir(download=False)
    except Exception as exc:  # noqa: BLE001 - fashionnet not importable here, or no data: named in one line
        fail(f"Fashion-MNIST test images not found ({exc}); set FASHIONNET_DATA")
    raw = gzip.decompress((data / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    if len(images) < count:
        fail(f"the test set holds {len(images)} images, fewer than {count}")
    return images[:count].copy()


# ----------------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------------


def gated(model: str) -> str | None:
    """What a model must hold: "x86" (fp32: top-1 as x86-64 on every image), "keras" (int8: top-1 as Keras on
    at least INT8_MIN_TOP1_AGREEMENT), None (the microcontroller model: reported)."""
    return None if ".mcu." in model else ("keras" if ".int8." in model else "x86")


def keras_top1(folder: Path, images: np.ndarray) -> np.ndarray | None:
    """Keras's top-1 for the images, from the run's model.keras beside the export (None when there is none)."""
    model = folder.parent / "model.keras"
    if not model.is_file():
        return None
    from fashionnet.core.data import preprocess_images
    from fashionnet.parity.reference import keras_probabilities

    return keras_probabilities(model, preprocess_images(images))[0].argmax(1)


def check_model(
    root: Path, work: Path, folder: Path, x86: Path, host_out: Path, model: str, count: int, keras: np.ndarray | None
) -> dict:
    kit = f"{IN_ROOT}/kit"
    started = time.monotonic()
    done = in_chroot(root, f"{VENV}/bin/python", f"{kit}/fashionnet_edge.py", f"{kit}/{model}", "--selftest",
                     what=f"--selftest {model}", may_fail=True)  # fmt: skip
    selftest_seconds = time.monotonic() - started
    line = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()[-1]
    passed = done.returncode == 0 and f"selftest {model}: PASS" in done.stdout
    print(f"  {line} ({selftest_seconds:.0f} s)", flush=True)

    started = time.monotonic()
    arm = json.loads(
        in_chroot(root, f"{VENV}/bin/python", f"{IN_ROOT}/probe.py", kit, f"{kit}/{model}",
                  f"{IN_ROOT}/images.npy", f"{IN_ROOT}/out/{model}.npy", BATCH,
                  what=f"{model} on {count} images in the rootfs").stdout.splitlines()[-1]
    )  # fmt: skip
    arm_seconds = time.monotonic() - started
    here = json.loads(
        check(sh(x86, work / "probe.py", folder, folder / model, work / "images.npy", host_out / f"{model}.npy", BATCH,
                 env=host_env()), f"{model} on {count} images on x86-64").stdout.splitlines()[-1]
    )  # fmt: skip
    p_arm = np.load(work / "out" / f"{model}.npy").astype(np.float64)
    p_x86 = np.load(host_out / f"{model}.npy").astype(np.float64)
    if p_arm.shape != (count, 10) or p_x86.shape != (count, 10):
        fail(f"{model}: probabilities of shape {p_arm.shape} (arm64), {p_x86.shape} (x86-64): expected ({count}, 10)")
    agree = int((p_arm.argmax(1) == p_x86.argmax(1)).sum())
    with_keras = None if keras is None else int((p_arm.argmax(1) == keras).sum())
    result = {
        "model": model,
        "selftest": line,
        "selftest_passed": passed,
        "agreement": agree,
        "keras_agreement": with_keras,
        "images": count,
        "max_abs_dp": float(np.abs(p_arm - p_x86).max()),
        "gated": gated(model),
        "selftest_seconds": round(selftest_seconds, 1),
        "agreement_seconds": round(arm_seconds, 1),
        "inference_seconds_arm64": round(arm["seconds"], 2),
        "inference_seconds_x86": round(here["seconds"], 3),
        "runtime_arm64": arm["runtime"],
        "runtime_x86": here["runtime"],
        "machine_arm64": arm["machine"],
    }
    holds = {
        "x86": agree == count,
        "keras": with_keras is not None and with_keras >= INT8_MIN_TOP1_AGREEMENT * count,
        None: True,
    }[result["gated"]]
    result["passed"] = passed and holds
    keras_text = "" if with_keras is None else f", with Keras {with_keras}/{count}"
    print(
        f"  agreement with x86-64 {agree}/{count}{keras_text}, max |dp| {result['max_abs_dp']:.1e} "
        f"({arm_seconds:.0f} s)",
        flush=True,
    )
    return result


def table(results: list[dict]) -> str:
    rows = [
        "| model | selftest | top-1 as x86-64 | top-1 as Keras | max \\|Δp\\| vs x86-64 | gated on "
        "| seconds (selftest + agreement) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    gate = {"x86": "x86-64, every image", "keras": f"Keras, >= {INT8_MIN_TOP1_AGREEMENT:.1%}", None: "reported"}
    for r in results:
        keras = "-" if r["keras_agreement"] is None else f"{r['keras_agreement']}/{r['images']}"
        rows.append(
            f"| {r['model']} | {r['selftest']} | {r['agreement']}/{r['images']} | {keras} | {r['max_abs_dp']:.1e} "
            f"| {gate[r['gated']]} | {r['selftest_seconds']:.0f} + {r['agreement_seconds']:.0f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "export",
        nargs="?",
        help="RUN/export or RUN (default: $FASHIONNET_EXPORTED_RUN, else a short run reproduced into the cache)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("FASHIONNET_ARM64_CACHE", REPO / ".tox" / "arm64-cache")),
        help="the root file system, wheels and x86-64 venv, kept between runs "
        "(default: $FASHIONNET_ARM64_CACHE, else .tox/arm64-cache)",
    )
    parser.add_argument("--suite", default=SUITE, help=f"the Debian release of the root file system ({SUITE})")
    parser.add_argument("--mirror", default=MIRROR)
    parser.add_argument("--images", type=int, default=IMAGES, help=f"test images compared with x86-64 ({IMAGES})")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    started = time.monotonic()
    cache = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    folder = export_folder(args.export, cache)
    models = [name for name in MODELS if (folder / name).is_file()]
    if not models:
        fail(f"{folder} holds none of {', '.join(MODELS)}")
    images = test_images(args.images)
    keras = keras_top1(folder, images)
    if keras is None and any(gated(model) == "keras" for model in models):
        fail(f"{folder.parent / 'model.keras'} not found: the int8 models are checked against Keras's answers")
    print(f"arm64: {folder} ({', '.join(models)}), cache {cache}", flush=True)

    set_up_host()
    root, rootfs = build_rootfs(cache, args.suite, args.mirror)
    system = probe_rootfs(root)
    print(f"rootfs: {args.suite} {system['machine']}, Python {system['python']}, glibc {system['glibc']}", flush=True)
    requirements = folder / "requirements.txt"
    wheels, fetch_seconds, wheels_cached = fetch_wheels(cache, requirements, system)
    work = stage(root, folder, models, wheels, images)
    install_seconds, installed = install_in_chroot(root, wheels)
    if not installed:
        print(f"install: {len(list(wheels.glob('*.whl')))} wheels offline in {install_seconds:.0f} s", flush=True)
    x86 = x86_venv(cache, requirements)
    host_out = cache / "x86-out"
    shutil.rmtree(host_out, ignore_errors=True)
    host_out.mkdir()

    results = []
    for model in models:
        print(f"{model}:", flush=True)
        results.append(check_model(root, work, folder, x86, host_out, model, args.images, keras))
    failures = [r["model"] for r in results if not r["passed"]]
    report = {
        "export": str(folder),
        "requirements": requirements.read_text().split(),
        "host_cpu": cpu_model(),
        "rootfs": {"suite": args.suite, **system, **rootfs},
        "seconds": {
            "rootfs_build": 0.0 if rootfs["cached"] else rootfs["seconds"],
            "wheel_fetch": round(fetch_seconds, 1),
            "wheels_cached": wheels_cached,
            "install": round(install_seconds, 1),
            "install_cached": installed,
            "total": round(time.monotonic() - started, 1),
        },
        "models": results,
        "passed": not failures,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    print(
        f"\nhost CPU {report['host_cpu']}; rootfs {args.suite} arm64 Python {system['python']} "
        f"({'cached, ' if rootfs['cached'] else ''}built in {rootfs['seconds']:.0f} s); wheels "
        f"{'cached' if wheels_cached else f'fetched in {fetch_seconds:.0f} s'}; "
        f"install {'cached' if installed else f'{install_seconds:.0f} s'}; "
        f"total {report['seconds']['total']:.0f} s"
    )
    if failures:
        fail(
            f"{', '.join(failures)}: a self-test failed, an fp32 model disagrees with x86-64 or an int8 model with "
            f"Keras on more than {1 - INT8_MIN_TOP1_AGREEMENT:.1%} of the images"
        )
    print(f"{len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
