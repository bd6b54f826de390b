"""The browser kit: what the export writes (export env), and the page in headless Chromium (web env).

The browser tests compare the page with the Python edge kit on the same exported models: onnxruntime-web against
onnxruntime in Python, the JavaScript photo preprocessing against fashionnet_edge.load_image.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct

import numpy as np
import pytest
from photos import PHOTO_KINDS, make_photos

import fashionnet_edge
from fashionnet.bench.photos import CONDITIONS, make_benchmark
from fashionnet.publish.web import KIT_FORMAT, SAMPLES_PER_CLASS, kit_files, sample_indices

PARITY_IMAGES = 500
FP32_TOLERANCE = 1e-5
# int8 against Python's int8 kernels: the same integers, the float parts rounded differently (measured: 9.5e-07 at
# worst on 10,000 images, docs/export.md); against the graph as written (float between the quantize steps) an
# activation can land one quantization step apart, a few steps of 1/255 at the output (docs/web.md)
INT8_TOLERANCE = {"kernels": 1e-5, "as written": 0.05}
BENCHMARK_PER_CONDITION = 4  # 4 photos of each of the benchmark's 15 conditions
BENCHMARK_MOST_ERRORS = 2  # photos of the benchmark where both kits find no garment (the same message)


def test_sample_indices_take_the_first_of_each_class():
    labels = np.array([3, 1, 3, 3, 1, 0, 3, 1, 1])
    assert sample_indices(labels, per_class=2).tolist() == [0, 1, 2, 4, 5]


@pytest.mark.export
def test_export_writes_the_web_kit(exported, dataset):
    export_dir, report = exported
    kit = export_dir / "web"
    assert sorted(p.name for p in kit.iterdir()) == sorted([*kit_files(), "kit.json"])
    manifest = json.loads((kit / "kit.json").read_text())
    assert manifest["format"] == KIT_FORMAT
    assert manifest["class_names"] == list(fashionnet_edge.CLASS_NAMES)
    assert manifest["not_sure_below"] == fashionnet_edge.NOT_SURE_BELOW
    models = {m["key"]: m for m in manifest["models"]}
    assert list(models) == ["fp32", "int8"]  # fp32 first: the page's default
    for key, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        assert models[key]["file"] == f"../{name}"
        assert (kit / models[key]["file"]).stat().st_size == models[key]["bytes"]
        assert models[key]["test_accuracy"] == report["artifacts"][name]["accuracy"]
    (_, _), (test_images, test_labels) = dataset
    samples = manifest["samples"]
    pixels = np.frombuffer(base64.b64decode(samples["pixels"]), dtype=np.uint8).reshape(-1, 28, 28)
    assert len(pixels) == len(samples["labels"]) == 10 * SAMPLES_PER_CLASS
    np.testing.assert_array_equal(pixels, test_images[samples["indices"]])
    assert samples["labels"] == test_labels[samples["indices"]].tolist()
    lock = json.loads((kit / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == "1.30.0"


# ----------------------------------------------------------------------------------------------------------------
# In the browser
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnxruntime-web")


@pytest.fixture(scope="module")
def served_export(exported, runtime_cache):
    """The tiny run's export folder with onnxruntime-web installed into its web kit (npm ci, cached)."""
    from fashionnet.publish.browser import install_runtime

    export_dir, _ = exported
    install_runtime(export_dir / "web", runtime_cache)
    return export_dir


@pytest.fixture(scope="module")
def browser(served_export):
    from fashionnet.publish.browser import launch

    with launch() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def kit_page(served_export, browser):
    from fashionnet.publish.browser import open_kit

    with open_kit(served_export, browser) as page:
        assert page.open(), page.message()
        yield page


def python_probabilities(model_path, images: np.ndarray, **options) -> np.ndarray:
    classifier = fashionnet_edge.OnnxClassifier(model_path, threads=1, **options)
    return classifier.predict(images[..., None].astype(np.float32) / 255)


@pytest.mark.web
def test_page_loads_with_the_pinned_runtime_and_no_console_errors(kit_page):
    lock = json.loads((kit_page.export_dir / "web" / "package-lock.json").read_text())
    assert kit_page.ort_version() == lock["packages"]["node_modules/onnxruntime-web"]["version"]
    page = kit_page.page
    assert page.locator("#ort-version").inner_text() == kit_page.ort_version()
    assert page.locator('input[name="model"]').evaluate_all("els => els.map(e => e.value)") == ["fp32", "int8"]
    assert page.locator("#model-status").inner_text() == "fp32 model ready (SHA-256 as in manifest.json)"
    assert page.locator("#samples figure").count() == 10 * SAMPLES_PER_CLASS
    assert kit_page.message() == ""
    assert kit_page.console_errors == []


