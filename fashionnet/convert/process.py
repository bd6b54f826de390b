"""Where the conversion runs: in this process on the tensorflow backend, else in a tensorflow child process.

Conversion runs only on the tensorflow backend (tf2onnx and the TFLite converter trace a TensorFlow graph).
A ``.keras`` file's weights are backend-agnostic, so a model trained on jax or torch is converted by a child
process ``python -m fashionnet.convert`` started with ``KERAS_BACKEND=tensorflow``; the parity check that follows
compares the artifacts against Keras in the *caller's* backend.

    python -m fashionnet.convert MODEL OUT_DIR [--formats onnx,tflite] [--quantize int8] [--calibration X.npy]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

import numpy as np

from fashionnet.convert.formats import (
    ARTIFACT_NAMES,
    FORMATS,
    MCU,
    artifact_metadata,
    artifact_names,
    check_options,
)
from fashionnet.core.child import child_main, module_command, raise_from_child, run_child
from fashionnet.errors import ExportError, MissingDependencyError, ModelError, require

MODULE = "fashionnet.convert"  # the child: python -m fashionnet.convert
CHILD = MODULE  # the conversion child's name in its error lines


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
    formats, quantize = check_options(formats, quantize)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    if quantize:
        calibration_images = _checked_calibration(calibration_images, quantize)
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


def _checked_calibration(calibration_images, quantize: str) -> np.ndarray:
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
    return calibration_images


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
        convert_here(model_path, out_dir, formats, quantize, calibration_images, metadata)
        return
    _check_export_dependencies(in_process=False)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out_dir) as scratch:
        args = [model_path, out_dir, "--formats", ",".join(formats), "--metadata", json.dumps(metadata)]
        if quantize:
            calibration = Path(scratch) / "calibration.npy"
            np.save(calibration, calibration_images)
            args += ["--quantize", quantize, "--calibration", calibration]
        done = run_child(module_command(MODULE, *args), env={"KERAS_BACKEND": "tensorflow"})
    raise_from_child(CHILD, done, "conversion in the tensorflow process failed")


def _load_for_conversion(model_path: Path):
    from fashionnet.core.data import IMAGE_SHAPE
    from fashionnet.core.networks import load

    model = load(model_path)
    model(np.zeros((1, *IMAGE_SHAPE), "float32"), training=False)  # model.export(format="onnx") refuses it uncalled
    return model


def convert_here(model_path, out_dir, formats, quantize, calibration_images, metadata) -> None:
    """The conversion proper, in this process; needs the tensorflow backend and the export extra."""
    if _current_backend() != "tensorflow":  # pragma: no cover - guarded by the callers
        raise ExportError("conversion needs KERAS_BACKEND=tensorflow")
    # the converters import tensorflow, onnx and onnxruntime: only here, once the backend and extra are checked
    from fashionnet.convert.onnx import export_onnx
    from fashionnet.convert.quantize import quantize_onnx
    from fashionnet.convert.tflite import export_mcu, export_tflite

    model = _load_for_conversion(model_path)
    out_dir = Path(out_dir)
    meta = artifact_metadata(metadata)
    if "onnx" in formats:
        fp32 = out_dir / ARTIFACT_NAMES[("onnx", None)]
        export_onnx(model, fp32, meta)
        if quantize:
            quantize_onnx(fp32, out_dir / ARTIFACT_NAMES[("onnx", quantize)], calibration_images, meta)
    if "tflite" in formats:
        export_tflite(model, out_dir, quantize, calibration_images)
    if MCU in formats:
        export_mcu(model, out_dir / ARTIFACT_NAMES[(MCU, "int8")], calibration_images)


# --------------------------------------------------------------------------------------------------------------
# Child-process entry: python -m fashionnet.convert MODEL OUT_DIR [--formats ...] [--quantize int8] ...
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--quantize", default=None)
    parser.add_argument("--calibration", type=Path, default=None, help=".npy of (N,28,28,1) float32 images")
    parser.add_argument("--metadata", default="{}", help="JSON object of extra ONNX metadata")
    args = parser.parse_args(argv)

    def convert() -> None:
        if _current_backend() != "tensorflow":
            raise ExportError(f"python -m {MODULE} needs KERAS_BACKEND=tensorflow, not {_current_backend()}")
        formats, quantize = check_options(args.formats, args.quantize)
        calibration = np.load(args.calibration) if args.calibration else None
        _check_export_dependencies(in_process=True)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        convert_here(args.model, args.out_dir, formats, quantize, calibration, json.loads(args.metadata))

    return child_main(CHILD, convert)
