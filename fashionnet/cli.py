"""The `fashionnet` command: argparse -> library calls; errors -> one line and an exit code."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from fashionnet import __version__
from fashionnet.core import console
from fashionnet.core.paths import user_path
from fashionnet.errors import FashionNetError, StorageError, describe_os_error


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=user_path,
        default=None,
        help="folder with the four Fashion-MNIST IDX .gz files (default: $FASHIONNET_DATA, the Keras cache, "
        "/usr/share/datasets/fashion-mnist, then the official download)",
    )


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from fashionnet.config import PRECISIONS, TrainConfig
    from fashionnet.core.recipes import RECIPES

    d = TrainConfig()
    p.add_argument("--out", type=user_path, required=True, help="run folder (created; rerun to resume)")
    p.add_argument("--recipe", choices=list(RECIPES), default=d.recipe, help="training recipe (default: %(default)s)")

    def per_recipe(key: str) -> str:
        return "default: " + ", ".join(f"{recipe.train_defaults()[key]} ({name})" for name, recipe in RECIPES.items())

    p.add_argument("--epochs", type=int, default=None, help=per_recipe("epochs"))
    p.add_argument("--batch-size", type=int, default=None, help=per_recipe("batch_size"))
    p.add_argument("--validation-split", type=float, default=None, help=per_recipe("validation_split"))
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="compute dtype policy; mixed_bfloat16 is opt-in, model.keras is saved float32 (default: %(default)s)",
    )
    p.add_argument(
        "--distribute",
        action="store_true",
        help="data parallel over every device, and every process of a multi-process job (jax backend; "
        "--batch-size stays the global batch; docs/distributed.md)",
    )
    p.add_argument("--force", action="store_true", help="train again even if the run folder holds a finished run")
    _add_data_dir(p)


def _config_from(args):
    from fashionnet.config import TrainConfig

    return TrainConfig.for_recipe(
        args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        seed=args.seed,
        limit=args.limit,
        precision=args.precision,
        distribute=args.distribute or None,
    )


def cmd_summary(args) -> int:
    from fashionnet.core.networks import build_model

    model = build_model()
    model.summary()
    print("Per-layer parameters (the assignment's table: conv1 832, conv2 57,672, dense 903,424, output 2,570):")
    for layer in model.layers:
        if layer.count_params():
            print(f"  {layer.name:<14} {layer.count_params():>9,}")
    print(f"  {'total':<14} {model.count_params():>9,}")
    return 0


def cmd_train(args) -> int:
    from fashionnet import pipeline

    pipeline.train(args.config, args.out, args.data_dir, force=args.force)
    return 0


def cmd_evaluate(args) -> int:
    from fashionnet import pipeline

    pipeline.evaluate(args.run, args.data_dir)
    return 0


def _formats(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


def cmd_export(args) -> int:
    from fashionnet import pipeline

    pipeline.export(args.run, _formats(args.formats), args.quantize, args.data_dir)
    return 0


def _finish_command(argv: list[str]) -> str:
    """The command line that finishes this run: the same one, without --force (which would retrain)."""
    return shlex.join(["fashionnet", *(a for a in argv if a != "--force")])


def cmd_reproduce(args) -> int:
    from fashionnet import pipeline

    pipeline.reproduce(
        args.config,
        args.out,
        args.data_dir,
        formats=_formats(args.formats),
        quantize=args.quantize,
        export=not args.no_export,
        force=args.force,
        finish_command=_finish_command(args.argv),
    )
    return 0


def cmd_predict(args) -> int:
    from fashionnet.evaluation.predict import predict, resolve_model
    from fashionnet_edge import print_predictions

    model = resolve_model(args.model)
    if model != args.model:  # a run folder: say which of its files answers
        print(f"fashionnet: using {model}", file=sys.stderr)
    probabilities, names = predict(model, args.inputs, verify=not args.no_verify)
    print_predictions(probabilities, names, model, top=args.top, as_json=args.json)  # the edge kit's format
    return 0


def cmd_bench(args) -> int:
    from fashionnet.bench.machine import resolve_backends
    from fashionnet.runs import RunPaths

    backends = resolve_backends(args.backends)  # option errors before the slow imports
    if args.run is not None and not RunPaths(args.run).model.is_file():
        raise FashionNetError(f"--run {args.run}: no model.keras there (train and export a run first)")
    from fashionnet.bench.run import Settings, run_benchmark

    improved = True if (args.improved or args.improved_run is not None) else None  # None: with --full
    settings = Settings(args.full, args.limit, args.epochs, args.latency_runs, args.throughput_runs, improved)
    if settings.epochs < 2:
        raise FashionNetError("--epochs must be >= 2 (the first epoch is excluded from the rate)")
    if settings.limit < 10:
        raise FashionNetError("--limit must be >= 10 training images")
    command = shlex.join(["fashionnet", *args.argv])
    if args.improved_run is not None and not RunPaths(args.improved_run).model.is_file():
        raise FashionNetError(f"--improved-run {args.improved_run}: no model.keras there")
    results = run_benchmark(args.out, backends, run=args.run, improved_run=args.improved_run, data_dir=args.data_dir,
                            settings=settings, command=command, test_limit=args.test_limit,
                            log=lambda m: print(m, flush=True))  # fmt: skip
    print((args.out / "bench.md").read_text())
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0 if results else 1


def cmd_launch(args) -> int:
    from fashionnet.training.launch import launch

    return launch(args.processes, args.job, devices_per_process=args.devices_per_process, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashionnet",
        description="The classic Keras Fashion-MNIST CNN on Keras 3 (KERAS_BACKEND=tensorflow|jax|torch).",
    )
    parser.add_argument("--version", action="version", version=f"fashionnet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and the native libraries' log lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, helptext: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=helptext, description=description or helptext[0].upper() + helptext[1:])

    _add_run_commands(command)
    _add_tool_commands(command)
    return parser


def _add_run_commands(command) -> None:
    """The stages of a run folder: summary, train, evaluate, reproduce, export."""
    p = command(
        "summary",
        "print the model summary and per-layer parameter counts",
        "Print the assignment's network (Keras summary) and its per-layer parameter counts: 964,498 in all.",
    )
    p.set_defaults(func=cmd_summary)

    p = command("train", "train into a run folder (resumes an interrupted run)")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    run_help = "run folder (made by `fashionnet train` or `reproduce`)"
    p = command("evaluate", "test accuracy, confusion matrix, report and plots of a run")
    p.add_argument("run", type=user_path, help=run_help)
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = command(
        "reproduce",
        "the whole assignment: train, evaluate, plots, export with parity check, report.md",
        "The whole assignment into one run folder: train, evaluate, plots, export with its parity check, "
        "report.md. Rerun the same command to resume: stages already done are skipped.",
    )
    _add_train_options(p)
    p.add_argument("--formats", default="onnx,tflite", help="comma-separated: onnx, tflite, mcu (default: %(default)s)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="also export int8 models")
    p.add_argument("--no-export", action="store_true", help="stop after the report")
    p.set_defaults(func=cmd_reproduce)

    p = command("export", "export RUN/model.keras to ONNX and TFLite, verified against Keras")
    p.add_argument("run", type=user_path, help=run_help)
    p.add_argument(
        "--formats",
        default="onnx,tflite",
        help="comma-separated: onnx, tflite, mcu (mcu: a TensorFlow Lite Micro model for microcontrollers, with "
        "--quantize int8 and fashionnet[mcu]; default: %(default)s)",
    )
    p.add_argument("--quantize", choices=["int8"], default=None, help="also write int8 models")
    _add_data_dir(p)
    p.set_defaults(func=cmd_export)


def _add_tool_commands(command) -> None:
    """predict, bench and launch."""
    from fashionnet_edge import INPUTS_HELP, add_model_options, add_output_options

    p = command("predict", "classify IDX, .npy or image files with a .keras, .onnx or .tflite model")
    p.add_argument("model", type=Path, help=".keras, .onnx or .tflite file, or a run folder (uses its model.keras)")
    p.add_argument("inputs", type=Path, nargs="+", help=INPUTS_HELP)  # Path, not user_path: printed as typed
    add_output_options(p)  # --top K and --json, exactly as the edge kit takes them; output identical to the kit's
    add_model_options(p)  # --no-verify, as the kit
    p.set_defaults(func=cmd_predict)

    p = command("bench", "training/inference speed, memory and artifact sizes; bench.json + bench.md")
    p.add_argument("--out", type=user_path, default=Path("bench"), help="output folder (default: %(default)s)")
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed backend)")
    p.add_argument("--full", action="store_true", help="longer runs: more images, epochs and repeats")
    p.add_argument("--run", type=user_path, default=None, help="an exported run folder (default: train a tiny one)")
    p.add_argument("--improved", action="store_true", help="also the improved recipe (default with --full)")
    p.add_argument("--improved-run", type=user_path, default=None, help="an exported improved-recipe run to time")
    p.add_argument("--limit", type=int, default=None, help="training images per run (default 3000; --full 12000)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per measurement, >= 2 (default 3; 4 --full)")
    p.add_argument("--latency-runs", type=int, default=None, help="batch-1 calls per runtime (default 200)")
    p.add_argument("--throughput-runs", type=int, default=None, help="batch-256 calls per runtime (default 8)")
    p.add_argument("--test-limit", type=int, default=None, help="without --run: verify the tiny export on N images")
    _add_data_dir(p)
    p.set_defaults(func=cmd_bench)

    p = command(
        "launch",
        "run train/reproduce --distribute as N processes on this machine (jax)",
        "Start a data-parallel job of N processes on this machine (127.0.0.1): each runs the fashionnet command "
        "after -- with --distribute and Keras's KERAS_DISTRIBUTION_* variables; their output is prefixed [i]; "
        "all stop when one fails or on Ctrl-C. Example: fashionnet launch --processes 2 -- train --out runs/dp",
    )
    p.add_argument("--processes", "-N", type=int, required=True, help="number of processes")
    p.add_argument("--devices-per-process", type=int, default=None, help="CPU devices per process (default 1)")
    p.add_argument("--port", type=int, default=None, help="the coordinator's port (default: a free one)")
    p.add_argument("job", nargs=argparse.REMAINDER, help="-- train|reproduce OPTIONS")
    p.set_defaults(func=cmd_launch)


# not predict (ONNX needs no backend), not bench: its children measure; a keras-sized launcher would raise the floor
# of every child's peak RSS (fork copies the high-water mark) and the edge predictor would seem to need 530 MB
KERAS_COMMANDS = ("summary", "train", "evaluate", "reproduce", "export")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    # before keras/tensorflow are imported; the fastest kernels depend on the compute precision
    console.set_up(debug_on=args.debug, precision=getattr(args, "precision", "float32"))
    from fashionnet.core.data import resolve_data_env

    resolve_data_env()
    try:
        if args.func in (cmd_train, cmd_reproduce):
            args.config = _config_from(args)  # a bad option costs no backend start-up
        if args.command in KERAS_COMMANDS:
            console.import_keras_quietly()
        return args.func(args)
    except FashionNetError as exc:
        if args.debug:
            raise
        print(f"fashionnet: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"fashionnet: {exc.hint}", file=sys.stderr)
        if exc.hard_exit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("fashionnet: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # one the library did not name (disk full, I/O error in a library's own write)
        if args.debug:
            raise
        print(f"fashionnet: error: {describe_os_error(exc)}", file=sys.stderr)
        return StorageError.exit_code


if __name__ == "__main__":
    sys.exit(main())