@pytest.mark.web
def test_fp32_in_the_browser_equals_onnxruntime_in_python(kit_page, served_export, dataset):
    images = dataset[1][0][:PARITY_IMAGES]
    browser = kit_page.classify("fp32", images)
    python = python_probabilities(served_export / "model.onnx", images)
    assert (browser.argmax(1) == python.argmax(1)).all()
    assert np.abs(browser - python).max() <= FP32_TOLERANCE
    assert kit_page.console_errors == []


@pytest.mark.web
def test_int8_in_the_browser_equals_the_int8_kernels_in_python(kit_page, served_export, dataset):
    """One answer everywhere: onnxruntime-web computes the QDQ graph's integers exactly as Python's onnxruntime
    does with its fused int8 kernels (no saturating step: fashionnet.convert.quantize) and as the graph reads
    without them; only the float parts round differently."""
    import onnxruntime as ort

    images = dataset[1][0][:PARITY_IMAGES]
    browser = kit_page.classify("int8", images)
    x = images[..., None].astype(np.float32) / 255
    # ALL fuses the QDQ pairs into QLinear* int8 kernels, BASIC keeps the graph as written
    levels = {
        "kernels": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "as written": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }
    for kind, level in levels.items():
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = 1
        path = str(served_export / "model.int8.onnx")
        python = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        assert (browser.argmax(1) == python.argmax(1)).all(), kind
        assert np.abs(browser - python).max() <= INT8_TOLERANCE[kind], kind
    # Batching changes nothing: one image per inference gives the same rows.
    np.testing.assert_array_equal(kit_page.classify("int8", images[:20], batch=1), browser[:20])


@pytest.fixture(scope="module")
def photos(dataset):
    return make_photos(dataset[1][0][100:200], per_kind=3)


def python_input(path) -> np.ndarray | str:
    """The Python kit's (28, 28) uint8 input for a photo file, or its error message without the path."""
    try:
        return np.round(fashionnet_edge.load_image(path) * 255).astype(np.uint8)
    except fashionnet_edge.EdgeInputError as exc:
        return str(exc).split(": ", 1)[1]  # the page names the file by its name


def compare_preprocessing(kit_page, photos, folder) -> tuple[int, int, list[str]]:
    """(photos with equal pixels, photos with the same error in both kits, differences): the page against the
    Python kit on every photo."""
    equal, errors, differences = 0, 0, []
    for photo in photos:
        path = folder / photo.name
        path.write_bytes(photo.data)
        python = python_input(path)
        browser = kit_page.preprocess(photo.data, photo.name)
        if isinstance(python, str) or isinstance(browser, str):
            if isinstance(python, str) and browser == f"{photo.name}: {python}":
                errors += 1
            else:
                said = [text if isinstance(text, str) else "pixels" for text in (python, browser)]
                differences.append(f"{photo.name}: Python {said[0]}, page {said[1]}")
        elif np.array_equal(browser, python):
            equal += 1
        else:
            gap = int(np.abs(browser.astype(int) - python).max())
            differences.append(f"{photo.name}: {int((browser != python).sum())} pixels differ, by {gap} at most")
    return equal, errors, differences


@pytest.mark.web
def test_photo_preprocessing_equals_the_python_kit(kit_page, photos, tmp_path):
    """Every generated photo (PNG grey/RGB/RGBA/LA/palette, JPEG, EXIF-rotated JPEG) gives the same uint8 pixels."""
    assert {p.name.split("-", 1)[1] for p in photos} >= {f"{m}{'-exif' if o else ''}{s}" for s, m, _, o in PHOTO_KINDS}
    equal, errors, differences = compare_preprocessing(kit_page, photos, tmp_path)
    assert differences == []
    assert equal >= len(photos) - 3  # almost all photos have a garment to find
    assert kit_page.console_errors == []


@pytest.fixture(scope="module")
def benchmark_photos(dataset):
    """The photo benchmark's photos (fashionnet/bench/photos.py), BENCHMARK_PER_CONDITION of each condition."""
    test_images, test_labels = dataset[1]
    return make_benchmark(test_images, test_labels, per_condition=BENCHMARK_PER_CONDITION)


