"""The edge kit: input loading, the ONNX classifier and the CLI, with and without the heavy libraries."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import EDGE_KIT, blocked_edge_command, write_idx

import fashionnet_edge as edge
from fashionnet_edge import EdgeInputError, format_predictions, load_image, load_inputs
from tests.conftest import cli as fashionnet_cli

PIL = pytest.importorskip("PIL.Image")


def _garment(height: int, width: int, dark_on_light: bool) -> np.ndarray:
    """A synthetic 'shirt': a filled rectangle with sleeves, as uint8 grey."""
    img = np.zeros((height, width), np.uint8)
    h0, h1, w0, w1 = height // 4, 3 * height // 4, width // 3, 2 * width // 3
    img[h0:h1, w0:w1] = 200
    img[h0 : h0 + height // 8, width // 6 : 5 * width // 6] = 200
    return 255 - img if dark_on_light else img


# --- images -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(28, 28), (300, 200), (50, 640), (17, 9)])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_any_size_and_mode_becomes_28x28(tmp_path, size, mode):
    path = tmp_path / f"garment_{mode}.png"
    PIL.fromarray(_garment(*size, dark_on_light=False)).convert(mode).save(path)
    x = load_image(path)
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert x[0].max() == 0 and x[-1].max() == 0 or x[:, 0].max() == 0  # padded with black on the short side


def test_dark_garment_on_white_is_inverted(tmp_path):
    light, dark = tmp_path / "light.png", tmp_path / "dark.jpg"
    PIL.fromarray(_garment(120, 90, dark_on_light=False)).save(light)
    PIL.fromarray(_garment(120, 90, dark_on_light=True)).convert("RGB").save(dark, quality=95)
    a, b = load_image(light), load_image(dark)
    assert b[-1, 0] < 0.05 and b.max() > 0.5  # background (below a sleeve) black, garment light, like Fashion-MNIST
    assert np.abs(a - b).mean() < 0.05  # same garment either way round (JPEG noise aside)


def test_garment_is_cropped_and_centred(tmp_path):
    img = np.zeros((200, 200), np.uint8)
    img[10:50, 150:190] = 255  # a small square in the top-right corner
    path = tmp_path / "corner.png"
    PIL.fromarray(img).save(path)
    x = load_image(path)
    assert x.mean() > 0.9  # the square fills the whole 28 x 28 after cropping and resizing


def test_transparent_background_counts_as_white(tmp_path):
    rgba = np.zeros((60, 40, 4), np.uint8)
    rgba[15:45, 10:30] = (30, 30, 30, 255)  # dark garment; the rest transparent
    path = tmp_path / "cutout.png"
    PIL.fromarray(rgba, "RGBA").save(path)
    x = load_image(path)
    assert x[0, 0] == 0 and x.max() > 0.8


def _filled_span(x: np.ndarray) -> int:
    """How many pixels the garment (> 0.1) spans along its longer side."""
    seen = x > 0.1
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    return max(np.ptp(rows), np.ptp(cols)) + 1 if rows.size else 0


# (condition of fashionnet/bench/photos.py, the least mean correlation with the garment the photo was made from);
# the kit before the garment finder: textured 0.71, gradient 0.05, noise 0.43, second object 0.17
PHOTO_CONDITIONS = {
    "plain": 0.85,  # dark on light
    "light on dark": 0.85,
    "textured background": 0.8,
    "lighting gradient": 0.85,
    "noise": 0.85,
    "small garment": 0.85,
    "exif orientation": 0.85,
    "second object": 0.85,
    "coloured background": 0.8,  # a garment whose grey may equal its ground's
}


@pytest.mark.parametrize("condition", sorted(PHOTO_CONDITIONS))
def test_the_garment_is_found_in_a_photo(dataset, tmp_path, condition):
    """Six test garments photographed in one condition come out as the data set shows them: the same shape
    (correlation with the original 28 x 28), filling the frame's longer side."""
    from fashionnet.bench.photos import make_photo

    garments = dataset[1][0][::1601][:6]
    rng = np.random.default_rng(5)
    correlations = []
    for i, garment in enumerate(garments):
        path = tmp_path / f"photo{i}.jpg"
        path.write_bytes(make_photo(garment, condition, rng))
        x = load_image(path)
        assert _filled_span(x) >= 27, (condition, i)
        correlations.append(np.corrcoef(x.ravel(), garment.ravel().astype(np.float32))[0, 1])
    assert np.mean(correlations) >= PHOTO_CONDITIONS[condition], correlations


