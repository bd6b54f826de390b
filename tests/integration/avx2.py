"""The int8 models on an x86-64 CPU with AVX2 and FMA only (no AVX-512, no VNNI), emulated on any x86-64 machine.

The machines many users (and this project's CI) run on are of that kind, and int8 kernels differ there: without
VNNI onnxruntime multiplies u8 x s8 with VPMADDUBSW, whose 16-bit pair sums saturate unless the weights leave room
(fashionnet.convert.quantize). `qemu-x86_64-static -cpu EPYC-Rome` runs this machine's own Python, onnxruntime and
LiteRT with the CPUID of an AMD EPYC Rome (AVX2 + FMA): the libraries then pick the kernels they pick there.
Run by `tox -e avx2` (opt-in; installs qemu-user-static with apt-get when missing, as root):

    for each int8 model of RUN/export: the kit's classifier on the first N test images (default all 10,000),
    emulated and on this machine; gated: top-1 as Keras (RUN/model.keras, computed here) on >= 99.5 % of the
    images, the parity gate's limit; reported: top-1 and max |dp| against this machine. (fp32 models are not
    run: float kernels differ by rounding only, and emulated float convolutions take minutes.)

    python tests/integration/avx2.py RUN/export [--images 10000] [--json avx2.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from arm64 import keras_top1, test_images  # this folder: the same test images and Keras answers
from commands import check, fail, sh

from fashionnet.parity.checks import INT8_MIN_TOP1_AGREEMENT  # the gate's limit

MODELS = ("model.int8.onnx", "model.int8.tflite")
CPU = "EPYC-Rome"  # qemu's model of an AMD EPYC 7002: AVX2, FMA, no AVX-512 or VNNI
QEMU = "/usr/bin/qemu-x86_64-static"
BATCH = 250

PROBE = """\
import json, sys, time
import numpy as np
kit, model, images, out, batch = sys.argv[1:6]
from numpy._core._multiarray_umath import __cpu_features__ as cpu  # what CPUID reports to every library here
sys.path.insert(0, kit)
import fashionnet_edge
classifier = fashionnet_edge.open_classifier(model)
x = fashionnet_edge.load_inputs([images])
start = time.perf_counter()
np.save(out, classifier.predict(x, batch_size=int(batch)))
isa = [k for k in ("AVX2", "FMA3", "AVX512F", "AVX512_VNNI", "AVX512_SPR") if cpu.get(k)]
print(json.dumps({"runtime": classifier.runtime, "seconds": time.perf_counter() - start, "isa": isa}))
"""


def set_up_host() -> None:
    """qemu-user-static from Debian, when it is missing and this is root."""
    if Path(QEMU).is_file():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        fail(f"{QEMU} not found: install Debian's qemu-user-static (apt-get install qemu-user-static), as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    check(sh("apt-get", "update", "-qq", env=env), "apt-get update")
    check(sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-user-static", env=env),
          "apt-get install qemu-user-static")  # fmt: skip


def probe(work: Path, folder: Path, model: str, emulated: bool) -> tuple[np.ndarray, dict]:
    out = work / f"{model}.{'avx2' if emulated else 'host'}.npy"
    cmd = [sys.executable, work / "probe.py", folder, folder / model, work / "images.npy", out, BATCH]
    if emulated:
        cmd = [QEMU, "-cpu", CPU, *cmd]
    done = check(sh(*cmd), f"{model} {'emulated' if emulated else 'here'}")
    return np.load(out).astype(np.float64), json.loads(done.stdout.splitlines()[-1])


def check_model(work: Path, folder: Path, model: str, keras: np.ndarray) -> dict:
    started = time.monotonic()
    p_avx2, avx2 = probe(work, folder, model, emulated=True)
    seconds = time.monotonic() - started
    p_host, host = probe(work, folder, model, emulated=False)
    if "AVX512F" in avx2["isa"] or "AVX2" not in avx2["isa"]:
        fail(f"the emulated CPU reports {avx2['isa']}: expected AVX2 without AVX-512")
    count = len(keras)
    same_top1 = int((p_avx2.argmax(1) == p_host.argmax(1)).sum())
    with_keras = int((p_avx2.argmax(1) == keras).sum())
    max_dp = float(np.abs(p_avx2 - p_host).max())
    passed = with_keras >= INT8_MIN_TOP1_AGREEMENT * count
    result = {
        "model": model,
        "images": count,
        "top1_as_keras": with_keras,
        "top1_as_host": same_top1,
        "max_abs_dp_vs_host": max_dp,
        "passed": passed,
        "runtime": avx2["runtime"],
        "emulated_isa": avx2["isa"],
        "host_isa": host["isa"],
        "seconds_emulated": round(seconds, 1),
    }
    print(
        f"  {model}: top-1 as Keras {with_keras}/{count}, as this machine {same_top1}/{count}, max |dp| vs this "
        f"machine {max_dp:.1e}: {'pass' if passed else 'FAIL'} ({seconds:.0f} s emulated)",
        flush=True,
    )
    return result


def table(results: list[dict]) -> str:
    rows = [
        f"| model | top-1 as Keras (gated: >= {INT8_MIN_TOP1_AGREEMENT:.1%}) | top-1 as this machine "
        "| max \\|Δp\\| vs this machine | result |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['model']} | {r['top1_as_keras']}/{r['images']} | {r['top1_as_host']}/{r['images']} "
            f"| {r['max_abs_dp_vs_host']:.1e} | {'pass' if r['passed'] else 'FAIL'} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", nargs="?", help="RUN/export or RUN (default: $FASHIONNET_EXPORTED_RUN); the run's "
                        "model.keras gives Keras's answers")  # fmt: skip
    parser.add_argument("--images", type=int, default=10_000, help="test images (10,000)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    given = args.export or os.environ.get("FASHIONNET_EXPORTED_RUN")
    if not given:
        fail("no export: give RUN/export (made with --quantize int8) or set FASHIONNET_EXPORTED_RUN")
    folder = Path(given).resolve()
    folder = folder / "export" if (folder / "export").is_dir() else folder
    models = [name for name in MODELS if (folder / name).is_file()]
    if not models:
        fail(f"{folder} holds none of {', '.join(MODELS)}: export with --quantize int8")
    set_up_host()
    images = test_images(args.images)
    keras = keras_top1(folder, images)
    if keras is None:
        fail(f"{folder.parent / 'model.keras'} not found: the models are checked against Keras's answers")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fashionnet-avx2-") as scratch:
        work = Path(scratch)
        np.save(work / "images.npy", images)
        (work / "probe.py").write_text(PROBE)
        print(f"avx2: {folder} ({', '.join(models)}) on {len(images)} test images, qemu -cpu {CPU}", flush=True)
        results = [check_model(work, folder, model, keras) for model in models]
    report = {"export": str(folder), "cpu": CPU, "results": results, "seconds": round(time.monotonic() - started)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nemulated {CPU} ({', '.join(results[0]['emulated_isa'])}); total {report['seconds']} s")
    failures = [r["model"] for r in results if not r["passed"]]
    if failures:
        fail(f"{', '.join(failures)}: top-1 differs from Keras on more than {1 - INT8_MIN_TOP1_AGREEMENT:.1%} on AVX2")
    print(f"{len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