@pytest.mark.web
def test_photo_preprocessing_equals_the_python_kit_on_the_photo_benchmark(kit_page, benchmark_photos, tmp_path):
    """Textured, graded, noisy, rotated, EXIF-turned, shadowed photos and drawings: the same uint8 pixels, or the
    same error, on every one."""
    assert len(benchmark_photos) == BENCHMARK_PER_CONDITION * len(CONDITIONS)
    equal, errors, differences = compare_preprocessing(kit_page, benchmark_photos, tmp_path)
    assert differences == []
    assert equal + errors == len(benchmark_photos) and errors <= BENCHMARK_MOST_ERRORS
    assert kit_page.console_errors == []


@pytest.mark.web
def test_an_uploaded_photo_shows_its_input_the_classes_and_the_latency(kit_page, served_export, photos, tmp_path):
    page = kit_page.page
    photo = next(p for p in photos if p.name.endswith("-RGB.png"))
    path = tmp_path / photo.name
    path.write_bytes(photo.data)
    page.locator("#photo").set_input_files(str(path))
    page.locator("#photo-result").wait_for(state="visible")
    grey_levels = np.round(fashionnet_edge.load_image(path) * 255).astype(np.uint8)
    expected = python_probabilities(served_export / "model.onnx", grey_levels[None])[0]
    bars = page.locator("#photo-bars li")
    assert bars.count() == 5
    best = int(np.argmax(expected))
    assert bars.nth(0).locator(".label").inner_text() == fashionnet_edge.CLASS_NAMES[best]
    assert bars.nth(0).locator(".p").inner_text() == f"{100 * expected[best]:.2f} %"
    shown = page.evaluate(
        "() => Array.from(document.getElementById('photo-input').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"
    )
    np.testing.assert_array_equal(np.asarray(shown).reshape(28, 28), grey_levels)
    assert page.locator("#photo-latency").inner_text().startswith("fp32 model: ")
    sure = bool(expected.max() >= fashionnet_edge.NOT_SURE_BELOW)
    assert page.locator("#photo-verdict").is_hidden() == sure
    assert page.locator("#photo-result.not-sure").count() == (0 if sure else 1)
    assert kit_page.message() == "" and kit_page.console_errors == []


@pytest.mark.web
def test_a_dropped_photo_is_classified_like_an_uploaded_one(kit_page, served_export, photos, tmp_path):
    page = kit_page.page
    photo = next(p for p in photos if p.name.endswith("-L.png"))
    (tmp_path / photo.name).write_bytes(photo.data)
    grey_levels = np.round(fashionnet_edge.load_image(tmp_path / photo.name) * 255).astype(np.uint8)
    expected = python_probabilities(served_export / "model.onnx", grey_levels[None])[0]
    page.evaluate("() => { document.getElementById('photo-result').hidden = true; }")
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const transfer = new DataTransfer();
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            return transfer;
        }""",
        [base64.b64encode(photo.data).decode("ascii"), photo.name],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.locator("#photo-result").wait_for(state="visible")
    best = int(np.argmax(expected))
    assert page.locator("#photo-bars li .label").first.inner_text() == fashionnet_edge.CLASS_NAMES[best]
    assert page.locator("#photo-bars li .p").first.inner_text() == f"{100 * expected[best]:.2f} %"
    assert kit_page.message() == "" and kit_page.console_errors == []


def not_sure_text(probabilities: np.ndarray) -> str:
    """The page's words for a top probability below NOT_SURE_BELOW: the two likeliest classes in whole percent."""
    best = np.argsort(-probabilities, kind="stable")[:2]
    return "not sure: " + ", ".join(
        f"{fashionnet_edge.CLASS_NAMES[j]} {100 * float(probabilities[j]):.0f} %" for j in best
    )


