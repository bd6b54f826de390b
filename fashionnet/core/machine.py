"""This machine: its CPU (model, vector and int8 instructions, measured sgemm rate) and the kernel settings that
make each backend fastest on it, applied before any backend loads (``console.set_up``) and recorded by every run,
bench and parity report. No numpy or backend import at module level: the CLI reads it before those load."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

KERNELS_SET_ENV = "FASHIONNET_KERNEL_DEFAULTS"  # the kernel settings fashionnet chose (the rest were the user's)
# Every setting that changes which kernels run or how many threads they get (kernel_defaults' among them):
# recorded when set (an ISA cap such as ONEDNN_MAX_CPU_ISA=AVX2 makes a big CPU run the AVX2 kernels)
KERNEL_ENV = (
    "TF_ENABLE_ONEDNN_OPTS",
    "ONEDNN_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "XLA_FLAGS",
    "OPENBLAS_CORETYPE",
    "MKL_ENABLE_INSTRUCTIONS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
)


def kernel_defaults(precision: str = "float32") -> dict[str, str]:
    """Environment settings that give each backend its fastest kernels on this CPU for ``precision``
    (docs/benchmarks.md)."""
    defaults = {}
    if platform.machine().lower() in ("x86_64", "amd64"):
        # TensorFlow turns its oneDNN kernels on by itself only where the CPU has AVX-512 VNNI/BF16, AVX-VNNI or
        # AMX (DefaultOneDnnPolicy, tensorflow/core/util/port.cc); on AVX2-only CPUs they are faster too (#30).
        # oneDNN has no bfloat16 convolution without bf16 instructions: there TensorFlow's own kernels compute it
        onednn = precision != "mixed_bfloat16" or bf16_kernels()
        defaults["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    return defaults


def bf16_kernels() -> bool:
    """Whether oneDNN has bfloat16 kernels here: a CPU with AVX-512 BF16 or AMX, not capped below them by
    ONEDNN_MAX_CPU_ISA (AVX2, AVX512_CORE, ... have none)."""
    if not {"avx512_bf16", "amx_bf16"} & _flags():
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return cap in ("", "ALL", "DEFAULT") or any(isa in cap for isa in ("BF16", "AMX", "FP16", "AVX10"))


def check_precision_kernels(backend: str, precision: str) -> None:
    """A ConfigError, before anything is written, where tensorflow would fail mid-fit: mixed_bfloat16 with oneDNN
    turned on (by the user) on a CPU without bf16 kernels, where oneDNN cannot build a bf16 convolution."""
    from fashionnet.errors import ConfigError

    onednn_on = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower() in ("1", "true")
    if backend == "tensorflow" and precision == "mixed_bfloat16" and onednn_on and not bf16_kernels():
        cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
        has = vector_isa(_flags()) + (f" capped at {cap}" if cap else "")
        raise ConfigError(
            "--precision mixed_bfloat16 on tensorflow with TF_ENABLE_ONEDNN_OPTS=1 needs bf16 instructions (AVX-512 "
            f"BF16 or AMX) and this CPU has {has}: use --precision float32, or unset TF_ENABLE_ONEDNN_OPTS"
        )


def apply_kernel_defaults(precision: str = "float32") -> None:
    """Set kernel_defaults() where the environment has no value (a value the user set wins); child processes
    inherit them, and KERNELS_SET_ENV, so that they do not count them as the user's."""
    ours = _set_by_fashionnet()
    for key, value in kernel_defaults(precision).items():
        if key not in os.environ:
            os.environ[key] = value
            ours.add(key)
    if ours:
        os.environ[KERNELS_SET_ENV] = ",".join(sorted(ours))


def _set_by_fashionnet() -> set[str]:
    return set(filter(None, os.environ.get(KERNELS_SET_ENV, "").split(",")))


def kernel_settings() -> dict[str, dict[str, str]]:
    """What runs record: each kernel setting in the environment, its value and who chose it ("fashionnet" or
    "user")."""
    ours = _set_by_fashionnet()
    return {
        key: {"value": os.environ[key], "set_by": "fashionnet" if key in ours else "user"}
        for key in KERNEL_ENV
        if key in os.environ
    }