def test_noise_alone_is_no_garment(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    PIL.fromarray(np.clip(rng.normal(128, 6, (300, 400, 3)), 0, 255).astype(np.uint8)).save(path)
    with pytest.raises(EdgeInputError, match=r"noise.png: no garment found"):
        load_image(path)


def test_blank_image_and_non_image_are_rejected(tmp_path):
    blank = tmp_path / "blank.png"
    PIL.new("L", (40, 40), 255).save(blank)
    with pytest.raises(EdgeInputError, match="no garment found"):
        load_image(blank)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(EdgeInputError, match="fake.png: not a readable PNG/JPEG"):
        load_image(fake)


@pytest.mark.parametrize("size", [(30_000, 30_000), (7_000, 6_000)])
def test_an_image_claiming_too_many_pixels_is_refused_before_decoding(tmp_path, size):
    """30,000^2 (Pillow's own bomb error, 900 MP) and 42 MP (under Pillow's limit, 42 MB decoded) alike."""
    from test_cli import png_header_only

    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(*size))
    with pytest.raises(EdgeInputError) as info:
        load_image(path)
    assert str(info.value) == f"{path}: image too large: {size[0] * size[1]:,} pixels, at most 40,000,000 allowed"


# --- arrays and IDX ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28), (3, 28, 28), (3, 28, 28, 1)])
def test_npy_shapes_and_uint8_scaling(tmp_path, shape):
    data = np.full(shape, 255, np.uint8)
    np.save(tmp_path / "x.npy", data)
    x = load_inputs([tmp_path / "x.npy"])
    assert x.shape == ((1,) if len(shape) == 2 else (3,)) + (28, 28, 1) and x.dtype == np.float32
    assert np.all(x == 1.0)


