"""The data stage: the real files' known facts, the look-up order, and every kind of broken file."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from fashionnet.core import data as fdata
from fashionnet.errors import DataError
from fashionnet_edge import EdgeInputError, parse_idx, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()


def write_gz(path, payload: bytes):
    path.write_bytes(gzip.compress(payload))
    return path


# --- the real files -------------------------------------------------------------------------------------------


def test_real_data_matches_provenance_facts(dataset):
    (x_train, y_train), (x_test, y_test) = dataset
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert x_train.mean() == pytest.approx(72.94035223214286, abs=1e-9)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_preprocess_is_the_assignments(dataset):
    (x_train, y_train), _ = dataset
    x, y = fdata.preprocess(x_train[:500], y_train[:500])
    assert x.shape == (500, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x[..., 0], x_train[:500].astype("float32") / 255)
    assert y.shape == (500, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(1), y_train[:500])
    assert (y.sum(1) == 1).all()
    full = fdata.preprocess_images(x_train)
    assert float(full.mean()) == pytest.approx(0.2860406, abs=1e-6)
    assert float(full.std()) == pytest.approx(0.3530242, abs=1e-5)


def test_class_names():
    assert fdata.CLASS_NAMES[0] == "T-shirt/top" and fdata.CLASS_NAMES[9] == "Ankle boot"
    assert len(fdata.CLASS_NAMES) == fdata.NUM_CLASSES == 10


# --- look-up order ----------------------------------------------------------------------------------------------


def test_argument_wins_over_environment(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("FASHIONNET_DATA", str(tmp_path / "nowhere"))
    assert fdata.find_data_dir(data_dir, download=False) == data_dir


def test_environment_used_when_no_argument(data_dir, monkeypatch):
    monkeypatch.setenv("FASHIONNET_DATA", str(data_dir))
    assert fdata.find_data_dir(None, download=False) == data_dir


def test_explicit_folder_that_lacks_files_is_an_error(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"lacks train-labels-idx1-ubyte.gz.*t10k-labels"):
        fdata.find_data_dir(tmp_path, download=False)
    with pytest.raises(DataError, match="does not exist"):
        fdata.find_data_dir(tmp_path / "missing", download=False)


def test_nothing_found_lists_every_searched_location(monkeypatch, tmp_path):
    monkeypatch.delenv("FASHIONNET_DATA", raising=False)
    monkeypatch.setattr(fdata, "KERAS_CACHE", tmp_path / "cache")
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(DataError) as err:
        fdata.find_data_dir(None, download=False)
    assert "keras cache" in str(err.value) and str(tmp_path / "debian") in str(err.value)


# --- broken files -------------------------------------------------------------------------------------------------


@pytest.fixture
def data_copy(tmp_path, data_dir):
    """A writable copy of the real files, to break one at a time."""
    folder = tmp_path / "fm"
    shutil.copytree(data_dir, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def test_checksum_mismatch_names_file_expected_and_found(data_copy):
    labels = gzip.decompress((data_copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    tampered = labels[:-1] + bytes([(labels[-1] + 1) % 10])
    write_gz(data_copy / "t10k-labels-idx1-ubyte.gz", tampered)
    with pytest.raises(DataError) as err:
        fdata.load_data(data_copy)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "checksum mismatch" in msg
    assert fdata.FILES["test_labels"].sha256 in msg and fdata.sha256(tampered) in msg


def test_recompressed_copy_is_accepted(data_copy):
    """Debian's copies are recompressed: the checksum is on the decompressed bytes."""
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    write_gz(path, gzip.decompress(path.read_bytes()))
    _, (_, y_test) = fdata.load_data(data_copy)
    assert y_test[:3].tolist() == [9, 2, 1]


def test_truncated_gz_is_rejected(data_copy):
    path = data_copy / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        fdata.load_data(data_copy)


def test_label_and_image_counts_must_agree(data_copy):
    write_gz(data_copy / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(9999, np.uint8)))
    with pytest.raises(DataError, match=r"expected uint8 array of shape \(10000,\), found uint8 \(9999,\)"):
        fdata.load_data(data_copy, verify=False)


def test_wrong_dimensions_are_rejected(data_copy):
    write_gz(data_copy / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((10000, 28, 27), np.uint8)))
    with pytest.raises(DataError, match=r"t10k-images.*expected uint8 array of shape \(10000, 28, 28\)"):
        fdata.load_data(data_copy, verify=False)


def test_out_of_range_labels_are_rejected(data_copy):
    write_gz(data_copy / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(10000, 12, np.uint8)))
    with pytest.raises(DataError, match="labels must be 0..9, found 12"):
        fdata.load_data(data_copy, verify=False)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not an IDX file: 0 bytes"),
        (b"\x00\x00", "not an IDX file: 2 bytes"),
        (b"\x1f\x8b\x08\x00", "wrong IDX magic.*found 1f 8b 08 00"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header: expected 16 bytes, found 6"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]), r"size mismatch for shape \(5,\): expected 13 bytes, found 11"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), r"expected 10 bytes, found 11"),
    ],
)
def test_parse_idx_rejects_malformed_bytes(payload, message):
    with pytest.raises(EdgeInputError, match=message):
        parse_idx(payload, "x.idx")


def test_read_idx_reads_raw_and_gz(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array))
    write_gz(tmp_path / "a.idx.gz", idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), array)


def test_missing_file_is_an_edge_error(tmp_path):
    with pytest.raises(EdgeInputError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")
