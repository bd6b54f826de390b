"""What runs in bench's child processes, one job each: ``python -m fashionnet.bench --worker JOB ...``.

Each child prints its result as one JSON line (``fashionnet.core.child``); the parent (``fashionnet.bench.run``)
records the child's peak RSS with it. keras is imported inside the jobs, never by importing this module.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fashionnet.core.child import child_main, print_result
from fashionnet.core.recipes import ASSIGNMENT
from fashionnet.core.timing import call_times, summary_ms, throughput

PROG = "python -m fashionnet.bench"

# without --run: the model whose artifacts are timed; not tied to --limit, so its int8 export passes the gate even
# when the training measurements use a few hundred images
# (images, epochs) per recipe. 1 epoch (8 steps) left a ~65 % model whose int8 copy could miss the 0.5-point gate by
# a few images; the improved recipe's batch normalization needs ~300 steps before its moving statistics are usable.
TINY_RUN = {"assignment": (3000, 3), "improved": (12000, 3)}

WARMUP_CALLS = 2  # tracing, compilation, allocation
THROUGHPUT_BATCH = 256


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def _epoch_timer():
    """A Keras callback that records the time of every epoch end (keras is imported here, in the child)."""
    import keras

    class EpochEnds(keras.callbacks.Callback):
        """Times between consecutive epoch ends: everything of an epoch (training, validation, callbacks)."""

        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

        def steady_seconds(self) -> list[float]:
            intervals = [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)]
            return intervals[1:]  # the first epoch holds tracing/compilation and warm-up

    return EpochEnds()


def _rate(n_train: int, seconds: list[float]) -> dict:
    median = statistics.median(seconds)
    return {"epoch_seconds": [round(s, 3) for s in seconds], "images_per_second": n_train / median}


def train_plain(x, y, epochs: int) -> dict:
    """The assignment's code: build, compile('adam', categorical_crossentropy, accuracy), fit on numpy arrays."""
    from fashionnet.core.networks import build_model
    from fashionnet.core.recipes import split_sizes

    model = build_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    model.fit(x, y, validation_split=ASSIGNMENT.validation_split, epochs=epochs, batch_size=ASSIGNMENT.batch_size,
              verbose=0, callbacks=[timer])  # fmt: skip
    return _rate(split_sizes(len(x), ASSIGNMENT.validation_split)[0], timer.steady_seconds())


def train_plain_recipe(x, y, epochs: int, name: str) -> dict:
    """A registered recipe as plain Keras runs it: its network, compile settings and fit arguments (augmented
    batches included), without fashionnet's trainer (no backend ops of fashionnet/training/ops/)."""
    from fashionnet.core import recipes
    from fashionnet.training import fit

    recipe = recipes.get_recipe(name)
    model = fit.build(recipe)
    steps = recipes.steps_per_epoch(len(x), recipe.batch_size, recipe.validation_split)
    fit.compile_for(model, recipe, steps, epochs)
    timer = _epoch_timer()
    arguments = fit.fit_arguments(recipe, x, y, recipe.batch_size, recipe.validation_split, seed=0)
    model.fit(**arguments, epochs=epochs, verbose=0, callbacks=[timer])
    return _rate(recipes.split_sizes(len(x), recipe.validation_split)[0], timer.steady_seconds())


def train_fashionnet(dataset, limit: int, epochs: int, precision: str = "float32", recipe: str = "assignment") -> dict:
    """The trainer with its callbacks (history, atomic backup, Ctrl-C) into a temporary run folder."""
    from fashionnet.config import TrainConfig
    from fashionnet.core.recipes import split_sizes
    from fashionnet.training.trainer import train

    timer = _epoch_timer()
    config = TrainConfig.for_recipe(recipe, epochs=epochs, limit=limit, precision=precision)
    with tempfile.TemporaryDirectory(prefix="fashionnet-bench-") as run:
        train(config, Path(run) / "run", data=dataset, verbose=0, callbacks=[timer])
    return _rate(split_sizes(limit, config.validation_split)[0], timer.steady_seconds())


