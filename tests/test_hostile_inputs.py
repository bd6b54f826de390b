"""Hostile and absurd files everywhere fashionnet reads inputs: the edge kit's loaders and `fashionnet predict`.

Every file either loads as (N, 28, 28, 1) float32 in [0, 1] or is refused with one line naming it (the kit's
EdgeInputError; predict's exit 5); never a traceback, never a hang, never a memory blow-up before the refusal.
The named cases are the list in docs/reliability.md; hypothesis mutates valid files of every accepted format.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashionnet_edge import EdgeInputError, load_inputs_named


def _png(array: np.ndarray, **save) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", **save)
    return out.getvalue()


def _garment(side: int = 40, dtype=np.uint8, high=255) -> np.ndarray:
    image = np.zeros((side, side), dtype=dtype)
    image[side // 4 : 3 * side // 4, side // 3 : 2 * side // 3] = high
    return image


def _jpeg(mode: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(255 - _garment()).convert(mode).save(out, format="JPEG")
    return out.getvalue()


def _animated_png() -> bytes:
    from PIL import Image

    frames = [Image.fromarray(_garment()), Image.fromarray(255 - _garment())]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def valid_files() -> dict[str, bytes]:
    """One valid file of every accepted format (the seeds of the mutations)."""
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    return {
        "images.idx": _idx(images),
        "images.idx.gz": gzip.compress(_idx(images)),
        "images.npy": _npy(images),
        "floats.npy": _npy(images.astype(np.float32) / 255),
        "grey.png": _png(_garment()),
        "grey16.png": _png(_garment(dtype=np.uint16, high=40_000)),
        "palette.png": _png(_garment(), bits=4),
        "animated.png": _animated_png(),
        "rgb.jpg": _jpeg("RGB"),
        "cmyk.jpg": _jpeg("CMYK"),
    }


VALID = valid_files()


def _npy_header(shape_text: str, descr: str = "|u1") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}".encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


# (name, bytes or a maker(tmp_path) -> path, the message's distinctive part)
HOSTILE = [
    ("zero.png", b"", "empty file (0 bytes)"),
    ("zero.npy", b"", "empty file (0 bytes)"),
    ("zero.idx", b"", "empty file (0 bytes)"),
    ("truncated.png", VALID["grey.png"][:60], "not a readable PNG/JPEG image"),
    ("truncated.jpg", VALID["rgb.jpg"][: len(VALID["rgb.jpg"]) // 2], "not a readable PNG/JPEG image"),
    ("truncated.idx.gz", VALID["images.idx.gz"][:-9], "corrupt or truncated gzip file"),
    ("huge.png", None, "image too large: 900,000,000 pixels, at most 40,000,000 allowed"),
    ("absurd.npy", _npy_header("(1000000000000, 28, 28)") + b"\0" * 784, ".npy size mismatch for shape"),
    ("negative.npy", _npy_header("(-5, 28, 28)") + b"\0" * 784, "not a readable .npy array"),
    ("objects.npy", _npy(np.array([{"a": 1}], dtype=object)), "wrong dtype: expected uint8"),
    ("structured.npy", _npy(np.zeros(3, dtype=[("a", "u1")])), "wrong dtype: expected uint8"),
    ("code.npy", _npy_header("__import__('os').system('true')"), "not a readable .npy array"),
    ("absurd.idx", bytes([0, 0, 8, 4]) + b"\xff" * 16, "IDX size mismatch"),
    ("bomb.idx.gz", gzip.compress(b"\0" * (1 << 20)), "wrong IDX magic"),
    ("folder.png", "folder", "is a folder, expected a file"),
    ("loop.npy", "loop", "symbolic link loop, expected a file"),
    ("/dev/zero", "device", "not a regular file"),
]


def _make(tmp_path, name, payload):
    if name.startswith("/"):
        return name
    path = tmp_path / name
    if payload is None:  # a 57-byte PNG whose header claims 30,000 x 30,000 pixels
        from tests.test_cli import png_header_only

        path.write_bytes(png_header_only(30_000, 30_000))
    elif payload == "folder":
        path.mkdir()
    elif payload == "loop":
        os.symlink(path, path)
    else:
        path.write_bytes(payload)
    return path


def test_every_valid_seed_loads():
    """The mutations start from files the kit accepts (else the property below would test nothing)."""
    for name, data in VALID.items():
        images, names = _load_bytes(name, data)
        assert images is not None, f"{name}: {names}"


@pytest.mark.parametrize(("name", "payload", "message"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_hostile_file_is_refused_in_one_line_naming_it(tmp_path, name, payload, message):
    path = _make(tmp_path, name, payload)
    with pytest.raises(EdgeInputError) as refused:
        load_inputs_named([path])
    text = str(refused.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_16_bit_grey_is_read_at_16_bits_not_clipped_to_white(tmp_path):
    """Pillow's convert("L") turns every 16-bit value above 255 into white: the garment would be a white box."""
    eight, sixteen = tmp_path / "eight.png", tmp_path / "sixteen.png"
    ramp = np.tile(np.linspace(0, 1, 40, dtype=np.float64), (40, 1))
    ramp[:, :4] = ramp[:, -4:] = ramp[:4] = ramp[-4:] = 0  # a dark border: the background
    eight.write_bytes(_png(np.round(ramp * 255).astype(np.uint8)))
    sixteen.write_bytes(_png(np.round(ramp * 65535).astype(np.uint16)))
    images, _ = load_inputs_named([eight, sixteen])
    assert np.abs(images[0] - images[1]).max() < 2 / 255


