"""The one timer of every measurement (the parity gate's latency, bench, the benchmark scripts).

Wall time of whole calls with ``time.perf_counter``, after untimed warm-up calls (tracing, allocation), summarised
as the median and the 99th percentile; the machine is shared and noisy, so no mean.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def call_times(call: Callable, x, runs: int, warmup: int = 1, per_call: int = 1) -> list[float]:
    """Seconds of each of ``runs`` timings of ``per_call`` consecutive calls of ``call(x)`` (per call), after
    ``warmup`` untimed calls."""
    for _ in range(warmup):
        call(x)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(per_call):
            call(x)
        times.append((time.perf_counter() - started) / per_call)
    return times


def percentile(times: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``times``, nearest rank."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary_ms(times: list[float]) -> dict:
    """Median and p99 of call times in milliseconds."""
    return {"median_ms": statistics.median(times) * 1e3, "p99_ms": percentile(times, 0.99) * 1e3}


def throughput(call: Callable, x, runs: int, warmup: int = 1) -> float:
    """Items per second of ``call(x)`` (``len(x)`` items per call), from the median call time."""
    return len(x) / statistics.median(call_times(call, x, runs, warmup))
