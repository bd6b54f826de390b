"""The export stage: conversion, the parity gate, atomic publishing, and the backend routes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fashionnet.convert.formats import ARTIFACT_NAMES, artifact_names
from fashionnet.errors import ExportError
from fashionnet.parity.gate import ONNX_FP32_TOLERANCE, verify_artifacts
from fashionnet.parity.report import format_report
from fashionnet.publish.stage import export_run
from tests.conftest import run_cli

ALL = ["model.onnx", "model.tflite", "model.int8.onnx", "model.int8.tflite"]


# --- no training needed ----------------------------------------------------------------------------------------


def test_artifact_names():
    assert artifact_names(("onnx", "tflite"), None) == ["model.onnx", "model.tflite"]
    assert artifact_names("onnx,tflite", "int8") == ALL
    assert set(ARTIFACT_NAMES.values()) == set(ALL) | {"model.mcu.tflite"}  # mcu: opt-in, see test_mcu.py


@pytest.mark.parametrize("formats, quantize", [(("pb",), None), ((), None), (("onnx",), "int4")])
def test_bad_options_are_export_errors(formats, quantize):
    with pytest.raises(ExportError, match="choose from"):
        artifact_names(formats, quantize)


def test_run_without_model_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match=r"has no model\.keras; train first"):
        export_run(tmp_path, ("onnx",), None)


def _graph(*nodes, output: str):
    from onnx import TensorProto, helper

    return helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 4])],
    )


def test_the_float_classifier_is_the_last_gemm_and_its_softmax():
    from onnx import helper

    from fashionnet.convert.quantize import float_classifier

    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["logits"], name="dense")
    softmax = helper.make_node("Softmax", ["logits"], ["p"], name="softmax")
    assert float_classifier(_graph(gemm, softmax, output="p")) == ["dense", "softmax"]
    matmul = helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul")
    add = helper.make_node("Add", ["m", "b"], ["logits"], name="bias")
    assert float_classifier(_graph(matmul, add, softmax, output="p")) == ["matmul", "softmax", "bias"]
    # flip averaging: two classifiers (image and mirror image), their mean after the softmaxes: all float
    twice = [helper.make_node("Gemm", [x, "w", "b"], [f"l{x}"], name=f"dense{x}") for x in ("x", "m")]
    twice += [helper.make_node("Softmax", [f"l{x}"], [f"p{x}"], name=f"softmax{x}") for x in ("x", "m")]
    twice += [
        helper.make_node("Add", ["px", "pm"], ["s"], name="sum"),
        helper.make_node("Mul", ["s", "h"], ["p"], name="half"),
    ]
    assert sorted(float_classifier(_graph(*twice, output="p"))) == sorted(
        ["densex", "densem", "softmaxx", "softmaxm", "sum", "half"]
    )
    relu = helper.make_node("Relu", ["x"], ["r"], name="relu")
    with pytest.raises(ExportError, match="output to come from a Softmax, found Relu"):
        float_classifier(_graph(relu, output="r"))
    with pytest.raises(ExportError, match="a Gemm or MatMul before the Softmax, found Relu"):
        float_classifier(_graph(relu, helper.make_node("Softmax", ["r"], ["p"]), output="p"))


def test_the_classifier_layers_are_the_softmax_dense_and_what_follows_it():
    from fashionnet.convert.tflite import classifier_layers
    from fashionnet.core.networks import build_improved_model, build_model, flip_averaged

    assert classifier_layers(build_model()) == ["probabilities"]
    assert classifier_layers(build_improved_model()) == ["probabilities"]
    assert classifier_layers(flip_averaged(build_model())) == ["probabilities", "flip_average"]


def test_the_classifier_layer_tensors_are_found_by_scope():
    from fashionnet.convert.tflite import layer_tensors

    names = ["model_1/dense_1/MatMul", "model_1/probabilities_1/MatMul;model_1/probabilities_1/BiasAdd",
             "probabilities/Softmax", "model_1/probabilities_extra_1/MatMul", "serving_default_image:0"]  # fmt: skip
    assert layer_tensors(names, "probabilities") == names[1:3]


def test_verify_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="disagree"):
        verify_artifacts({}, np.zeros((3, 10)), np.zeros((2, 28, 28, 1)), np.zeros(2))


# --- the full export of a tiny trained model (one session-wide export) -----------------------------------------


@pytest.mark.slow
@pytest.mark.export
def test_all_four_artifacts_pass(exported):
    folder, report = exported
    assert report["passed"], report["failures"]
    assert report["images"] == 10_000
    assert sorted(report["artifacts"]) == sorted(ALL)
    for name in ALL:
        entry = report["artifacts"][name]
        assert (folder / name).stat().st_size == entry["size_bytes"] > 0
        assert entry["passed"] and entry["reason"] == "all checks passed"
    for name in ("model.onnx", "model.tflite"):
        entry = report["artifacts"][name]
        assert entry["max_abs_diff"] <= entry["tolerance"]["max_abs_diff"]
        assert entry["top1_agreement"] + entry["top1_near_tie_flips"] == 10_000
    for name, count in (("model.int8.onnx", 2), ("model.int8.tflite", 1)):
        entry = report["artifacts"][name]
        assert entry["accuracy_drop_points"] <= 0.5
        assert entry["size_bytes"] < report["artifacts"][name.replace(".int8", "")]["size_bytes"] / 3
        # the int8 kernels of this CPU (and for ONNX the QDQ graph as written): each gated at 99.5 %
        assert len(entry["runtimes"]) == count and entry["tolerance"]["min_top1_agreement"] == 0.995
        for runtime in entry["runtimes"].values():
            assert runtime["top1_agreement_fraction"] >= 0.995
        assert next(iter(entry["runtimes"].values()))["top1_agreement"] == entry["top1_agreement"]
    # the folder is a complete kit, and the report is on disk in both forms
    assert {p.name for p in folder.iterdir()} == set(ALL) | {
        "parity.json", "parity.md", "fashionnet_edge.py", "web", "manifest.json", "selftest.json", "MODEL_CARD.md",
        "README.md", "requirements.txt",
    }  # fmt: skip
    assert json.loads((folder / "parity.json").read_text())["passed"] is True
    assert "model.int8.tflite" in (folder / "parity.md").read_text()
    assert not list(folder.parent.glob(".export-tmp-*"))


@pytest.mark.slow
@pytest.mark.export
def test_onnx_interface_metadata_and_checker(exported):
    import onnx

    folder, report = exported
    for name in ("model.onnx", "model.int8.onnx"):
        proto = onnx.load(str(folder / name))
        onnx.checker.check_model(proto, full_check=True)
        (inp,), (out,) = proto.graph.input, proto.graph.output
        assert inp.name == "image" and out.name == "probabilities"
        in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
        assert in_dims == ["batch", 28, 28, 1] and out_dims == ["batch", 10]
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        meta = {p.key: p.value for p in proto.metadata_props}
        from fashionnet import __version__
        from fashionnet.core.data import CLASS_NAMES

        assert json.loads(meta["class_names"]) == list(CLASS_NAMES)
        assert "/ 255" in meta["preprocessing"]
        assert meta["fashionnet_version"] == __version__
        assert meta["source_backend"] == report["source_backend"]
        raw = (folder / name).read_bytes()
        for machine_path in {str(folder.parent), str(Path.home()), "/tmp/", "/work/"}:
            assert machine_path.encode() not in raw
    int8 = onnx.load(str(folder / "model.int8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)
    assert "reduce_range" in {p.key: p.value for p in int8.metadata_props}["quantization"]


@pytest.mark.export
def test_int8_models_are_integer_up_to_a_float_classifier(exported):
    """Both int8 models quantize the convolutions and the first dense layer, not the classifier: its logits would
    flip near ties (docs/export.md); the ONNX weights use 7 of their 8 bits (no VPMADDUBSW saturation)."""
    import onnx
    from ai_edge_litert.interpreter import Interpreter
    from onnx import numpy_helper

    from fashionnet.convert.tflite import layer_tensors

    folder, _ = exported
    graph = onnx.load(str(folder / "model.int8.onnx")).graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    softmax = producers[graph.output[0].name]
    classifier = producers[softmax.input[0]]
    assert (softmax.op_type, classifier.op_type) == ("Softmax", "Gemm")
    assert initializers[classifier.input[1]].dtype == np.float32  # float weights, no DequantizeLinear
    weights = [
        producers[node.input[1]] for node in graph.node if node.op_type in ("Conv", "Gemm") and node is not classifier
    ]
    assert len(weights) == 3 and all(w.op_type == "DequantizeLinear" for w in weights)
    for w in weights:
        q = initializers[w.input[0]]
        assert q.dtype == np.int8 and -64 <= q.min() and q.max() <= 64  # 2 x 255 x 64 = 32,640 fits int16

    tensors = Interpreter(model_path=str(folder / "model.int8.tflite")).get_tensor_details()
    dtypes = {t["name"]: np.dtype(t["dtype"]) for t in tensors}
    classifier_tensors = layer_tensors(dtypes, "probabilities")
    assert classifier_tensors and all(dtypes[n] == np.float32 for n in classifier_tensors)
    conv2 = layer_tensors(dtypes, "conv2")
    assert any(dtypes[n] == np.int8 for n in conv2)


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("name", ALL)
def test_batch_dimension_is_dynamic(exported, dataset, keras_probs, name):
    from fashionnet.core.data import preprocess_images
    from fashionnet.parity.runtimes import open_runner, run_batched

    folder, report = exported
    assert report["artifacts"][name]["dynamic_batch"]["sizes"] == [1, 7]
    images = preprocess_images(dataset[1][0][:20])
    runner = open_runner(folder / name)
    outs = [run_batched(runner, images, size) for size in (1, 7, 20)]
    assert all(out.shape == (20, 10) for out in outs)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-4)
    np.testing.assert_allclose(outs[1], outs[2], atol=1e-4)
    if ".int8." not in name:
        np.testing.assert_allclose(outs[2], keras_probs[:20], atol=1e-4)


@pytest.mark.slow
@pytest.mark.export
def test_tflite_builtin_ops_and_signature(exported):
    from ai_edge_litert.interpreter import Interpreter

    folder, report = exported
    for name in ("model.tflite", "model.int8.tflite"):
        interpreter = Interpreter(model_path=str(folder / name))
        assert interpreter.get_signature_list() == {
            "serving_default": {"inputs": ["image"], "outputs": ["probabilities"]}
        }
        assert interpreter.get_input_details()[0]["dtype"] == np.float32  # documented: float32 interface for int8 too
        ops = report["artifacts"][name]["ops"]
        assert ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    int8 = Interpreter(model_path=str(folder / "model.int8.tflite"))
    assert any(t["dtype"] == np.int8 for t in int8.get_tensor_details())


@pytest.mark.slow
@pytest.mark.export
def test_perturbed_reference_fails_the_gate(exported, dataset, keras_probs):
    from fashionnet.core.data import preprocess_images

    folder, _ = exported
    images, labels = preprocess_images(dataset[1][0][:200]), dataset[1][1][:200]
    reference = keras_probs[:200].copy()
    reference[:, 0] += 3e-3  # a shift no float reordering explains
    report = verify_artifacts({"model.onnx": folder / "model.onnx"}, reference, images, labels, measure_latency=False)
    assert not report["passed"]
    (failure,) = report["failures"]
    assert failure.startswith("model.onnx: max |\u0394p| 3.0e-03 > tolerance 1e-05")
    assert "FAIL" in format_report(report)


COMPARED_CHECKS = ("max_abs_diff", "top1_agreement", "accuracy_drop", "dynamic_batch", "int8_top1_agreement")


def assert_message_states_what_holds(check: dict) -> None:
    """A passed check's message says `<=` (never `>`), a failed one says `>` or why it failed."""
    message = check["message"]
    if check["passed"]:
        assert " > " not in message and "fail" not in message, message
        if check["check"] in COMPARED_CHECKS:
            assert " <= " in message, message
    else:
        assert " <= " not in message, message
        assert " > " in message or "fail (" in message or "non-builtin" in message, message