def test_an_animated_png_is_classified_by_its_first_frame(tmp_path):
    animated, first = tmp_path / "animated.png", tmp_path / "first.png"
    animated.write_bytes(VALID["animated.png"])
    first.write_bytes(_png(_garment()))
    images, _ = load_inputs_named([animated, first])
    np.testing.assert_array_equal(images[0], images[1])


# --- mutations of every accepted format ----------------------------------------------------------------------


def _load_bytes(name: str, data: bytes, folder=None):
    """(images, names) or (None, message) for bytes saved under ``name``; any other exception fails the test."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(folder or scratch, name)
        with open(path, "wb") as f:
            f.write(data)
        try:
            images, names = load_inputs_named([path])
        except EdgeInputError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            return None, message
    assert images.dtype == np.float32 and images.ndim == 4 and images.shape[1:] == (28, 28, 1), images.shape
    assert len(names) == len(images) >= 1
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    return images, names


@st.composite
def mutated_files(draw):
    name = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "header", "append"]))
        if kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "header" and data:  # the first 64 bytes hold every format's sizes and types
            at = draw(st.integers(0, min(63, len(data) - 1)))
            data[at : at + 4] = draw(st.binary(min_size=4, max_size=4))
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
    suffix = draw(st.sampled_from([name, "x.png", "x.jpg", "x.npy", "x.gz", "x.idx", "x"]))
    return suffix, bytes(data)


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_files())
def test_mutated_files_of_every_format_load_or_are_refused_in_one_line(case):
    name, data = case
    _load_bytes(name, data)


@settings(max_examples=100, deadline=5000)
@given(st.binary(max_size=512), st.sampled_from(["x.png", "x.jpg", "x.npy", "x.gz", "x.idx", "x"]))
def test_random_bytes_load_or_are_refused_in_one_line(data, name):
    _load_bytes(name, data)


# --- the same through `fashionnet predict` -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    """The assignment's network, untrained: predict needs a model, not a good one."""
    from fashionnet.core import recipes
    from fashionnet.training import fit

    path = tmp_path_factory.mktemp("model") / "model.keras"
    fit.build(recipes.get_recipe("assignment")).save(path)
    return path


def _predict(capsys, model, path) -> tuple[int, str]:
    from fashionnet.cli import main

    code = main(["predict", str(model), str(path)])
    return code, capsys.readouterr().err