def test_idx_raw_and_gz_and_mixed_inputs(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    raw = write_idx(tmp_path / "imgs-idx3-ubyte", images)
    gz = tmp_path / "imgs-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    np.save(tmp_path / "one.npy", np.zeros((28, 28), np.float32))
    x, names = edge.load_inputs_named([raw, gz, tmp_path / "one.npy"])
    assert x.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(x[:2, ..., 0], images / np.float32(255))
    np.testing.assert_array_equal(x[:2], x[2:4])
    assert names[1] == f"{raw}[1]" and names[4] == f"{tmp_path / 'one.npy'}[0]"


BAD_INPUTS = {
    "wrong_shape.npy": (lambda p: np.save(p, np.zeros((5, 32, 32), np.uint8)), "wrong shape.*found \\(5, 32, 32\\)"),
    "nan.npy": (lambda p: np.save(p, np.full((1, 28, 28), np.nan, np.float32)), "finite"),
    "inf.npy": (lambda p: np.save(p, np.full((28, 28), np.inf)), "finite"),
    "range.npy": (lambda p: np.save(p, np.full((28, 28), 255.0)), "must be in \\[0, 1\\]"),
    "empty.npy": (lambda p: np.save(p, np.zeros((0, 28, 28), np.uint8)), "empty"),
    "int64.npy": (lambda p: np.save(p, np.zeros((28, 28), np.int64)), "wrong dtype.*int64"),
    "truncated.npy": (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr'"), "not a readable .npy"),
    "notes.txt": (lambda p: p.write_text("hello"), "unsupported input"),
    "truncated.gz": (lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(100))[:20]), "corrupt or trunc"),
    "labels-idx1-ubyte": (lambda p: write_idx(p, np.zeros(5, np.uint8)), "uint8 images"),
    "short-idx3-ubyte": (lambda p: p.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28])), "size"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_inputs_are_edge_input_errors_naming_the_file(tmp_path, name):
    make, pattern = BAD_INPUTS[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(EdgeInputError, match=pattern) as info:
        load_inputs([path])
    assert name in str(info.value)


def test_missing_file_and_no_inputs():
    with pytest.raises(EdgeInputError, match="no such file"):
        load_inputs(["/nonexistent/x.npy"])
    with pytest.raises(EdgeInputError, match="no inputs"):
        load_inputs([])


def test_validate_batch():
    good = np.zeros((2, 28, 28, 1), np.float32)
    assert edge.validate_batch(good) is good
    for bad in (good[..., 0], good.astype(np.float64), good + 2, np.zeros((0, 28, 28, 1), np.float32)):
        with pytest.raises(EdgeInputError):
            edge.validate_batch(bad)


def test_edge_kit_imports_only_numpy_and_onnxruntime():
    source = EDGE_KIT.read_text()
    for heavy in ("keras", "tensorflow", "jax", "torch", "fashionnet."):
        assert f"import {heavy}" not in source and f"from {heavy}" not in source


# --- the output format, shared with `fashionnet predict` ---------------------------------------------------------

JSON_KEYS = ["input", "label", "index", "probability", "sure", "top", "probabilities"]


def check_text(text: str, names: list[str], top: int, probs: np.ndarray | None = None) -> list[list[int]]:
    """Every line INPUT<TAB>Class 0.1234[, ...]: K distinct classes, most likely first, 4 decimals; their indices.

    Below NOT_SURE_BELOW the classes follow "not sure: " and are at least two."""
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == len(names)
    ranked = []
    for i, (line, name) in enumerate(zip(lines, names, strict=True)):
        shown, classes = line.split("\t")
        assert shown == name
        unsure = classes.startswith("not sure: ")
        pairs = [item.rsplit(" ", 1) for item in classes.removeprefix("not sure: ").split(", ")]
        count = max(top, 2) if unsure else top
        assert len(pairs) == count and all(re.fullmatch(r"[01]\.\d{4}", value) for _, value in pairs), line
        indices = [edge.CLASS_NAMES.index(label) for label, _ in pairs]
        values = [float(value) for _, value in pairs]
        assert len(set(indices)) == count and values == sorted(values, reverse=True)
        if probs is not None:
            assert unsure == (probs[i].max() < edge.NOT_SURE_BELOW), line
            assert indices == list(np.argsort(-probs[i], kind="stable")[:count])
            np.testing.assert_allclose(values, probs[i, indices], atol=5e-5 + 1e-9)
        ranked.append(indices)
    return ranked


def check_json(text: str, model_name: str, names: list[str], top: int, probs: np.ndarray | None = None) -> list[dict]:
    """The one JSON document: keys in order, top-1 fields = top[0], floats rounded to 6 decimals; the predictions."""
    assert text.endswith("\n") and len(text.splitlines()) == 1
    document = json.loads(text)
    assert list(document) == ["model", "not_sure_below", "predictions"] and document["model"] == model_name
    assert document["not_sure_below"] == edge.NOT_SURE_BELOW
    predictions = document["predictions"]
    assert [p["input"] for p in predictions] == names
    for i, p in enumerate(predictions):
        assert list(p) == JSON_KEYS and len(p["probabilities"]) == len(edge.CLASS_NAMES) and len(p["top"]) == top
        assert all(round(v, 6) == v for v in p["probabilities"]) and abs(sum(p["probabilities"]) - 1) < 1e-4
        assert p["top"][0] == {"label": p["label"], "index": p["index"], "probability": p["probability"]}
        assert p["sure"] is (p["probability"] >= edge.NOT_SURE_BELOW)
        for entry in p["top"]:
            assert list(entry) == ["label", "index", "probability"]
            assert entry["label"] == edge.CLASS_NAMES[entry["index"]]
            assert entry["probability"] == p["probabilities"][entry["index"]]
        shown = [entry["probability"] for entry in p["top"]]
        assert shown == sorted(shown, reverse=True) and p["probability"] == max(p["probabilities"])
        assert len({entry["index"] for entry in p["top"]}) == top
        if probs is not None:
            assert [entry["index"] for entry in p["top"]] == list(np.argsort(-probs[i], kind="stable")[:top])
            np.testing.assert_allclose(p["probabilities"], probs[i], atol=5e-7 + 1e-9)
    return predictions


def _random_probs(n: int, seed: int = 0) -> np.ndarray:
    probs = np.random.default_rng(seed).dirichlet(np.full(len(edge.CLASS_NAMES), 0.3), size=n).astype(np.float32)
    probs[1] = np.float32(1 / len(edge.CLASS_NAMES))  # a full tie: equal values rank the lower class index first
    return probs


@pytest.mark.parametrize("top", [1, 3, 10])
def test_format_text_and_json(top):
    probs = _random_probs(7)
    names = ["shirt.png"] + [f"x.npy[{i}]" for i in range(6)]
    ranked = check_text(format_predictions(probs, names, "model.onnx", top=top), names, top, probs)
    assert ranked[1] == list(range(max(top, 2)))  # all equal: class order, and not sure
    predictions = check_json(
        format_predictions(probs, names, "/somewhere/model.int8.onnx", top=top, as_json=True),
        "model.int8.onnx",
        names,
        top,
        probs,
    )
    assert [p["index"] for p in predictions] == [r[0] for r in ranked]


def test_a_low_top_probability_says_not_sure_with_the_two_likeliest():
    probs = np.zeros((3, len(edge.CLASS_NAMES)), np.float32)
    probs[0, [7, 5]] = 0.41, 0.38  # Sneaker 41 %, Sandal 38 %: not sure
    probs[0, 9] = 0.21
    probs[1, 2] = 1.0  # sure
    probs[2, [4, 6]] = edge.NOT_SURE_BELOW, 1 - edge.NOT_SURE_BELOW  # at the threshold: sure
    text = format_predictions(probs, ["a.jpg", "b.jpg", "c.jpg"], "model.onnx")
    assert text.splitlines() == [
        "a.jpg\tnot sure: Sneaker 0.4100, Sandal 0.3800",
        "b.jpg\tPullover 1.0000",
        f"c.jpg\tCoat {edge.NOT_SURE_BELOW:.4f}",
    ]
    assert format_predictions(probs[:1], ["a.jpg"], "model.onnx", top=3).endswith("Ankle boot 0.2100\n")
    document = json.loads(format_predictions(probs, ["a.jpg", "b.jpg", "c.jpg"], "m.onnx", as_json=True))
    assert [p["sure"] for p in document["predictions"]] == [False, True, True]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".npy", ".gz", ""])
