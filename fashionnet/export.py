"""The export stage: convert a trained ``model.keras`` into ONNX and TFLite (fp32, optionally int8), verify, publish.

Conversion runs only on the tensorflow backend (tf2onnx and the TFLite converter trace a TensorFlow graph).
A ``.keras`` file's weights are backend-agnostic, so a model trained on jax or torch is converted by a child
process ``python -m fashionnet.export`` started with ``KERAS_BACKEND=tensorflow``; the parity check that follows
compares the artifacts against Keras in the *caller's* backend.

Artifacts (see docs/export.md):

* ``model.onnx``: fp32, opset 15, input ``image`` (batch, 28, 28, 1) float32, output ``probabilities`` (batch, 10).
* ``model.tflite``: fp32, TFLite builtin ops only (no Flex), signature ``serving_default``: image -> probabilities.
* ``model.int8.onnx``: onnxruntime static QDQ quantization, per-channel int8 weights, uint8 activations,
  calibrated on training images; float32 input/output like the fp32 model.
* ``model.int8.tflite``: full-integer post-training quantization (builtin int8 ops), float32 input/output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fashionnet import __version__
from fashionnet.core.child import child_main, raise_from_child, run_child
from fashionnet.errors import ExportError, MissingDependencyError, ModelError, require
from fashionnet.runs import write_bytes, write_failed

EXPORT_KEPT = "the published export is unchanged"  # artifacts are built in a staging folder

__all__ = [
    "FORMATS",
    "KNOWN_FORMATS",
    "QUANTIZATIONS",
    "ARTIFACT_NAMES",
    "PREPROCESSING",
    "export_model",
    "export_run",
    "artifact_names",
]

FORMATS = ("onnx", "tflite")  # the default export
MCU = (
    "mcu"  # opt-in: the full-integer model for TensorFlow Lite Micro (needs --quantize int8; fashionnet/publish/mcu.py)
)
KNOWN_FORMATS = (*FORMATS, MCU)
QUANTIZATIONS = (None, "int8")
ARTIFACT_NAMES = {
    ("onnx", None): "model.onnx",
    ("tflite", None): "model.tflite",
    ("onnx", "int8"): "model.int8.onnx",
    ("tflite", "int8"): "model.int8.tflite",
    (MCU, "int8"): "model.mcu.tflite",
}
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
ONNX_OPSET = 15  # tf2onnx 1.17's default; QDQ per-channel needs >= 13
PREPROCESSING = (
    "grey 28x28 image, light garment on a black background, float32 = uint8 / 255 in [0, 1], "
    "shape (batch, 28, 28, 1) NHWC"
)
CALIBRATION_IMAGES = 1000  # training images used to calibrate int8 activations (seeded random sample)
CALIBRATION_SEED = 0
CHILD = "fashionnet.export"  # the conversion child's name in its error lines
TMP_PREFIX = ".export-tmp-"


def artifact_names(formats: tuple[str, ...] | list[str], quantize: str | None) -> list[str]:
    """The file names an export of these formats produces, in a stable order."""
    formats, quantize = _check_options(formats, quantize)
    names = [ARTIFACT_NAMES[(f, None)] for f in formats if f != MCU]
    if quantize:
        names += [ARTIFACT_NAMES[(f, quantize)] for f in formats]
    return names


def _check_options(formats, quantize) -> tuple[tuple[str, ...], str | None]:
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(",") if f.strip())
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in KNOWN_FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown export format(s) {unknown or formats}: choose from {', '.join(KNOWN_FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}: choose from none, int8")
    if MCU in formats and quantize != "int8":
        raise ExportError("the mcu format is a full-integer int8 model: add --quantize int8")
    return formats, quantize


# --------------------------------------------------------------------------------------------------------------
# Conversion (tensorflow backend only)
# --------------------------------------------------------------------------------------------------------------


def export_model(
    model_path: Path,
    out_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    quantize: str | None = None,
    calibration_images: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Convert ``model_path`` (a .keras file) into ``out_dir``; returns {file name: path} of the artifacts.

    Works from any backend: on tensorflow it converts in-process, otherwise in a tensorflow child process.
    ``calibration_images`` ((N, 28, 28, 1) float32 in [0, 1], training images) is required for quantize="int8".
    ``metadata`` entries (e.g. source_backend) are written into the ONNX metadata_props.
    """
    model_path, out_dir = Path(model_path), Path(out_dir)
    formats, quantize = _check_options(formats, quantize)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    if quantize:
        if calibration_images is None:
            raise ExportError(f"quantize={quantize!r} needs calibration_images (training images)")
        calibration_images = np.asarray(calibration_images)
        if (
            calibration_images.ndim != 4
            or calibration_images.shape[1:] != (28, 28, 1)
            or calibration_images.dtype != np.float32
            or len(calibration_images) == 0
        ):
            raise ExportError(
                "calibration_images must be float32 of shape (N, 28, 28, 1), found "
                f"{calibration_images.dtype} {calibration_images.shape}"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    _convert_in_tensorflow_process(model_path, out_dir, formats, quantize, calibration_images, meta)
    produced = {}
    for name in artifact_names(formats, quantize):
        path = out_dir / name
        if not path.is_file() or path.stat().st_size == 0:
            raise ExportError(f"{name}: the converter produced no file")
        produced[name] = path
    return produced


def _current_backend() -> str:
    import keras

    return keras.backend.backend()


def _check_export_dependencies(in_process: bool) -> None:
    """tensorflow, tf2onnx, onnx and onnxruntime, or MissingDependencyError naming the export extra."""
    for module in ("tensorflow", "tf2onnx", "onnx", "onnxruntime"):
        if in_process:
            require(module, "export")
        elif importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"{module} is not installed; install it with: pip install 'fashionnet[export]'"
            )


