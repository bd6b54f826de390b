"""Where a training step spends its time, per backend: ``python -m benchmarks.step_profile [--recipe R]``.

Profiles one epoch of ``fit`` (after a warm-up epoch) of a recipe's network under the trainer's compute settings
(``training.precision.compute_settings``: jax_ops on jax, torch_ops on torch), with the backend's own profiler,
and prints the ops that took the time:

* torch: ``torch.profiler``, self CPU time per aten op.
* jax: ``jax.profiler`` trace; XLA's ops summed over its worker threads and grouped by the ``op_name`` that the
  optimized HLO gives each fused op (``XLA_FLAGS=--xla_dump_to`` is set here, before jax is imported), and how
  many cores XLA kept busy on average (its thread-ms per step over the wall ms per step).
* tensorflow: ``tf.profiler`` trace (the same XSpace format, read with jax's reader when jax is installed); the
  TensorFlow ops that ran, summed over threads.

docs/benchmarks.md shows the tables this printed, before and after the backend ops it led to (training/ops).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path


def _fit_data(limit: int):
    from fashionnet.core.data import load_data, preprocess

    (x, y), _ = load_data(None)
    return preprocess(x[:limit], y[:limit])


def _model(recipe_name: str, steps: int):
    from fashionnet.core import recipes
    from fashionnet.training import fit

    recipe = recipes.get_recipe(recipe_name)
    return fit.compile_for(fit.build(recipe), recipe, steps, 2), recipe.batch_size


def profile_torch(recipe: str, limit: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    from fashionnet.training.precision import compute_settings

    x, y = _fit_data(limit)
    with compute_settings("float32"):
        model, batch = _model(recipe, limit // 300)
        model.fit(x[: limit // 5], y[: limit // 5], batch_size=batch, epochs=1, verbose=0)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            seconds = time.perf_counter() - start
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=44)
    return f"torch, {recipe}: {limit} images in {seconds:.2f} s under the profiler\n{table}"


def profile_jax(recipe: str, limit: int, rows: int, dump: Path) -> str:
    import jax
    from jax.profiler import ProfileData

    from fashionnet.training.precision import compute_settings

    x, y = _fit_data(limit)
    trace = dump / "trace"
    with compute_settings("float32"):
        model, batch = _model(recipe, limit // 300)
        model.fit(x[: limit // 5], y[: limit // 5], batch_size=batch, epochs=1, verbose=0)  # warm-up, compiles
        jax.profiler.start_trace(str(trace))
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        jax.profiler.stop_trace()
    per_op: collections.Counter = collections.Counter()
    for plane in ProfileData.from_file(str(next(trace.rglob("*.xplane.pb")))).planes:
        for line in plane.lines:
            if "XLAEigen" in line.name:  # XLA's CPU worker threads; events are the thunks (fused ops) they ran
                for event in line.events:
                    if not event.name.startswith("ThunkExecutor"):
                        per_op[event.name] += event.duration_ns
    step = max(dump.glob("*train_step*after_optimizations.txt"), key=lambda p: p.stat().st_size)
    op_names = dict(re.findall(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name=\"([^\"]+)\"", step.read_text(), re.M))
    grouped: collections.Counter = collections.Counter()
    for name, ns in per_op.items():
        label = op_names.get(name, name).replace("jit(train_step)/", "")
        grouped[re.sub(r"jit\((\w+)\)/", "", label)] += ns
    steps = -(-len(x) // batch)
    total = sum(grouped.values())
    per_step = total / 1e6 / steps
    wall = seconds * 1e3 / steps
    lines = [f"jax, {recipe}: {limit} images in {seconds:.2f} s under the profiler; XLA ops, thread-ms per step of "
             f"{batch} images (summed over threads): {per_step:.0f}",
             # XLA CPU runs each op on one thread unless the op is parallel itself: how many cores it kept busy
             f"wall ms per step: {wall:.0f}; cores busy on average: {per_step / wall:.2f} of {os.cpu_count()}",
             ]  # fmt: skip
    lines += [
        f"{ns / 1e6 / steps:9.1f} ms {100 * ns / total:5.1f} %  {label}" for label, ns in grouped.most_common(rows)
    ]
    return "\n".join(lines)


def profile_tensorflow(recipe: str, limit: int, rows: int, logdir: Path) -> str:
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        raise SystemExit("step_profile on tensorflow reads the trace with jax's XSpace reader: install jax too")
    import tensorflow as tf
    from jax.profiler import ProfileData

    from fashionnet.training.precision import compute_settings

    x, y = _fit_data(limit)
    with compute_settings("float32"):
        model, batch = _model(recipe, limit // 300)
        model.fit(x[: limit // 5], y[: limit // 5], batch_size=batch, epochs=1, verbose=0)  # warm-up, traces
        tf.profiler.experimental.start(str(logdir))
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        tf.profiler.experimental.stop()
    per_op: collections.Counter = collections.Counter()
    for plane in ProfileData.from_file(str(next(logdir.rglob("*.xplane.pb")))).planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if "python" in line.name.lower():
                continue
            for event in line.events:
                if ":" in event.name and not event.name.startswith(("$", "Executor", "Iterator")):
                    per_op[event.name.split(":")[-1]] += event.duration_ns  # "name:OpType" -> OpType
    steps = -(-len(x) // batch)
    total = sum(per_op.values())
    lines = [f"tensorflow, {recipe}: {limit} images in {seconds:.2f} s under the profiler; TensorFlow ops, thread-ms "
             f"per step of {batch} images (summed over threads): {total / 1e6 / steps:.0f}"]  # fmt: skip
    lines += [f"{ns / 1e6 / steps:9.1f} ms {100 * ns / total:5.1f} %  {op}" for op, ns in per_op.most_common(rows)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_profile", description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="assignment")
    parser.add_argument("--limit", type=int, default=6000, help="images in the profiled epoch (default 6000)")
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args(argv)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "torch":
        print(profile_torch(args.recipe, args.limit, args.rows))
    elif backend == "jax":
        with tempfile.TemporaryDirectory(prefix="fashionnet-hlo-") as dump:
            flags = f"--xla_dump_to={dump} --xla_dump_hlo_as_text --xla_dump_hlo_pass_re=NONE"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
            print(profile_jax(args.recipe, args.limit, args.rows, Path(dump)))
    else:
        with tempfile.TemporaryDirectory(prefix="fashionnet-tfprof-") as logdir:
            print(profile_tensorflow(args.recipe, args.limit, args.rows, Path(logdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
