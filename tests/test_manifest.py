"""RUN/export/manifest.json: written by the export, checked by the edge kit and `fashionnet predict` before a model
is loaded (a modified or truncated copy is refused, naming the file and both hashes; --no-verify overrides)."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import subprocess

import pytest
from conftest import cli
from export_fixtures import blocked_edge_command

import fashionnet_edge
from fashionnet.publish.manifest import build_manifest
from fashionnet_edge import MANIFEST_FORMAT, MANIFEST_NAME, EdgeModelError, read_manifest, verify_file

REPORT = {"run": "r", "passed": True, "images": 3, "keras_accuracy": 1.0, "artifacts": {"model.onnx": {"passed": True}}}


def write_folder(folder):
    (folder / "web").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"pretend model " * 100)
    (folder / "web" / "app.js").write_text("// page\n")
    (folder / "web" / "node_modules").mkdir()
    (folder / "web" / "node_modules" / "big.wasm").write_bytes(b"\0" * 10)
    now = datetime.datetime(2026, 11, 29, 12, 0, 0, 123, tzinfo=datetime.UTC)
    manifest = build_manifest(folder, REPORT, now=now)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return manifest


def test_manifest_hashes_every_file_but_itself_and_node_modules(tmp_path):
    manifest = write_folder(tmp_path)
    assert manifest["format"] == MANIFEST_FORMAT
    assert manifest["created"] == "2026-11-29T12:00:00+00:00"
    assert sorted(manifest["files"]) == ["model.onnx", "web/app.js"]
    data = (tmp_path / "model.onnx").read_bytes()
    assert manifest["files"]["model.onnx"] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert manifest["tools"]["python"] and manifest["tools"]["numpy"]
    assert manifest["gate"]["artifacts"]["model.onnx"]["passed"] is True


def test_verify_file_accepts_the_recorded_bytes_and_names_both_hashes_otherwise(tmp_path):
    manifest = write_folder(tmp_path)
    model = tmp_path / "model.onnx"
    assert verify_file(model) == manifest["files"]["model.onnx"]["sha256"]
    original = model.read_bytes()
    for damaged in (original[:-1], original[:-1] + b"X"):  # truncated; one byte changed
        model.write_bytes(damaged)
        with pytest.raises(EdgeModelError) as error:
            verify_file(model)
        message = str(error.value)
        assert message.startswith(f"{model}: does not match manifest.json: sha256 ")
        assert hashlib.sha256(damaged).hexdigest() in message and manifest["files"]["model.onnx"]["sha256"] in message
        assert "--no-verify" in message
    (tmp_path / "other.onnx").write_bytes(b"not listed")
    assert verify_file(tmp_path / "other.onnx") is None  # a file the manifest does not list is not checked


@pytest.mark.parametrize("content", ["{not json", '{"format": "something else", "files": {}}', "[]"])
def test_an_unreadable_manifest_is_an_error_naming_it(tmp_path, content):
    (tmp_path / MANIFEST_NAME).write_text(content)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(EdgeModelError, match=r"manifest\.json: unreadable manifest .*--no-verify"):
        verify_file(tmp_path / "model.onnx")
    assert read_manifest(tmp_path / "elsewhere") is None


@pytest.mark.export
def test_the_export_writes_a_manifest_of_what_it_verified(exported):
    folder, report = exported
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    on_disk = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME and "node_modules" not in p.parts
    )
    assert sorted(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == fashionnet_edge.sha256_file(folder / name), name
    assert manifest["gate"]["passed"] is True
    assert set(manifest["gate"]["artifacts"]) == set(report["artifacts"])
    record = manifest["run"]["record"]
    assert record["config"]["epochs"] == 2 and record["environment"]["backend"]  # the session's trained run
    assert {"keras", "onnxruntime", "tf2onnx", "onnx"} <= set(manifest["tools"])


@pytest.mark.export
def test_edge_kit_and_predict_refuse_a_modified_model_unless_told_not_to_verify(exported, tmp_path, dataset):
    from export_fixtures import write_idx

    folder, _ = exported
    copy = tmp_path / "export"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("node_modules", "web"))
    model = copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: the model still loads and runs
    model.write_bytes(bytes(data))
    images = write_idx(tmp_path / "images-idx3-ubyte", dataset[1][0][:3])

    kit = subprocess.run(blocked_edge_command(copy, str(model), str(images)), capture_output=True, text=True)
    assert kit.returncode == 2 and kit.stdout == ""
    (line,) = kit.stderr.strip().splitlines()
    assert line.startswith(f"fashionnet_edge: error: {model}: does not match manifest.json: sha256 ")
    forced = subprocess.run(
        blocked_edge_command(copy, str(model), str(images), "--no-verify"), capture_output=True, text=True
    )
    assert forced.returncode == 0 and len(forced.stdout.splitlines()) == 3

    refused = cli("predict", str(model), str(images))
    assert refused.returncode != 0 and "does not match manifest.json" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert cli("predict", str(model), str(images), "--no-verify").stdout == forced.stdout