@pytest.mark.web
def test_a_photo_the_model_is_not_sure_of_says_so_above_the_bars(kit_page, served_export, benchmark_photos, tmp_path):
    page = kit_page.page
    assert page.evaluate("window.fashionnet.notSureBelow") == fashionnet_edge.NOT_SURE_BELOW
    forced = np.zeros(10, np.float32)
    forced[[7, 5, 9]] = 0.41, 0.38, 0.21
    assert page.evaluate("(p) => window.fashionnet.verdict(p)", forced.tolist()) == {
        "sure": False,
        "text": "not sure: Sneaker 41 %, Sandal 38 %",
    }
    forced[[7, 5, 9]] = fashionnet_edge.NOT_SURE_BELOW, 1 - fashionnet_edge.NOT_SURE_BELOW, 0  # at it: sure
    assert page.evaluate("(p) => window.fashionnet.verdict(p)", forced.tolist()) == {"sure": True, "text": ""}
    # Photos of the benchmark the model is (not) sure of, by the Python kit's probabilities.
    inputs = {}
    for photo in benchmark_photos:
        (tmp_path / photo.name).write_bytes(photo.data)
        grey_levels = python_input(tmp_path / photo.name)
        if not isinstance(grey_levels, str):
            inputs[photo.name] = grey_levels
    found = python_probabilities(served_export / "model.onnx", np.stack(list(inputs.values())))
    probabilities = dict(zip(inputs, found, strict=True))
    margin = 0.01  # clear of the threshold, where the browser's last float digits could tip it
    unsure = next(n for n, p in probabilities.items() if p.max() < fashionnet_edge.NOT_SURE_BELOW - margin)
    sure = next(n for n, p in probabilities.items() if p.max() >= fashionnet_edge.NOT_SURE_BELOW + margin)
    result, words = page.locator("#photo-result"), page.locator("#photo-verdict")
    for name in (unsure, sure, unsure):  # the cue comes, goes and comes back
        page.evaluate("() => { document.getElementById('photo-result').hidden = true; }")
        page.locator("#photo").set_input_files(str(tmp_path / name))
        result.wait_for(state="visible")
        if name == unsure:
            assert words.is_visible() and words.inner_text() == not_sure_text(probabilities[name])
            assert "not-sure" in result.get_attribute("class").split()
            assert words.bounding_box()["y"] < page.locator("#photo-bars").bounding_box()["y"]  # above the bars
        else:
            assert words.is_hidden() and "not-sure" not in result.get_attribute("class").split()
        best = int(np.argmax(probabilities[name]))
        assert page.locator("#photo-bars li .label").first.inner_text() == fashionnet_edge.CLASS_NAMES[best]
    assert kit_page.message() == "" and kit_page.console_errors == []


@pytest.mark.web
def test_the_samples_are_classified_as_python_classifies_them(kit_page, served_export):
    page = kit_page.page
    manifest = json.loads((served_export / "web" / "kit.json").read_text())
    pixels = np.frombuffer(base64.b64decode(manifest["samples"]["pixels"]), dtype=np.uint8).reshape(-1, 28, 28)
    predicted = python_probabilities(served_export / "model.onnx", pixels).argmax(1)
    right = int((predicted == manifest["samples"]["labels"]).sum())
    page.locator("#classify-samples").click()
    summary = page.locator("#samples-summary")
    page.wait_for_function("document.getElementById('samples-summary').textContent.length > 0")
    assert summary.inner_text().startswith(f"fp32 model: {right} of {len(pixels)} right, ")
    assert page.locator("#samples .prediction.right").count() == right
    assert kit_page.console_errors == []


