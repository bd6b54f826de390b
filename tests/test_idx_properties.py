"""Property-based tests of the IDX reader: valid files round-trip, corruptions never pass silently."""

from __future__ import annotations

import gzip
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fashionnet_edge import EdgeInputError, parse_idx, read_bytes

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def encode(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(DTYPES[code]).tobytes()


@st.composite
def idx_arrays(draw):
    code = draw(st.sampled_from(sorted(DTYPES)))
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple))
    array = draw(arrays(np.dtype(DTYPES[code]).newbyteorder("="), shape, elements={"allow_nan": False}))
    return code, array


@given(idx_arrays())
def test_valid_files_round_trip(case):
    code, array = case
    parsed = parse_idx(encode(array, code), "t")
    assert parsed.shape == array.shape
    assert parsed.dtype.byteorder in ("=", "|") and parsed.dtype.kind == array.dtype.kind
    np.testing.assert_array_equal(parsed, array)


@given(idx_arrays(), st.data())
def test_truncated_or_extended_files_are_rejected(case, data):
    code, array = case
    payload = encode(array, code)
    cut = data.draw(st.integers(0, len(payload) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=8))
    for broken in (payload[:cut], payload + extra):
        try:
            parse_idx(broken, "t")
        except EdgeInputError:
            continue
        raise AssertionError(f"accepted a broken file of {len(broken)} bytes (valid: {len(payload)})")


@given(idx_arrays(), st.data())
def test_random_header_corruption_never_gives_a_silent_wrong_array(case, data):
    code, array = case
    payload = bytearray(encode(array, code))
    position = data.draw(st.integers(0, 3 + 4 * array.ndim))
    payload[position] = data.draw(st.integers(0, 255).filter(lambda b: b != payload[position]))
    try:
        parsed = parse_idx(bytes(payload), "t")
    except EdgeInputError:
        return
    # Some header edits are still valid files (e.g. another type whose size happens to match); then the result
    # must be exactly what the edited header declares, never a silently misread array.
    declared_ndim = payload[3]
    declared = struct.unpack(f">{declared_ndim}I", bytes(payload[4 : 4 + 4 * declared_ndim]))
    assert parsed.shape == declared
    assert parsed.nbytes == len(payload) - 4 - 4 * declared_ndim


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(st.binary(min_size=0, max_size=64))
def test_random_bytes_in_a_gz_file_raise_only_edge_errors(tmp_path, junk):
    path = tmp_path / "junk.gz"
    for payload in (junk, gzip.compress(junk)):
        path.write_bytes(payload)
        try:
            parse_idx(read_bytes(path), str(path))
        except EdgeInputError as exc:
            assert str(path) in str(exc)
