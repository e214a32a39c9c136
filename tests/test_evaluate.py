"""Per-class evaluation against scikit-learn, and the confusion matrix picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix

from harness._reports.evaluate import confusion_png, evaluate_predictions, per_class_table

NAMES = ["cat", "dog", "bird"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 0, 1, 1, 2, 1, 2, 0, 0])


def test_per_class_table_matches_scikit_learn():
    table = per_class_table(Y_TRUE, Y_PRED, NAMES).set_index("class")
    report = classification_report(Y_TRUE, Y_PRED, target_names=NAMES, output_dict=True, zero_division=0)
    for name in NAMES:
        for metric in ("precision", "recall", "f1-score", "support"):
            column = "f1" if metric == "f1-score" else metric
            assert table.loc[name, column] == pytest.approx(report[name][metric])


def test_table_is_sorted_by_f1_worst_first_and_names_every_class():
    table = per_class_table(Y_TRUE, Y_PRED, NAMES)
    assert table["f1"].is_monotonic_increasing
    assert sorted(table["class"]) == sorted(NAMES)
    empty = per_class_table(np.array([0, 0]), np.array([0, 0]), NAMES)  # absent classes: zeros
    assert set(empty["class"]) == set(NAMES) and empty.set_index("class").loc["dog", "f1"] == 0


def test_evaluation_accuracy_and_confusion(tmp_path):
    result = evaluate_predictions(Y_TRUE, Y_PRED, NAMES)
    assert result.accuracy == pytest.approx(0.6)
    assert (result.confusion.to_numpy() == confusion_matrix(Y_TRUE, Y_PRED)).all()
    assert list(result.confusion.index) == NAMES
    png = Path(confusion_png(result.confusion, tmp_path / "cm.png", "test"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