def test_an_empty_file_says_empty(tmp_path, suffix):
    path = tmp_path / f"photo{suffix}"
    path.write_bytes(b"")
    with pytest.raises(EdgeInputError) as info:
        load_inputs([path])
    assert str(info.value) == f"{path}: empty file (0 bytes)"


def test_format_rejects_mismatched_probabilities_and_top():
    probs = _random_probs(3)
    with pytest.raises(ValueError, match="expected \\(2, 10\\) probabilities for 2 inputs, found \\(3, 10\\)"):
        format_predictions(probs, ["a", "b"], "model.onnx")
    for top in (0, len(edge.CLASS_NAMES) + 1):
        with pytest.raises(ValueError, match="top must be from 1 to"):
            format_predictions(probs, ["a", "b", "c"], "model.onnx", top=top)


def test_cli_help_and_top_range(capsys):
    with pytest.raises(SystemExit) as info:
        edge.main(["--help"])
    assert info.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())
    for text in (edge.MODEL_HELP, edge.INPUTS_HELP, "--top K", "--json"):
        assert " ".join(text.split()) in usage
    for bad in ("0", "11", "two"):
        with pytest.raises(SystemExit) as info:
            edge.main(["model.onnx", "x.npy", "--top", bad])
        assert info.value.code == 2
        assert f"argument --top: expected an integer from 1 to {len(edge.CLASS_NAMES)}" in capsys.readouterr().err


# --- with an exported model -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.export
def test_classifier_matches_keras_and_validates(exported, dataset, keras_probs):
    from fashionnet.core.data import preprocess_images

    folder, _ = exported
    clf = edge.OnnxClassifier(folder / "model.onnx", threads=1)
    assert json.loads(clf.metadata["class_names"])[0] == "T-shirt/top"
    images = preprocess_images(dataset[1][0][:300])
    np.testing.assert_allclose(clf.predict(images, batch_size=64), keras_probs[:300], atol=1e-5)
    one_batch = clf(images[:64])  # calling it runs one batch in one inference, validated like predict
    assert one_batch.dtype == np.float32
    np.testing.assert_array_equal(one_batch, clf.predict(images[:64], batch_size=64))
    for run in (clf, clf.predict):
        with pytest.raises(EdgeInputError, match="float32"):
            run(images.astype(np.float64))
        with pytest.raises(EdgeInputError, match="shape"):
            run(images[..., 0])