def _convert_in_tensorflow_process(
    model_path: Path,
    out_dir: Path,
    formats: tuple[str, ...],
    quantize: str | None,
    calibration_images: np.ndarray | None,
    metadata: dict[str, str],
) -> None:
    """Run the conversion here when the backend is tensorflow, else in a ``KERAS_BACKEND=tensorflow`` child."""
    if _current_backend() == "tensorflow":
        _check_export_dependencies(in_process=True)
        _convert(model_path, out_dir, formats, quantize, calibration_images, metadata)
        return
    _check_export_dependencies(in_process=False)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out_dir) as scratch:
        command = [
            sys.executable,
            "-m",
            "fashionnet.export",
            str(model_path),
            str(out_dir),
            "--formats",
            ",".join(formats),
            "--metadata",
            json.dumps(metadata),
        ]
        if quantize:
            calibration = Path(scratch) / "calibration.npy"
            np.save(calibration, calibration_images)
            command += ["--quantize", quantize, "--calibration", str(calibration)]
        done = run_child(command, env={"KERAS_BACKEND": "tensorflow"})
    raise_from_child(CHILD, done, "conversion in the tensorflow process failed")


def _load_for_conversion(model_path: Path):
    from fashionnet.core.data import IMAGE_SHAPE
    from fashionnet.core.networks import load

    model = load(model_path)
    model(np.zeros((1, *IMAGE_SHAPE), "float32"), training=False)  # model.export(format="onnx") refuses it uncalled
    return model


def _convert(model_path, out_dir, formats, quantize, calibration_images, metadata) -> None:
    """The conversion proper; needs the tensorflow backend."""
    if _current_backend() != "tensorflow":  # pragma: no cover - guarded by the caller
        raise ExportError("conversion needs KERAS_BACKEND=tensorflow")
    model = _load_for_conversion(model_path)
    out_dir = Path(out_dir)
    meta = {
        "class_names": json.dumps(_class_names()),
        "preprocessing": PREPROCESSING,
        "fashionnet_version": __version__,
        "input": f"{INPUT_NAME}: float32 ({BATCH_DIM}, 28, 28, 1)",
        "output": f"{OUTPUT_NAME}: float32 ({BATCH_DIM}, 10), softmax over class_names",
        **metadata,
    }
    if "onnx" in formats:
        _export_onnx(model, out_dir / ARTIFACT_NAMES[("onnx", None)], meta)
        if quantize:
            quantize_onnx(
                out_dir / ARTIFACT_NAMES[("onnx", None)],
                out_dir / ARTIFACT_NAMES[("onnx", quantize)],
                calibration_images,
                meta,
            )
    if "tflite" in formats:
        _export_tflite(model, out_dir, quantize, calibration_images)
    if MCU in formats:
        _export_mcu(model, out_dir / ARTIFACT_NAMES[(MCU, "int8")], calibration_images)