@pytest.mark.slow
@pytest.mark.export
def test_passed_checks_read_as_passed(exported):
    _, report = exported
    checks = [check for entry in report["artifacts"].values() for check in entry["checks"]]
    assert {check["check"] for check in checks} == {*COMPARED_CHECKS, "builtin_ops"}
    for check in checks:
        assert check["passed"], check
        assert_message_states_what_holds(check)
    for entry in report["artifacts"].values():
        for check in entry["checks"]:
            if check["check"] == "max_abs_diff":
                assert f"max |\u0394p| {entry['max_abs_diff']:.1e} <= tolerance" in check["message"]
            if check["check"] == "builtin_ops":
                assert "builtin ops only" in check["message"]


@pytest.mark.slow
@pytest.mark.export
def test_failed_checks_read_as_failed_and_log_reports_each_artifact(exported, dataset, keras_probs):
    """Tolerance 0, an impossible int8 limit and 10 moved argmaxes: every failure says `>`; log gets one line each."""
    from fashionnet.core.data import preprocess_images

    folder, _ = exported
    images, labels = preprocess_images(dataset[1][0][:200]), dataset[1][1][:200]
    reference = keras_probs[:200].copy()
    reference[:10] = np.roll(reference[:10], 1, axis=1)  # Keras's top-1 moves to another class on 10 images
    names = ["model.onnx", "model.int8.onnx", "model.tflite"]
    lines = []
    report = verify_artifacts(
        {name: folder / name for name in names},
        reference,
        images,
        labels,
        onnx_tolerance=0.0,
        int8_max_drop_points=-100.0,
        measure_latency=False,
        log=lines.append,
    )
    checks = {(name, c["check"]): c for name, entry in report["artifacts"].items() for c in entry["checks"]}
    for name, check in [("model.onnx", "max_abs_diff"), ("model.onnx", "top1_agreement")]:
        assert not checks[name, check]["passed"]
    assert not checks["model.int8.onnx", "accuracy_drop"]["passed"]
    # Keras's top-1 moved on 10 of 200 images: 5 % differ on every runtime, above the 0.5 % allowed
    agreement = checks["model.int8.onnx", "int8_top1_agreement"]
    assert not agreement["passed"] and agreement["value"] >= 0.05
    assert " > 0.5% allowed" in agreement["message"] and "QDQ graph as written" in str(report)
    for check in checks.values():
        assert_message_states_what_holds(check)
    assert checks["model.onnx", "max_abs_diff"]["message"].startswith("model.onnx: max |\u0394p| ")
    assert " > tolerance 0e+00" in checks["model.onnx", "max_abs_diff"]["message"]
    assert " > limit -100.0 points" in checks["model.int8.onnx", "accuracy_drop"]["message"]

    for line, name in zip(lines, names, strict=True):
        entry = report["artifacts"][name]
        assert line.startswith(f"verified {name}: {'pass' if entry['passed'] else 'FAIL'}, "), line
        assert f"{entry['top1_agreement']}/{entry['images']} top-1" in line
        assert f"max |\u0394p| {entry['max_abs_diff']:.1e}" in line and line.endswith(" s)")