@settings(max_examples=40, deadline=20000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated_files())
def test_predict_on_mutated_files_exits_0_or_5_with_one_line(capsys, tmp_path, keras_model, case):
    name, data = case
    path = tmp_path / name
    path.write_bytes(data)
    code, err = _predict(capsys, keras_model, path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (0, 5), err
    if code == 5:
        assert lines == [lines[0]] and lines[0].startswith(f"fashionnet: error: {path}: "), err


@pytest.mark.parametrize(("name", "payload", "message"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_predict_refuses_each_hostile_file_with_exit_5(capsys, tmp_path, keras_model, name, payload, message):
    path = _make(tmp_path, name, payload)
    code, err = _predict(capsys, keras_model, path)
    lines = err.splitlines()
    assert code == 5 and len(lines) == 1 and lines[0].startswith(f"fashionnet: error: {path}: "), err
    assert message in err, err


def _keras_archive(tmp_path, name: str, config: dict) -> str:
    import json

    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    return path


def test_a_keras_archive_that_asks_to_run_code_is_refused_in_one_line(capsys, tmp_path, keras_model):
    """A Lambda layer carries Python bytecode; Keras's safe_mode refuses it and fashionnet never turns it off."""
    import keras

    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(
        keras.layers.Lambda(lambda t: t * 2)(keras.layers.Flatten()(inputs))
    )
    lambda_model = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(lambda_model)
    good = tmp_path / "good.npy"
    good.write_bytes(VALID["images.npy"])
    code, err = _predict(capsys, lambda_model, good)
    assert code == 4 and err.count("\n") == 1, err
    assert f"fashionnet: error: {lambda_model}: refused, the archive asks to run Python code" in err

    foreign = _keras_archive(tmp_path, "foreign.keras", {"module": "os", "class_name": "system", "config": {}})
    code, err = _predict(capsys, foreign, good)
    assert code == 4 and err.count("\n") == 1 and f"{foreign} could not be loaded as a Keras model" in err, err


def test_a_keras_archive_that_unpacks_to_gigabytes_is_refused_before_loading(capsys, tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 24)
            for _ in range(80):  # 1.3 GB of zeros in ~1.3 MB
                member.write(block)
    good = tmp_path / "good.npy"
    good.write_bytes(VALID["images.npy"])
    code, err = _predict(capsys, bomb, good)
    assert code == 4 and err.count("\n") == 1 and "unpacks to 1,342,177,280 bytes, at most" in err, err


def test_inputs_past_the_size_limit_are_refused_before_they_are_read_whole(tmp_path, monkeypatch):
    """The 1 GiB limit, scaled down to 1 MiB here: a file that big, and a .gz that decompresses past it."""
    import fashionnet_edge

    monkeypatch.setattr(fashionnet_edge, "MAX_INPUT_BYTES", 1 << 20)
    big, bomb = tmp_path / "big.idx", tmp_path / "bomb.idx.gz"
    big.write_bytes(b"\0" * ((1 << 20) + 1))
    bomb.write_bytes(gzip.compress(b"\0" * (2 << 20)))
    assert len(bomb.read_bytes()) < 4096
    with pytest.raises(EdgeInputError, match=r"big.idx: too large: 1,048,577 bytes, at most 1,048,576 allowed"):
        load_inputs_named([big])
    with pytest.raises(EdgeInputError, match=r"bomb.idx.gz: decompresses to more than 1,048,576 bytes"):
        load_inputs_named([bomb])


def test_absurdly_nested_json_in_a_run_or_a_kit_is_one_line(tmp_path):
    from fashionnet.errors import RunError
    from fashionnet.runs import read_json
    from fashionnet_edge import EdgeModelError, read_manifest

    nested = "[" * 100_000 + "]" * 100_000
    (tmp_path / "config.json").write_text(nested)
    (tmp_path / "manifest.json").write_text(nested)
    with pytest.raises(RunError) as run_error:
        read_json(tmp_path / "config.json")
    with pytest.raises(EdgeModelError) as kit_error:
        read_manifest(tmp_path)
    for error in (run_error.value, kit_error.value):
        assert "\n" not in str(error) and "recursion" in str(error).lower(), str(error)