def _class_names() -> list[str]:
    from fashionnet_edge import CLASS_NAMES

    return list(CLASS_NAMES)


def _export_onnx(model, path: Path, meta: dict[str, str]) -> None:
    """Keras 3's own ONNX export (tf2onnx underneath), then names, dynamic batch and metadata fixed up."""
    import onnx

    with tempfile.TemporaryDirectory(prefix=".onnx-", dir=path.parent) as scratch:
        raw = Path(scratch) / "raw.onnx"
        try:
            model.export(str(raw), format="onnx", verbose=False, opset_version=ONNX_OPSET)
        except OSError as exc:  # disk full or I/O error while the converter writes
            raise write_failed(path, exc, EXPORT_KEPT) from exc
        except Exception as exc:  # noqa: BLE001 - converter failures of any kind are export failures
            raise ExportError(f"{path.name}: tf2onnx conversion failed ({type(exc).__name__}: {exc})") from exc
        proto = onnx.load(str(raw))
    _fix_onnx_interface(proto)
    _set_onnx_metadata(proto, meta)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{path.name}: onnx.checker rejected the model ({exc})") from exc
    write_bytes(path, proto.SerializeToString())


def _rename_value(graph, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def _fix_onnx_interface(proto) -> None:
    """One input ``image``, one output ``probabilities``, both with a symbolic first dim named ``batch``."""
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"model.onnx: expected 1 input and 1 output, found {len(graph.input)} and {len(graph.output)}"
        )
    _rename_value(graph, graph.input[0].name, INPUT_NAME)
    _rename_value(graph, graph.output[0].name, OUTPUT_NAME)
    for value in (graph.input[0], graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.HasField("dim_value"):
            raise ExportError(f"model.onnx: {value.name} has a fixed batch size {dim.dim_value}, expected dynamic")
        dim.dim_param = BATCH_DIM
    graph.name = "fashionnet"
    proto.doc_string = "fashionnet: the Keras Fashion-MNIST CNN, exported by fashionnet " + __version__


def _set_onnx_metadata(proto, meta: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def quantize_onnx(
    fp32_path: Path, int8_path: Path, calibration_images: np.ndarray, meta: dict[str, str], activation_type=None
) -> None:
    """onnxruntime static quantization: QDQ format, per-channel int8 weights, uint8 activations (MinMax).

    uint8 activations x int8 weights is the pair x86's integer kernels take directly (u8s8, VPMADDUBSW/VNNI);
    int8 activations are shifted first: slower at batch 1 everywhere measured, and at batch 256 on AVX-512 and
    AMX machines (docs/benchmarks.md)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, images: np.ndarray, batch: int = 100):
            self._batches = iter([{INPUT_NAME: images[i : i + batch]} for i in range(0, len(images), batch)])

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix=".quant-", dir=int8_path.parent) as scratch:
        pre = Path(scratch) / "pre.onnx"
        raw = Path(scratch) / "int8.onnx"
        try:
            # ONNX's own shape inference covers this CNN; the symbolic pass needs sympy, which onnxruntime does not
            # install (docs/export.md: the int8 model's outputs are the same without it)
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(raw),
                Reader(calibration_images),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=activation_type or QuantType.QUInt8,  # benchmarks.quant_bench compares
                calibrate_method=CalibrationMethod.MinMax,
            )
        except OSError as exc:
            raise write_failed(int8_path, exc, EXPORT_KEPT) from exc
        except Exception as exc:  # noqa: BLE001
            raise ExportError(
                f"{int8_path.name}: onnxruntime quantization failed ({type(exc).__name__}: {exc})"
            ) from exc
        proto = onnx.load(str(raw))
    proto.graph.name = "fashionnet"
    proto.doc_string = "fashionnet: the Keras Fashion-MNIST CNN, int8 static QDQ, exported by fashionnet " + __version__
    _set_onnx_metadata(
        proto,
        {
            **meta,
            "quantization": f"static QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on "
            f"{len(calibration_images)} "
            "training images; float32 input and output",
        },
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{int8_path.name}: onnx.checker rejected the model ({exc})") from exc
    write_bytes(int8_path, proto.SerializeToString())


def _export_tflite(model, out_dir: Path, quantize: str | None, calibration_images: np.ndarray | None) -> None:
    """Keras's LiteRT route (ExportArchive -> SavedModel -> TFLiteConverter), restricted to builtin ops.

    Our own endpoint returns ``{"probabilities": ...}`` so the TFLite signature names its output (Keras's
    ``model.export(format="litert")`` calls it ``output_0`` and also allows Flex ops).
    """
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix=".savedmodel-", dir=out_dir) as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda image: {OUTPUT_NAME: model(image, training=False)},
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name=INPUT_NAME)],
        )
        archive.write_out(saved_model, verbose=False)

        def convert(int8: bool) -> bytes:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
            if int8:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                images = calibration_images

                def representative_dataset():
                    for i in range(len(images)):
                        yield [images[i : i + 1]]

                converter.representative_dataset = representative_dataset
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                # float32 in/out (quantize/dequantize inside): same interface as the fp32 model, so one runner
                # and one preprocessing serve both; the two extra ops cost nothing measurable on CPU.
                converter.inference_input_type = tf.float32
                converter.inference_output_type = tf.float32
            else:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            return converter.convert()

        targets = [(ARTIFACT_NAMES[("tflite", None)], False)]
        if quantize:
            targets.append((ARTIFACT_NAMES[("tflite", quantize)], True))
        for name, int8 in targets:
            try:
                data = convert(int8)
            except OSError as exc:
                raise write_failed(out_dir / name, exc, EXPORT_KEPT) from exc
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"{name}: TFLite conversion failed ({type(exc).__name__}: {exc})") from exc
            write_bytes(out_dir / name, data)


def _export_mcu(model, path: Path, calibration_images: np.ndarray) -> None:
    """The microcontroller model: batch 1, int8 everywhere including the input and output (TFLite Micro runs
    integer kernels only; the device quantizes its pixels with the input's scale and zero point)."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix=".savedmodel-", dir=path.parent) as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda image: {OUTPUT_NAME: model(image, training=False)},
            input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32, name=INPUT_NAME)],
        )
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [calibration_images[i : i + 1]] for i in range(len(calibration_images))
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        try:
            data = converter.convert()
        except OSError as exc:
            raise write_failed(path, exc, EXPORT_KEPT) from exc
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"{path.name}: TFLite Micro conversion failed ({type(exc).__name__}: {exc})") from exc
    write_bytes(path, data)


