"""The `fashionnet` command: argparse -> library calls; errors -> one line and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fashionnet.errors import FashionNetError


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the four Fashion-MNIST IDX .gz files (default: $FASHIONNET_DATA, the Keras cache, "
        "/usr/share/datasets/fashion-mnist, then the official download)",
    )


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from fashionnet.config import PRECISIONS, RECIPE_DEFAULTS, RECIPES, TrainConfig

    d = TrainConfig()
    p.add_argument("--out", type=Path, required=True, help="run folder (created; rerun to resume)")
    p.add_argument("--recipe", choices=RECIPES, default=d.recipe, help="training recipe (default: %(default)s)")

    def per_recipe(key: str) -> str:
        return "default: " + ", ".join(f"{RECIPE_DEFAULTS[name][key]} ({name})" for name in RECIPES)

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
    )


def cmd_summary(args) -> int:
    from fashionnet.model import build_model

    model = build_model()
    model.summary()
    print("Per-layer parameters (the assignment's table: conv1 832, conv2 57,672, dense 903,424, output 2,570):")
    for layer in model.layers:
        if layer.count_params():
            print(f"  {layer.name:<14} {layer.count_params():>9,}")
    print(f"  {'total':<14} {model.count_params():>9,}")
    return 0


def _train(args):
    config = _config_from(args)  # option errors before the slow keras import
    from fashionnet.train import train

    result = train(config, args.out, args.data_dir, force=args.force)
    if result.resumed_from_epoch:
        print(f"resumed from epoch {result.resumed_from_epoch + 1}")
    print(f"trained {len(result.history['loss'])} epochs; model saved to {result.paths.model}")
    return result


def cmd_train(args) -> int:
    _train(args)
    return 0


def _evaluate(run_dir: Path, data_dir) -> None:
    from fashionnet import plots
    from fashionnet.evaluate import crosstab_text, evaluate_run
    from fashionnet.runs import RunPaths, read_json

    paths = RunPaths(run_dir)
    result = evaluate_run(run_dir, data_dir)
    print(f"test loss {result.test_loss:.4f}  test accuracy {result.test_accuracy:.4f}")
    print(crosstab_text(result.confusion))
    print(result.report_text)
    if paths.history.exists():
        history = read_json(paths.history)
        plots.plot_train_history(history, "accuracy", paths.accuracy_png)
        plots.plot_train_history(history, "loss", paths.loss_png)
    plots.plot_confusion_matrix(result.confusion, paths.confusion_png)


def cmd_evaluate(args) -> int:
    from fashionnet.report import write_report
    from fashionnet.runs import RunPaths

    _evaluate(args.run, args.data_dir)
    if RunPaths(args.run).config.exists() and RunPaths(args.run).history.exists():
        write_report(args.run)
    return 0


def _export(run_dir: Path, formats: str, quantize: str | None, data_dir) -> None:
    from fashionnet.export import export_run
    from fashionnet.verify import format_report

    report = export_run(run_dir, formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                        quantize=quantize, data_dir=data_dir)  # fmt: skip
    print(format_report(report))


def cmd_export(args) -> int:
    _export(args.run, args.formats, args.quantize, args.data_dir)
    from fashionnet.report import write_report
    from fashionnet.runs import RunPaths

    if RunPaths(args.run).metrics.exists():
        write_report(args.run)
    return 0


def cmd_reproduce(args) -> int:
    from fashionnet.errors import MissingDependencyError
    from fashionnet.report import write_report

    _train(args)
    _evaluate(args.out, args.data_dir)
    if not args.no_export:
        try:
            _export(args.out, args.formats, args.quantize, args.data_dir)
        except MissingDependencyError as exc:
            print(f"export skipped: {exc}", file=sys.stderr)
    path = write_report(args.out)
    print(f"report: {path}")
    return 0


def cmd_predict(args) -> int:
    from fashionnet.data import CLASS_NAMES
    from fashionnet.predict import predict

    probabilities, names = predict(args.model, args.inputs)
    if args.json:
        rows = [
            {"input": name, "class": int(p.argmax()), "label": CLASS_NAMES[int(p.argmax())],
             "probabilities": [round(float(v), 6) for v in p]}
            for name, p in zip(names, probabilities, strict=True)
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
    else:
        for name, p in zip(names, probabilities, strict=True):
            k = int(p.argmax())
            print(f"{name}\t{CLASS_NAMES[k]}\t{p[k]:.4f}")
    return 0


def cmd_bench(args) -> int:
    from fashionnet.bench import _check_backends

    backends = _check_backends(args.backends)  # option errors before the slow imports
    if args.run is not None and not (args.run / "model.keras").is_file():
        raise FashionNetError(f"--run {args.run}: no model.keras there (train and export a run first)")
    from fashionnet.bench import Settings, run_benchmark

    settings = Settings(args.full, args.limit, args.epochs, args.latency_runs, args.throughput_runs)
    if settings.epochs < 2:
        raise FashionNetError("--epochs must be >= 2 (the first epoch is excluded from the rate)")
    if settings.limit < 10:
        raise FashionNetError("--limit must be >= 10 training images")
    command = "fashionnet " + " ".join(sys.argv[1:]) if sys.argv[1:] else None
    results = run_benchmark(args.out, backends, full=args.full, run=args.run, data_dir=args.data_dir,
                            settings=settings, command=command, test_limit=args.test_limit,
                            log=lambda m: print(m, flush=True))  # fmt: skip
    print((args.out / "bench.md").read_text())
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0 if results else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashionnet",
        description="The classic Keras Fashion-MNIST CNN on Keras 3 (KERAS_BACKEND=tensorflow|jax|torch).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="print the model summary and per-layer parameter counts")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("train", help="train into a run folder (resumes an interrupted run)")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy, confusion matrix, report and plots of a run")
    p.add_argument("run", type=Path)
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    for name, helptext in (
        ("reproduce", "the whole assignment: train, evaluate, plots, export with parity check, report.md"),
    ):
        p = sub.add_parser(name, help=helptext)
        _add_train_options(p)
        p.add_argument("--formats", default="onnx,tflite", help="export formats (default: %(default)s)")
        p.add_argument("--quantize", choices=["int8"], default=None, help="also export int8 models")
        p.add_argument("--no-export", action="store_true", help="stop after the report")
        p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("export", help="export RUN/model.keras to ONNX and TFLite, verified against Keras")
    p.add_argument("run", type=Path)
    p.add_argument("--formats", default="onnx,tflite", help="comma-separated: onnx, tflite (default: %(default)s)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="also write int8 models")
    _add_data_dir(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify IDX, .npy or image files with a .keras, .onnx or .tflite model")
    p.add_argument("model", type=Path)
    p.add_argument("inputs", type=Path, nargs="+")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="training/inference speed, memory and artifact sizes; bench.json + bench.md")
    p.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default: %(default)s)")
    p.add_argument("--backends", default="tensorflow,jax,torch", help="comma-separated (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="longer runs: more images, epochs and repeats")
    p.add_argument("--run", type=Path, default=None, help="an exported run folder (default: train a tiny one)")
    p.add_argument("--limit", type=int, default=None, help="training images per run (default 3000; --full 12000)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per measurement, >= 2 (default 3; 4 --full)")
    p.add_argument("--latency-runs", type=int, default=None, help="batch-1 calls per runtime (default 200)")
    p.add_argument("--throughput-runs", type=int, default=None, help="batch-256 calls per runtime (default 8)")
    p.add_argument("--test-limit", type=int, default=None, help="without --run: verify the tiny export on N images")
    _add_data_dir(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter hides our messages
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FashionNetError as exc:
        if args.debug:
            raise
        print(f"fashionnet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("fashionnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
