"""Facts of this machine that bench reports: the CPU (its measured sgemm rate, an assumed fp32 peak, its int8
instructions) and the installed Keras backends."""

from __future__ import annotations

import importlib.util
import os
import platform
from pathlib import Path

from fashionnet.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")


def _cpuinfo_fields() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo (empty where there is none)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = (s.strip() for s in line.split(":", 1))
            fields.setdefault(key, value)
    return fields


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
    fields = _cpuinfo_fields()
    flags = set(fields.get("flags", "").split())
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


def _int8_isa(flags: set[str]) -> str:
    """The instructions an x86 int8 kernel multiplies with here (they differ in saturation and speed)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return platform.machine() or "unknown"
    found = [name for flag, name in (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))
             if flag in flags]  # fmt: skip
    return ", ".join(found) if found else ("AVX2 without VNNI" if "avx2" in flags else "SSE")


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def resolve_backends(text: str | None) -> list[str]:
    """--backends, or every installed backend when it is not given."""
    if text is None:
        found = installed_backends()
        if not found:
            raise ConfigError(f"no Keras backend installed: install one of fashionnet[{'], ['.join(BACKENDS)}]")
        return found
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"--backends must be a comma-separated subset of {','.join(BACKENDS)}, got {text!r}")
    missing = [b for b in backends if b not in installed_backends()]
    if missing:
        raise ConfigError(f"--backends: {', '.join(missing)} not installed in this environment")
    return list(dict.fromkeys(backends))