def test_log_is_optional_and_silent_without_artifacts():
    lines = []
    report = verify_artifacts({}, np.zeros((2, 10)), np.zeros((2, 28, 28, 1)), np.zeros(2), log=lines.append)
    assert lines == [] and not report["passed"]


@pytest.mark.slow
@pytest.mark.export
def test_parity_table_explains_its_columns(exported):
    _, report = exported
    text = format_report(report)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| artifact |"))
    assert "| max dp at batch 1/7 vs full |" in header and "| batch 1/7 |" not in header
    last_row = max(i for i, line in enumerate(lines) if line.startswith("|"))
    legend = lines[last_row + 2]
    assert lines[last_row + 1] == ""
    slice_images = report["artifacts"]["model.onnx"]["dynamic_batch"]["images"]
    assert f"max dp at batch 1/7 vs full = max dp when the first {slice_images} images are re-run" in legend
    assert "batch dimension is dynamic" in legend
    assert "ms/image = median single-image latency on 1 thread" in legend


@pytest.mark.slow
@pytest.mark.export
def test_tampered_export_is_rejected_and_good_export_survives(exported, tmp_path, data_dir, monkeypatch):
    """Corrupt one ONNX weight after conversion: the gate must refuse it and keep the earlier good export."""
    import onnx
    from onnx import numpy_helper

    import fashionnet.publish.stage as export_module

    run = tmp_path / "run"
    shutil.copytree(exported[0].parent, run, ignore=shutil.ignore_patterns("node_modules"))
    folder = run / "export"

    def snapshot():
        return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and "node_modules" not in p.parts}

    before = snapshot()
    real_export_model = export_module.export_model

    def tampered_export_model(*args, **kwargs):
        artifacts = real_export_model(*args, **kwargs)
        path = artifacts["model.onnx"]
        proto = onnx.load(str(path))
        biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
        weights = numpy_helper.to_array(biggest).copy()
        weights.flat[: weights.size // 10] *= -1  # flip the sign of a tenth of the dense layer's weights
        biggest.CopyFrom(numpy_helper.from_array(weights, biggest.name))
        onnx.save(proto, str(path))
        return artifacts

    monkeypatch.setattr(export_module, "export_model", tampered_export_model)
    with pytest.raises(ExportError, match=r"model\.onnx: max \|\u0394p\| .* > tolerance 1e-05") as info:
        export_run(run, ("onnx",), None, data_dir, limit=300)
    assert "export.rejected" in str(info.value)
    assert snapshot() == before  # the good export is untouched
    rejected = run / "export.rejected"
    assert (rejected / "model.onnx").is_file()
    assert json.loads((rejected / "parity.json").read_text())["passed"] is False
    assert not list(run.glob(".export-tmp-*"))


# --- other backends: the model trained on jax, converted by a tensorflow child, checked against jax Keras --------

JAX_ROUTE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from fashionnet.core.data import load_data, preprocess
    from fashionnet.core.networks import build_model
    from fashionnet.publish.stage import export_run
    run = Path(sys.argv[1]); run.mkdir()
    (x, y), _ = load_data(sys.argv[2])
    x, y = preprocess(x[:1000], y[:1000])
    model = build_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    model.save(run / "model.keras")
    report = export_run(run, ("onnx", "tflite"), None, sys.argv[2], limit=1000)
    print(json.dumps({n: a["max_abs_diff"] for n, a in report["artifacts"].items()}))
    """
)


@pytest.mark.slow
@pytest.mark.export
def test_jax_trained_model_exports_through_the_tensorflow_process(tmp_path, data_dir):
    pytest.importorskip("jax")
    run = tmp_path / "jaxrun"
    env = {**os.environ, "KERAS_BACKEND": "jax", "FASHIONNET_DATA": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", JAX_ROUTE, str(run), str(data_dir)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run / "export" / "parity.json").read_text())
    assert report["passed"] and report["keras_backend"] == "jax" and report["source_backend"] == "jax"
    assert report["artifacts"]["model.onnx"]["max_abs_diff"] <= ONNX_FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.multibackend
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_run_trained_on_another_backend_is_verified_against_that_backend(backend, tmp_path, data_dir):
    """Trained on jax/torch, exported from this tensorflow process: the record names the training backend, and the
    artifacts are checked against that backend's Keras (its accuracy is the run's own evaluation, to the image)."""
    import keras
    import onnx

    from fashionnet.runs import RunPaths, read_record

    assert keras.backend.backend() == "tensorflow"
    run = tmp_path / backend
    done = run_cli("reproduce", "--out", str(run), "--epochs", "1", "--limit", "600", "--no-export",
                   env={"KERAS_BACKEND": backend})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_record(RunPaths(run)).backend == backend
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["evaluated_with_backend"] == backend

    report = export_run(run, ("onnx",), None, data_dir)
    assert report["passed"], report["failures"]
    assert report["source_backend"] == backend and report["keras_backend"] == backend
    assert "reference_note" not in report
    assert report["keras_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    meta = {p.key: p.value for p in onnx.load(run / "export" / "model.onnx").metadata_props}
    assert meta["source_backend"] == backend


@pytest.mark.slow
@pytest.mark.export
def test_flip_averaged_model_exports_with_its_mirror_and_passes(trained_run, tmp_path, data_dir):
    """Test-time flip averaging is in the graph: every artifact still matches Keras, int8 included."""
    import onnx

    from fashionnet.core.networks import flip_averaged, load

    run = tmp_path / "flip-averaged"
    run.mkdir()
    flip_averaged(load(trained_run.model)).save(run / "model.keras")
    shutil.copy2(trained_run.config, run / "config.json")
    report = export_run(run, ("onnx", "tflite"), "int8", data_dir, limit=2000)
    assert report["passed"], report["failures"]
    assert sorted(report["artifacts"]) == sorted(ALL)
    for name in ("model.onnx", "model.tflite"):
        assert report["artifacts"][name]["max_abs_diff"] <= report["artifacts"][name]["tolerance"]["max_abs_diff"]
    graph = onnx.load(run / "export" / "model.onnx").graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["probabilities"]
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convolutions) == 4  # the two convolutions, once for the image and once for its mirror image
    assert len({node.input[1] for node in convolutions}) == 2  # ... sharing two weight tensors, not copying them


@pytest.mark.export
def test_export_command_prints_progress_and_no_library_chatter(export_command):
    """One line per stage on stdout; the converters' and LiteRT's C++ log lines stay hidden unless --debug."""
    proc = export_command  # the session's export: `fashionnet export RUN --quantize int8` in a child process
    run = Path(proc.args[proc.args.index("export") + 1])
    assert proc.stderr == "", proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("export: converting model.keras to model.onnx, model.tflite")
    verified = [line for line in lines if line.startswith("verified ")]
    assert [line.split()[1] for line in verified] == [
        "model.onnx:", "model.tflite:", "model.int8.onnx:", "model.int8.tflite:"
    ]  # fmt: skip
    assert all(": pass," in line and line.endswith(" s)") for line in verified), verified
    assert lines[-2].startswith(f"export: 4 artifacts verified and published in {run / 'export'}")
    assert lines[-1] == f"report: {run / 'report.md'}"  # the run's report.md now links the export