def describe_kernel_settings(settings: dict | None) -> str:
    """kernel_settings() as one phrase for bench.md and report.md."""
    return ", ".join(f"{k}={v['value']} (set by {v['set_by']})" for k, v in (settings or {}).items()) or "the defaults"


@functools.lru_cache(maxsize=1)
def _cpuinfo_fields() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo (empty where there is none); read once per process."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = (s.strip() for s in line.split(":", 1))
            fields.setdefault(key, value)
    return fields


def _flags() -> set[str]:
    return set(_cpuinfo_fields().get("flags", "").split())


def _flop_per_cycle(flags: set[str], vendor: str, family: str) -> tuple[int, str]:
    """fp32 FLOP per cycle per core, and why, from the vector units the CPU flags imply."""
    if "avx512f" in flags and vendor == "AuthenticAMD" and family == "25":
        return 32, "Zen 4: AVX-512 on two 256-bit FMA pipes = 2 x 8 fp32 FMA = 32 FLOP/cycle/core"
    if "avx512f" in flags and vendor == "AuthenticAMD":
        return 64, "Zen 5: two 512-bit FMA pipes = 2 x 16 fp32 FMA = 64 FLOP/cycle/core"
    if "avx512f" in flags:
        return 64, "AVX-512 with two 512-bit FMA units = 64 FLOP/cycle/core"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 with two 256-bit FMA units = 32 FLOP/cycle/core"
    return 8, "SSE: 8 FLOP/cycle/core (assumed)"


def cpu_info() -> dict:
    """Model, core count, clock, and an *assumed* fp32 peak: cores x GHz x FLOP/cycle/core (stated, not measured)."""
    fields, flags = _cpuinfo_fields(), _flags()
    cores = os.cpu_count() or 1
    try:
        ghz = float(fields.get("cpu MHz", "0")) / 1000
    except ValueError:
        ghz = 0.0
    vendor, family = fields.get("vendor_id", ""), fields.get("cpu family", "")
    per_cycle, why = _flop_per_cycle(flags, vendor, family)
    return {
        "model_name": fields.get("model name", platform.processor() or "unknown"),
        "vendor": vendor,
        "family": family,
        "model": fields.get("model", ""),
        "logical_cpus": cores,
        "ghz": round(ghz, 3),
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "avx512_vnni": "avx512_vnni" in flags or "avx_vnni" in flags,  # int8 dot products (onnxruntime u8s8)
        "amx": "amx_tile" in flags,  # Intel AMX tiles (bf16/int8): a lower int8 speed-up target there
        "fp32_flop_per_cycle_per_core": per_cycle,
        "peak_fp32_gflops": round(cores * ghz * per_cycle, 1),
        "peak_assumption": f"{cores} cores x {ghz:.2f} GHz (cpu MHz in /proc/cpuinfo, no turbo) x {why}",
        "int8_isa": _int8_isa(flags),
    }


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This CPU's achievable fp32 rate, measured: numpy's sgemm (its BLAS, all its threads) on two size x size
    float32 matrices, the best of ``repeats`` after a warm-up; bench states every row as a fraction of it."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def vector_isa(flags: set[str]) -> str:
    """The widest fp32 vector instructions the CPU has (what its training kernels can use)."""
    if "avx512f" in flags:
        isa = "AVX-512"
    elif "avx2" in flags and "fma" in flags:
        isa = "AVX2 + FMA"
    elif "avx" in flags:
        isa = "AVX"
    else:
        isa = platform.machine() or "unknown"
    return isa + (", AMX" if "amx_tile" in flags else "")


def cpu_summary() -> str:
    """One line naming this CPU for a figure: model, logical CPUs, vector instructions, and an ISA cap if one is
    set (then the kernels are those of a smaller CPU)."""
    model = _cpuinfo_fields().get("model name", platform.processor() or "unknown")
    line = f"{model}, {os.cpu_count() or 1} logical CPUs, {vector_isa(_flags())}"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return line + (f" (kernels capped: ONEDNN_MAX_CPU_ISA={cap})" if cap else "")


def _int8_isa(flags: set[str]) -> str:
    """The instructions an x86 int8 kernel multiplies with here (they differ in saturation and speed)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return platform.machine() or "unknown"
    found = [name for flag, name in (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))
             if flag in flags]  # fmt: skip
    return ", ".join(found) if found else ("AVX2 without VNNI" if "avx2" in flags else "SSE")
