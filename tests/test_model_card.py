"""MODEL_CARD.md: written with every export from what the export measured."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from fashionnet.publish.model_card import MODEL_CARD_NAME, model_card
from fashionnet_edge import CLASS_NAMES

REPORT = {
    "run": "r",
    "keras_accuracy": 0.8,
    "artifacts": {
        "model.onnx": {"size_bytes": 3_862_364, "accuracy": 0.8, "accuracy_drop_points": 0.0, "top1_agreement": 10,
                       "images": 10, "latency_ms_batch1": 0.4},
        "model.int8.onnx": {"size_bytes": 985_500, "accuracy": 0.7, "accuracy_drop_points": 10.0,
                            "top1_agreement": 9, "images": 10},
    },
}  # fmt: skip


def table_row(card: str, first_cell: str) -> list[str]:
    (row,) = [line for line in card.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_card_figures_come_from_the_probabilities_and_the_report():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    probabilities = rng.random((200, 10))
    probabilities[np.arange(200), labels] += 0.6  # mostly right, with confusions
    predicted = probabilities.argmax(1)
    card = model_card(REPORT, probabilities, labels)
    for c, name in enumerate(CLASS_NAMES):
        precision = precision_score(labels, predicted, labels=[c], average="macro", zero_division=0)
        recall = recall_score(labels, predicted, labels=[c], average="macro", zero_division=0)
        assert table_row(card, name)[1:] == [f"{precision:.3f}", f"{recall:.3f}", "20"]
    confusions = re.findall(r"^- (.+) -> (.+): (\d+)$", card, flags=re.M)
    counts = [int(n) for _, _, n in confusions]
    assert counts == sorted(counts, reverse=True) and len(confusions) == 5
    true_name, predicted_name, count = confusions[0]
    t, p = CLASS_NAMES.index(true_name), CLASS_NAMES.index(predicted_name)
    assert int(((labels == t) & (predicted == p)).sum()) == int(count) == counts[0]
    assert table_row(card, "model.onnx")[1:] == ["3.86 MB", "80.00%", "+0.00", "10/10", "0.400"]
    assert table_row(card, "model.int8.onnx")[-1] == "-"
    assert f"confuses most are {true_name}" in card


@pytest.mark.export
def test_every_export_writes_the_card(exported, dataset, keras_probs):
    folder, report = exported
    card = (folder / MODEL_CARD_NAME).read_text()
    labels = dataset[1][1]
    recall = recall_score(labels, keras_probs.argmax(1), labels=[6], average="macro")
    assert table_row(card, "Shirt")[2] == f"{recall:.3f}"
    for name, entry in report["artifacts"].items():
        assert table_row(card, name)[2] == f"{entry['accuracy']:.2%}"
    assert f"**{report['keras_accuracy']:.2%}**" in card and "Recipe `assignment`: 2 epochs, batch 100" in card