@pytest.mark.web
@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.png", b"these are not the pixels you are looking for", "notes.png: not a readable image"),
        ("empty.jpg", b"", "empty.jpg: empty file (0 bytes)"),
        ("blank.png", None, "blank.png: no garment found"),
        ("huge.png", "png-header", "huge.png: image too large: 30000 x 30000 pixels, at most 40000000 allowed"),
        ("huge.jpg", "jpeg-header", "huge.jpg: image too large: 40000 x 20000 pixels, at most 40000000 allowed"),
    ],
)
def test_a_bad_photo_shows_a_message_not_an_error(kit_page, tmp_path, name, data, message):
    from PIL import Image

    path = tmp_path / name
    if data is None:
        Image.new("RGB", (64, 48), (250, 250, 250)).save(path)
    elif data == "png-header":  # a 100-byte file whose header claims 900 megapixels
        png = io.BytesIO()
        Image.new("L", (8, 8)).save(png, "PNG")
        path.write_bytes(png.getvalue()[:16] + struct.pack(">II", 30000, 30000) + png.getvalue()[24:])
    elif data == "jpeg-header":
        jpeg = io.BytesIO()
        Image.new("L", (8, 8)).save(jpeg, "JPEG")
        raw = bytearray(jpeg.getvalue())
        sof = raw.index(b"\xff\xc0")
        raw[sof + 5 : sof + 9] = struct.pack(">HH", 20000, 40000)
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(data)
    page = kit_page.page
    page.evaluate("() => { document.getElementById('photo-error').hidden = true; }")  # the previous photo's
    page.locator("#photo").set_input_files(str(path))
    error = page.locator("#photo-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith(message) and "\n" not in error.inner_text()
    # beside the drop zone: the element after it, just below it
    assert page.locator("#drop + #photo-error").count() == 1
    drop, shown = page.locator("#drop").bounding_box(), error.bounding_box()
    assert 0 <= shown["y"] - (drop["y"] + drop["height"]) < 40
    assert page.locator("#photo-result").is_hidden()
    assert kit_page.message() == "" and kit_page.console_errors == []


@pytest.mark.web
@pytest.mark.parametrize(
    "damage, manifest, message",
    [
        ("truncated", True, "does not match manifest.json: sha256 "),
        ("one bit", True, "does not match manifest.json: sha256 "),
        ("truncated", False, "not a loadable ONNX model"),
        ("not onnx", False, "not a loadable ONNX model"),
    ],
)
def test_a_model_that_does_not_load_shows_a_message(served_export, browser, tmp_path, damage, manifest, message):
    from fashionnet.publish.browser import open_kit

    copy = tmp_path / "export"
    shutil.copytree(served_export, copy, symlinks=True)
    if not manifest:  # a manifest that does not list the model: nothing to check it against
        listed = json.loads((copy / "manifest.json").read_text())
        del listed["files"]["model.int8.onnx"]
        (copy / "manifest.json").write_text(json.dumps(listed))
    model = copy / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    if damage == "one bit":
        data[len(data) // 2] ^= 1
    model.write_bytes(
        data[: len(data) // 3] if damage == "truncated" else b"<html>moved</html>" if damage == "not onnx" else data
    )
    with open_kit(copy, browser) as kit:
        assert kit.open()  # the default fp32 model is fine
        kit.page.locator('input[value="int8"]').check()
        kit.page.wait_for_function("document.getElementById('model-status').textContent.includes('failed')")
        assert kit.message().startswith(f"{kit.url.rsplit('/web/', 1)[0]}/model.int8.onnx: {message}")
        assert kit.page.locator("#classify-samples").is_disabled()
        assert kit.console_errors == []


@pytest.mark.web
def test_a_kit_without_onnxruntime_web_says_how_to_install_it(served_export, browser, tmp_path):
    """No `npm ci` (or a deploy without node_modules/onnxruntime-web/dist/): the page says so, not "loading…"."""
    from fashionnet.publish.browser import open_kit

    copy = tmp_path / "export"
    shutil.copytree(served_export, copy, symlinks=True)
    (copy / "web" / "node_modules").unlink()  # the served kit's is a link to the test session's npm ci
    with open_kit(copy, browser) as kit:
        assert not kit.open()
        assert kit.message() == (
            "onnxruntime-web is missing (node_modules/onnxruntime-web/dist/ not found): "
            'run "npm ci" in this folder (see README.md)'
        )
        assert kit.page.locator("#model-status").inner_text() == "fp32 model failed to load"
        assert kit.page.locator("#ort-version").inner_text() == "(not installed)"
        assert kit.page.locator("#classify-samples").is_disabled()
        assert kit.errors == []  # no uncaught error: only the server's 404s for the missing file in the console
        assert all("404" in text for text in kit.console_errors), kit.console_errors


@pytest.mark.web
@pytest.mark.parametrize("model, file", [("fp32", "model.onnx"), ("int8", "model.int8.onnx")])
def test_the_page_selftest_passes_like_the_python_kits(kit_page, model, file):
    from fashionnet.publish.selftest import SELFTEST_IMAGES

    page = kit_page.page
    page.locator(f'input[value="{model}"]').check()
    page.wait_for_function("document.getElementById('model-status').textContent.includes('ready')")
    page.locator("#run-selftest").click()
    page.wait_for_function("document.getElementById('selftest-result').textContent.startsWith('selftest')")
    line = page.locator("#selftest-result").inner_text()
    assert line.startswith(f"selftest {file}: PASS, top-1 as Keras on {SELFTEST_IMAGES}/{SELFTEST_IMAGES} images, ")
    gate = "<= 1e-05" if model == "fp32" else "not gated (int8)"
    assert f" {gate}, onnxruntime-web 1.30.0, " in line
    assert page.evaluate("(m) => window.fashionnet.selftest(m)", model)["line"] == line
    page.locator('input[value="fp32"]').check()  # the page as the other tests expect it
    page.wait_for_function("document.getElementById('model-status').textContent.startsWith('fp32')")
    assert kit_page.message() == "" and kit_page.console_errors == []
