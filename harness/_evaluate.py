"""Per-class evaluation of a trial on the test set, as the tutorials show it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness._export import load_trial_model, trial_data
from harness._storage import Location, Results, atomic_write


@dataclass(frozen=True)
class Evaluation:
    """Overall accuracy, per-class metrics (worst F1 first) and the confusion matrix."""

    accuracy: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame


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
    row: pd.Series, *, results_dir: Results = "results", data_dir: str | Path | None = None
) -> Evaluation:
    """Reload the trial's model and evaluate it on the held-out test set."""
    model = load_trial_model(row)
    _, data = trial_data(row, results_dir, data_dir)
    probs = model.predict(data.x_test, verbose=0, batch_size=256)
    return evaluate_predictions(data.y_test, np.argmax(probs, axis=1), data.class_names)


def confusion_png(confusion: pd.DataFrame, path: str | Path | Location, title: str) -> str:
    """Draw the confusion matrix (counts, true label down, predicted across) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(5.0, 0.6 * len(confusion) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(confusion.to_numpy(), display_labels=list(confusion.index)).plot(
        ax=ax, xticks_rotation=45, colorbar=False, cmap="Blues"
    )
    ax.set_title(title)
    fig.tight_layout()
    written = atomic_write(path, lambda stream: fig.savefig(stream, format="png", dpi=120))
    plt.close(fig)
    return written
