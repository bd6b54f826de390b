"""The photo benchmark: photos made from test garments, measured per condition with the Python kit."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from fashionnet.bench import photo_bench
from fashionnet.bench.photos import CONDITIONS, make_benchmark


def test_the_benchmark_photos_are_test_garments_in_every_condition(dataset):
    _, (images, labels) = dataset
    photos = make_benchmark(images, labels, per_condition=10, seed=3)
    assert len(photos) == 10 * len(CONDITIONS)
    for condition in CONDITIONS:
        mine = [p for p in photos if p.condition == condition]
        assert sorted(p.label for p in mine) == list(range(10))  # every class once per 10
        assert len({p.index for p in mine}) == 10
    assert all(labels[p.index] == p.label for p in photos)
    assert make_benchmark(images, labels, per_condition=10, seed=3)[17].data == photos[17].data  # reproducible
    exif = next(p for p in photos if p.condition == "exif orientation")
    from PIL import Image

    assert Image.open(io.BytesIO(exif.data)).getexif()[0x0112] in (3, 6, 8)


def test_photo_bench_reports_every_condition_against_the_given_images(exported, data_dir, tmp_path, capsys):
    folder, _ = exported
    out = tmp_path / "bench"
    assert photo_bench.main([str(folder.parent), "--per-condition", "2", "--out", str(out), "--no-browser",
                             "--data-dir", str(data_dir)]) == 0  # fmt: skip
    result = json.loads((out / "photo_bench.json").read_text())
    assert result["photos"] == 2 * len(CONDITIONS) == len(list((out / "photos").iterdir()))
    assert [row["condition"] for row in result["conditions"]] == list(CONDITIONS)
    for row in result["conditions"]:
        assert row["photos"] == 2 and 0 <= row["kit_accuracy"] <= 1 and 0 <= row["given_accuracy"] <= 1
    assert result["kit_over_given"] == pytest.approx(result["kit_accuracy"] / result["given_accuracy"])
    flagged = [row["flagged"] for row in result["not_sure"]]
    assert flagged == sorted(flagged)  # a higher threshold flags at least as many answers
    table = capsys.readouterr().out
    assert "| textured background | 2 |" in table and "(the kits')" in table
    assert np.isclose(sum(r["kit_accuracy"] for r in result["conditions"]) / len(CONDITIONS), result["kit_accuracy"])
