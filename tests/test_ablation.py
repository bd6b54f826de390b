"""The ablation script behind docs/accuracy.md: one row per step, measured on the validation split."""

from __future__ import annotations

import json

import pytest

from benchmarks import ablation
from fashionnet.core import recipes
from fashionnet.core.networks import ASSIGNMENT_TOTAL_PARAMS
from fashionnet.training import fit


@pytest.mark.slow
def test_ablation_records_one_validation_row_per_step_and_keeps_earlier_rows(tmp_path, data_dir):
    common = ["--out", str(tmp_path), "--epochs", "1", "--limit", "1000", "--data-dir", str(data_dir)]
    assert ablation.main([*common, "--steps", "assignment"]) == 0
    assert ablation.main([*common, "--steps", "flip"]) == 0  # a second run adds its row to the same file

    rows = json.loads((tmp_path / "ablation.json").read_text())
    assert set(rows) == {"assignment", "flip"}
    assert rows["assignment"]["params"] == ASSIGNMENT_TOTAL_PARAMS
    assert rows["flip"]["params"] == fit.build(recipes.IMPROVED).count_params()
    assert rows["flip"]["recipe"]["augmentation"]["flip"] is True
    assert rows["flip"]["batch_size"] == 128 and rows["assignment"]["batch_size"] == 300
    for row in rows.values():
        assert row["epochs"] == 1 and row["seed"] == 42
        for key in ("final_val_accuracy", "best_val_accuracy", "val_accuracy_flip_averaged"):
            assert 0.0 <= row[key] <= 1.0
            # 1,000 images: 800 train / 200 validation, so every accuracy is a multiple of 1/200
            assert abs(row[key] * 200 - round(row[key] * 200)) < 1e-3, (key, row[key])
    # each step is a run folder of its own, trained on the training part of the first 1,000 images
    history = json.loads((tmp_path / "flip" / "history.json").read_text())
    assert len(history["val_accuracy"]) == 1
    for step, registered in (("flip", "improved"), ("assignment", "assignment")):
        config = json.loads((tmp_path / step / "config.json").read_text())["config"]
        assert (config["limit"], config["recipe"], config["validation_split"]) == (1000, registered, 0.2)


def test_every_step_varies_a_registered_recipe():
    for name, (base, recipe) in ablation.STEPS.items():
        assert base in recipes.RECIPES, name
        assert recipe.name == name
    assert ablation.STEPS["flip"] == ("improved", recipes.IMPROVED.replace(name="flip"))
    assert ablation.STEPS["bn"].recipe.batch_size == recipes.ASSIGNMENT.batch_size  # the assignment's, batch norm added
