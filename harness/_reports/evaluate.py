"""Per-class evaluation of a trial on the test set, as the tutorials show it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness._data import Data
from harness._reports.export import load_trial_model, trial_data
from harness._storage import Location, Results, atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MISCLASSIFIED_SHOWN = 32


@dataclass(frozen=True)
class Misclassified:
    """Test images the model got wrong (the first few), with true and predicted class names."""

    images: np.ndarray  # uint8, (n, height, width, channels)
    true: list[str]
    predicted: list[str]


@dataclass(frozen=True)
class Evaluation:
    """Overall accuracy, per-class metrics (worst F1 first) and the confusion matrix."""

    accuracy: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    misclassified: Misclassified | None = None  # set by `evaluate_trial`, which has the images


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, sorted by F1 (lowest first: what to fix)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    table = pd.DataFrame(
        {"class": class_names, "precision": precision, "recall": recall, "f1": f1, "support": support}
    )
    return table.sort_values(["f1", "class"], kind="stable").reset_index(drop=True)


def evaluate_predictions(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> Evaluation:
    from sklearn.metrics import accuracy_score, confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        per_class=per_class_table(y_true, y_pred, class_names),
        confusion=pd.DataFrame(matrix, index=class_names, columns=class_names),
    )


def evaluate_trial(
    row: pd.Series, *, results_dir: Results = "results", data_dir: str | Path | None = None,
    data: Data | None = None,
) -> Evaluation:  # fmt: skip
    """Reload a trial's model and evaluate it on the held-out test set.

    Args:
        row: The trial's leaderboard row (`select_trial`).
        results_dir: The results folder the row came from.
        data_dir: Where the built-in datasets are.
        data: The arrays the search was given from Python.

    Returns:
        Accuracy, a per-class precision/recall/F1 table, the confusion matrix and the
        first misclassified test images.

    Raises:
        ExportError: The trial has no kept model.
        DataError: The dataset cannot be found.
    """
    model = load_trial_model(row)
    _, dataset = trial_data(row, results_dir, data_dir, data)
    predicted = np.argmax(model.predict(dataset.x_test, verbose=0, batch_size=256), axis=1)
    wrong = np.flatnonzero(predicted != dataset.y_test)[:MISCLASSIFIED_SHOWN]
    names = dataset.class_names
    mistakes = Misclassified(
        images=np.asarray(dataset.x_test[wrong]),
        true=[names[i] for i in dataset.y_test[wrong]],
        predicted=[names[i] for i in predicted[wrong]],
    )
    evaluation = evaluate_predictions(dataset.y_test, predicted, names)
    return replace(evaluation, misclassified=mistakes)


def confusion_png(confusion: pd.DataFrame, path: str | Path | Location, title: str) -> str:
    """Draw the confusion matrix (counts, true label down, predicted across) to a PNG."""
    fig = confusion_figure(confusion, title)
    return atomic_write(path, lambda stream: fig.savefig(stream, format="png", dpi=120))


def confusion_figure(confusion: pd.DataFrame, title: str) -> Figure:
    """A `Figure` of its own (not pyplot's): a notebook's backend and figures are left alone."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(5.0, 0.6 * len(confusion) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ConfusionMatrixDisplay(confusion.to_numpy(), display_labels=list(confusion.index)).plot(
        ax=ax, xticks_rotation=45, colorbar=False, cmap="Blues"
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def misclassified_figure(mistakes: Misclassified, columns: int = 8) -> Figure:
    """A grid of wrongly classified test images, each titled predicted / true."""
    from matplotlib.figure import Figure

    count = max(1, len(mistakes.images))
    rows = -(-count // columns)
    fig = Figure(figsize=(1.6 * columns, 1.9 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown = zip(axes.flat, mistakes.images, mistakes.true, mistakes.predicted, strict=False)
    for ax, image, true, predicted in shown:
        gray = image.shape[-1] == 1
        ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None)
        ax.set_title(f"{predicted}\n(true {true})", fontsize=7, color="C3")
    fig.tight_layout()
    return fig