@pytest.mark.slow
@pytest.mark.export
def test_cli_without_heavy_libraries_matches_keras_accuracy(exported, dataset, data_dir, keras_probs, tmp_path):
    """The kit copied to RUN/export runs where keras, tensorflow, jax, torch and fashionnet cannot be imported."""
    folder, report = exported
    test_images = data_dir / "t10k-images-idx3-ubyte.gz"
    done = subprocess.run(
        blocked_edge_command(folder, str(folder / "model.onnx"), str(test_images), "--json", "--top", "3"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = [f"{test_images}[{i}]" for i in range(10_000)]
    predictions = check_json(done.stdout, "model.onnx", names, 3)
    predicted = np.array([p["index"] for p in predictions])
    labels = dataset[1][1]
    keras_pred = keras_probs.argmax(axis=1)
    edge_accuracy, keras_accuracy = (predicted == labels).mean(), (keras_pred == labels).mean()
    assert edge_accuracy == pytest.approx(report["artifacts"]["model.onnx"]["accuracy"], abs=0)
    assert abs(edge_accuracy - keras_accuracy) <= 2 / 10_000  # near ties at most
    assert (predicted == keras_pred).sum() >= 9_998


@pytest.mark.slow
@pytest.mark.export
def test_cli_text_output_and_images(exported, tmp_path):
    folder, _ = exported
    png = tmp_path / "shirt.png"
    PIL.fromarray(_garment(90, 60, dark_on_light=True)).save(png)
    done = subprocess.run(
        [sys.executable, str(EDGE_KIT), str(folder / "model.int8.onnx"), str(png), "--top", "2", "--batch-size", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    check_text(done.stdout, [str(png)], 2)


@pytest.mark.slow
@pytest.mark.export
def test_fashionnet_predict_prints_exactly_what_the_kit_prints(exported, dataset, keras_probs, tmp_path):
    """One format: the kit (heavy libraries blocked) and `fashionnet predict` on the same model and inputs."""
    folder, _ = exported
    idx = write_idx(tmp_path / "few-idx3-ubyte", dataset[1][0][:20])
    np.save(tmp_path / "one.npy", dataset[1][0][20])
    png = tmp_path / "shirt.png"
    PIL.fromarray(_garment(90, 60, dark_on_light=True)).save(png)
    inputs = [str(idx), str(tmp_path / "one.npy"), str(png)]  # 22 images: one batch in both (kit 64, predict 256)
    names = [f"{idx}[{i}]" for i in range(20)] + [f"{tmp_path / 'one.npy'}[0]", str(png)]
    model = str(folder / "model.onnx")
    outputs = {}
    for options in (("--top", "3"), ("--top", "3", "--json")):
        kit = subprocess.run(
            blocked_edge_command(folder, model, *inputs, *options), capture_output=True, text=True, timeout=300
        )
        assert kit.returncode == 0, kit.stderr[-2000:]
        cli = fashionnet_cli("predict", model, *inputs, *options)
        assert cli.returncode == 0, cli.stderr[-2000:]
        assert cli.stdout == kit.stdout, options
        outputs[options[-1]] = kit.stdout
    keras = keras_probs[:21]  # the 20 IDX images and the .npy one; the photo has no Keras reference here
    ranked = check_text(outputs["3"], names, 3)
    predictions = check_json(outputs["--json"], "model.onnx", names, 3)
    assert [p["index"] for p in predictions] == [r[0] for r in ranked]
    np.testing.assert_allclose([p["probabilities"] for p in predictions[:21]], keras, atol=2e-5)


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("name", ["nan.npy", "wrong_shape.npy", "empty.npy", "notes.txt", "truncated.gz"])
def test_cli_bad_input_exits_2_with_one_line(exported, tmp_path, name):
    folder, _ = exported
    make, pattern = BAD_INPUTS[name]
    path = tmp_path / name
    make(path)
    done = subprocess.run(
        blocked_edge_command(folder, str(folder / "model.onnx"), str(path)), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("fashionnet_edge: error: ") and name in line and "Traceback" not in done.stderr


@pytest.mark.export  # needs onnxruntime to reject the file as a model
def test_cli_bad_model_exits_2(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x08\x01garbage")
    np.save(tmp_path / "x.npy", np.zeros((28, 28), np.uint8))
    done = subprocess.run(
        [sys.executable, str(EDGE_KIT), str(fake), str(tmp_path / "x.npy")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "not a loadable ONNX model" in done.stderr and "Traceback" not in done.stderr


def test_installed_module_is_the_repository_kit():
    """The wheel ships export/fashionnet_edge.py as the top-level module fashionnet_edge, unchanged."""
    assert Path(edge.__file__).read_bytes() == EDGE_KIT.read_bytes()