def worker_train(args) -> dict:
    """plain and fashionnet (and fashionnet mixed_bfloat16 if asked), alternating, in this one process."""
    import keras

    from fashionnet.core.data import load_data, preprocess

    dataset = load_data(args.data_dir)
    (x_all, y_all), _ = dataset
    x, y = preprocess(x_all[: args.limit], y_all[: args.limit])
    results: dict[str, list[dict]] = {"plain": [], "fashionnet": []}
    precisions = [p for p in (args.precisions or "").split(",") if p and p != "float32"]
    for p in precisions:
        results[f"fashionnet_{p}"] = []
    if args.improved:
        results["plain_improved"], results["fashionnet_improved"] = [], []
    for _ in range(args.repeats):
        results["plain"].append(train_plain(x, y, args.epochs))
        results["fashionnet"].append(train_fashionnet(dataset, args.limit, args.epochs))
        for p in precisions:
            results[f"fashionnet_{p}"].append(train_fashionnet(dataset, args.limit, args.epochs, p))
        if args.improved:
            results["plain_improved"].append(train_plain_recipe(x, y, args.epochs, "improved"))
            results["fashionnet_improved"].append(train_fashionnet(dataset, args.limit, args.epochs, recipe="improved"))
    summary = {}
    for mode, runs in results.items():
        rates = [r["images_per_second"] for r in runs]
        summary[mode] = {"images_per_second": statistics.median(rates), "runs": runs}
    return {"backend": keras.backend.backend(), "limit": args.limit, "epochs": args.epochs, "modes": summary}


def worker_tiny_run(args) -> dict:
    """No --run: train a tiny model of the recipe (TINY_RUN), export fp32 + int8, verified (a child process: the
    benchmark's own process stays small; a child inherits its parent's peak RSS as its ru_maxrss floor)."""
    from fashionnet.config import TrainConfig
    from fashionnet.publish.stage import export_run
    from fashionnet.training.trainer import train

    images, epochs = TINY_RUN[args.recipe]
    config = TrainConfig.for_recipe(args.recipe, epochs=epochs, limit=images)
    train(config, args.model, args.data_dir, verbose=0)
    export_run(args.model, ("onnx", "tflite"), "int8", args.data_dir, limit=args.test_limit)
    return {"run": str(args.model)}


# --------------------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------------------


def _latency_throughput(call, images, latency_runs: int, throughput_runs: int) -> dict:
    """Batch-1 latency (median, p99) and batch-256 images/s of ``call`` on ``images``."""
    one = summary_ms(call_times(call, images[:1], latency_runs, warmup=WARMUP_CALLS))
    batch = images[:THROUGHPUT_BATCH]
    return {
        "batch1_median_ms": one["median_ms"],
        "batch1_p99_ms": one["p99_ms"],
        "batch256_images_per_second": throughput(call, batch, throughput_runs, warmup=WARMUP_CALLS),
    }


def _test_images(data_dir, n: int = THROUGHPUT_BATCH):
    from fashionnet.core.data import load_data, preprocess_images

    _, (test_images, _) = load_data(data_dir)
    return preprocess_images(test_images[:n])


def worker_keras_infer(args) -> dict:
    import keras

    from fashionnet.core.networks import load as load_keras_model

    images = _test_images(args.data_dir)
    model = load_keras_model(args.model, compile=False)
    result = _latency_throughput(lambda x: model.predict_on_batch(x), images, args.latency_runs, args.throughput_runs)
    return {"backend": keras.backend.backend(), **result}


def worker_edge_infer(args) -> dict:
    """The runners the parity gate verifies (fashionnet.parity.runtimes), 1 and 2 threads, on every artifact given."""
    from fashionnet.parity.runtimes import open_runner

    images = _test_images(args.data_dir)
    out = {}
    for path in map(Path, args.artifacts):
        for threads in (1, 2):
            runner = open_runner(path, threads=threads)
            out[f"{path.name}@{threads}"] = {
                "artifact": path.name,
                "threads": threads,
                **_latency_throughput(runner, images, args.latency_runs, args.throughput_runs),
            }
    return {"results": out}


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------

WORKERS = {"train": worker_train, "keras-infer": worker_keras_infer, "edge-infer": worker_edge_infer,
           "tiny-run": worker_tiny_run}  # fmt: skip


def worker_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG)
    parser.add_argument("--worker", choices=list(WORKERS), required=True)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precisions", default="float32")
    parser.add_argument("--improved", action="store_true")
    parser.add_argument("--recipe", default="assignment")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--artifacts", nargs="*", default=[])
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--throughput-runs", type=int, default=8)
    return parser


def worker_main(argv: list[str] | None = None) -> int:
    """Run one job and print its result as the last stdout line; a FashionNetError is one stderr line."""
    args = worker_parser().parse_args(argv)
    return child_main(PROG, lambda: print_result(WORKERS[args.worker](args)))
