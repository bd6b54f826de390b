"""The export stage of a run folder: convert RUN/model.keras, verify every artifact against Keras, publish.

Everything is built in a staging folder beside RUN/export/: the artifacts (fashionnet/convert/), the parity
report (fashionnet/parity/), the kits, the self-test reference, the model card and the manifest. A passing export
replaces RUN/export/ in one swap; a failing one goes to RUN/export.rejected/ and the published export is untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fashionnet_edge
from fashionnet.convert.formats import (
    ARTIFACT_NAMES,
    CALIBRATION_IMAGES,
    CALIBRATION_SEED,
    FORMATS,
    MCU,
    artifact_names,
    check_options,
)
from fashionnet.convert.process import export_model
from fashionnet.core import console
from fashionnet.core.data import load_data, preprocess_images
from fashionnet.errors import ExportError, require
from fashionnet.parity.gate import verify_artifacts
from fashionnet.parity.reference import current_backend, keras_probabilities
from fashionnet.parity.report import format_report
from fashionnet.publish.device_kit import write_device_kit
from fashionnet.publish.manifest import build_manifest
from fashionnet.publish.mcu import write_mcu_kit, write_mcu_selftest
from fashionnet.publish.model_card import MODEL_CARD_NAME, model_card
from fashionnet.publish.selftest import selftest_reference
from fashionnet.publish.web import write_web_kit
from fashionnet.runs import RunPaths, read_record_if_any, recover_dir, swap_dir, write_json, write_text
from fashionnet_edge import SELFTEST_NAME

TMP_PREFIX = ".export-tmp-"


@dataclass(frozen=True)
class Evidence:
    """What the artifacts are checked against: the test set (raw and preprocessed), the int8 calibration images
    (None without quantization), Keras's probabilities, and the backends that trained and computed them."""

    test_images: np.ndarray
    test_labels: np.ndarray
    images: np.ndarray
    calibration: np.ndarray | None
    reference: np.ndarray
    reference_backend: str
    source_backend: str


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
    log = log or (lambda message: None)
    paths = RunPaths(Path(run_dir))
    formats, quantize = check_options(formats, quantize)
    if MCU in formats:
        require("tflite_micro", "mcu")  # the microcontroller model is verified on the TensorFlow Lite Micro interpreter
    if not paths.model.is_file():
        raise ExportError(f"run {paths.root} has no model.keras; train first")
    recover_dir(paths.export_dir)
    record = read_record_if_any(paths)
    source_backend = (record.backend if record else None) or current_backend()
    evidence = gather_evidence(paths.model, data_dir, quantize, limit, source_backend)

    staging_root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=paths.root))
    try:
        staged = staging_root / paths.export_dir.name
        artifacts, report = _convert_and_verify(paths.model, staged, formats, quantize, evidence, log)
        _annotate(report, paths, evidence)
        _write_staged(RunPaths(staging_root), formats, artifacts, report, evidence, record)
        return _publish(staged, paths, report)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def gather_evidence(model_path: Path, data_dir, quantize: str | None, limit: int | None, source_backend: str):
    """The test set (first ``limit`` images), a seeded sample of training images for calibration, and Keras's
    probabilities in ``source_backend`` (or this process's backend when that one is not installed)."""
    (train_images, _), (test_images, test_labels) = load_data(data_dir)
    if limit is not None:
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    images = preprocess_images(test_images)
    calibration = None
    if quantize:
        pick = np.random.default_rng(CALIBRATION_SEED).choice(len(train_images), CALIBRATION_IMAGES, replace=False)
        calibration = preprocess_images(train_images[np.sort(pick)])
    reference, reference_backend = keras_probabilities(model_path, images, source_backend)
    return Evidence(test_images, test_labels, images, calibration, reference, reference_backend, source_backend)


def _convert_and_verify(model_path: Path, staged: Path, formats, quantize, evidence: Evidence, log):
    """({name: path} of the staged artifacts, the parity report)."""
    log(f"export: converting {model_path.name} to {', '.join(artifact_names(formats, quantize))}")
    watch = console.Stopwatch()
    with console.native_stderr_hidden():  # converters' and LiteRT's C++ log lines
        artifacts = export_model(
            model_path,
            staged,
            formats,
            quantize,
            calibration_images=evidence.calibration,
            metadata={"source_backend": evidence.source_backend},
        )
        log(f"export: converted in {watch}; verifying each against Keras on {len(evidence.images):,} test images")
        report = verify_artifacts(
            artifacts,
            evidence.reference,
            evidence.images,
            evidence.test_labels,
            keras_backend=evidence.reference_backend,
            log=log,
        )
    return artifacts, report


def _annotate(report: dict, paths: RunPaths, evidence: Evidence) -> None:
    """The run, the backends and the calibration set, added to the report."""
    report["source_backend"] = evidence.source_backend
    if evidence.reference_backend != evidence.source_backend:
        report["reference_note"] = (
            f"{evidence.source_backend} (the training backend) is not installed here: verified against "
            f"{evidence.reference_backend} Keras"
        )
    report["run"] = paths.root.name
    report["calibration_images"] = 0 if evidence.calibration is None else len(evidence.calibration)


def _write_staged(staged_paths: RunPaths, formats, artifacts, report: dict, evidence: Evidence, record) -> None:
    """Everything published beside the artifacts, into ``staged_paths.export_dir``; the manifest last."""
    staged = staged_paths.export_dir  # the staged folder has the export folder's layout
    write_json(staged_paths.parity, report)
    write_text(staged_paths.parity_md, format_report(report) + "\n")
    shutil.copy2(fashionnet_edge.__file__, staged / "fashionnet_edge.py")
    if "onnx" in formats:
        write_web_kit(staged, report, evidence.test_images, evidence.test_labels)
    micro = report["artifacts"].get(ARTIFACT_NAMES[(MCU, "int8")])
    if micro is not None and "arena_bytes" in micro:
        write_mcu_kit(staged, micro)
    if report["passed"]:
        reference_set = selftest_reference(
            artifacts, report, evidence.reference, evidence.test_images, evidence.test_labels
        )
        if reference_set["indices"]:  # none only if no artifact agrees with Keras anywhere: nothing to check
            write_json(staged / SELFTEST_NAME, reference_set)
            write_mcu_selftest(staged, reference_set)  # the kit's self-test: the same images as C arrays
        write_text(staged / MODEL_CARD_NAME, model_card(report, evidence.reference, evidence.test_labels, record))
        write_device_kit(staged, sorted(artifacts), report["run"])
    write_json(staged_paths.manifest, build_manifest(staged, report, record))  # last: it hashes the rest


def _publish(staged: Path, paths: RunPaths, report: dict) -> dict:
    """Swap a passing export into RUN/export/ (returns the report), a failing one into RUN/export.rejected/."""
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