# --------------------------------------------------------------------------------------------------------------
# The export stage of a run folder: convert, verify, publish
# --------------------------------------------------------------------------------------------------------------


def export_run(
    run_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    quantize: str | None = None,
    data_dir: Path | None = None,
    *,
    limit: int | None = None,
    log=None,
) -> dict:
    """Export RUN/model.keras, verify every artifact against Keras, publish RUN/export/.

    The reference is Keras in the backend that trained the run (config.json), computed in a child process when
    that is not this process's backend (fashionnet/parity/reference.py); the report names both.

    ``limit`` verifies on the first N test images only (default: all 10,000). Returns the parity report.
    Progress lines (conversion, then each artifact's verification) go to ``log`` (default: none).
    On success RUN/export/ holds the artifacts, parity.json, parity.md and fashionnet_edge.py, replacing an
    earlier export; on failure an ExportError names the artifact and check, the earlier export is untouched and
    the rejected artifacts are kept in RUN/export.rejected/.
    """
    import fashionnet_edge
    from fashionnet.core import console
    from fashionnet.core.data import load_data, preprocess_images
    from fashionnet.parity.gate import format_report, verify_artifacts
    from fashionnet.parity.reference import keras_probabilities
    from fashionnet.publish.manifest import build_manifest
    from fashionnet.publish.mcu import write_mcu_kit
    from fashionnet.publish.model_card import MODEL_CARD_NAME, model_card
    from fashionnet.publish.selftest import selftest_reference
    from fashionnet.publish.web import write_web_kit
    from fashionnet.runs import RunPaths, read_record_if_any, recover_dir, swap_dir, write_json, write_text
    from fashionnet_edge import SELFTEST_NAME

    log = log or (lambda message: None)

    paths = RunPaths(Path(run_dir))
    formats, quantize = _check_options(formats, quantize)
    if MCU in formats:
        require("tflite_micro", "mcu")  # the microcontroller model is verified on the TensorFlow Lite Micro interpreter
    model_path = paths.model
    if not model_path.is_file():
        raise ExportError(f"run {paths.root} has no model.keras; train first")
    recover_dir(paths.export_dir)
    record = read_record_if_any(paths)
    source_backend = (record.backend if record else None) or _current_backend()

    (train_images, _), (test_images, test_labels) = load_data(data_dir)
    if limit is not None:
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    images = preprocess_images(test_images)
    calibration = None
    if quantize:
        pick = np.random.default_rng(CALIBRATION_SEED).choice(len(train_images), CALIBRATION_IMAGES, replace=False)
        calibration = preprocess_images(train_images[np.sort(pick)])
    reference, reference_backend = keras_probabilities(model_path, images, source_backend)

    staging_root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=paths.root))
    try:
        staged = staging_root / paths.export_dir.name
        names = ", ".join(artifact_names(formats, quantize))
        log(f"export: converting {model_path.name} to {names}")
        watch = console.Stopwatch()
        with console.native_stderr_hidden():  # converters' and LiteRT's C++ log lines
            artifacts = export_model(
                model_path,
                staged,
                formats,
                quantize,
                calibration_images=calibration,
                metadata={"source_backend": source_backend},
            )
            log(f"export: converted in {watch}; verifying each against Keras on {len(images):,} test images")
            report = verify_artifacts(
                artifacts, reference, images, test_labels, keras_backend=reference_backend, log=log
            )
        report["source_backend"] = source_backend
        if reference_backend != source_backend:
            report["reference_note"] = (
                f"{source_backend} (the training backend) is not installed here: verified against "
                f"{reference_backend} Keras"
            )
        report["run"] = paths.root.name
        report["calibration_images"] = 0 if calibration is None else len(calibration)
        staged_paths = RunPaths(staging_root)  # the staged folder has the export folder's layout
        write_json(staged_paths.parity, report)
        write_text(staged_paths.parity_md, format_report(report) + "\n")
        shutil.copy2(fashionnet_edge.__file__, staged / "fashionnet_edge.py")
        if "onnx" in formats:
            write_web_kit(staged, report, test_images, test_labels)
        micro = report["artifacts"].get(ARTIFACT_NAMES[(MCU, "int8")])
        if micro is not None and "arena_bytes" in micro:
            write_mcu_kit(staged, micro)
        if report["passed"]:
            reference_set = selftest_reference(artifacts, report, reference, test_images, test_labels)
            if reference_set["indices"]:  # none only if no artifact agrees with Keras anywhere: nothing to check
                write_json(staged / SELFTEST_NAME, reference_set)
            write_text(staged / MODEL_CARD_NAME, model_card(report, reference, test_labels, record))
        write_json(staged_paths.manifest, build_manifest(staged, report, record))  # last: it hashes the rest
        if report["passed"]:
            swap_dir(staged, paths.export_dir)
            report["export_dir"] = str(paths.export_dir)
            return report
        swap_dir(staged, paths.export_rejected)
        raise ExportError(
            "parity check failed: "
            + "; ".join(report["failures"])
            + f" (rejected artifacts kept in {paths.export_rejected})"
        )
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# Child-process entry: python -m fashionnet.export MODEL OUT_DIR [--formats ...] [--quantize int8] ...
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashionnet.export", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--quantize", default=None)
    parser.add_argument("--calibration", type=Path, default=None, help=".npy of (N,28,28,1) float32 images")
    parser.add_argument("--metadata", default="{}", help="JSON object of extra ONNX metadata")
    args = parser.parse_args(argv)

    def convert() -> None:
        if _current_backend() != "tensorflow":
            raise ExportError(f"python -m fashionnet.export needs KERAS_BACKEND=tensorflow, not {_current_backend()}")
        formats, quantize = _check_options(args.formats, args.quantize)
        calibration = np.load(args.calibration) if args.calibration else None
        _check_export_dependencies(in_process=True)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        _convert(args.model, args.out_dir, formats, quantize, calibration, json.loads(args.metadata))

    return child_main(CHILD, convert)


if __name__ == "__main__":
    sys.exit(main())
