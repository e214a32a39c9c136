"""A trial's resumable state, saved as a Ray checkpoint after every epoch; used only inside workers.

A scheduler that pauses trials (Hyperband), a retried trial and a restored search all
continue from the last finished epoch: the model with its optimizer state, the epochs
so far, the fit time so far and EarlyStopping's counters and best weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from harness._results.record import EpochRecord

MODEL, STATE, BEST_WEIGHTS = "model.keras", "state.json", "best_weights.npz"


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Everything but the model that a resumed trial needs."""

    started_at: datetime
    train_time_s: float
    epochs: list[EpochRecord]
    early_stopping: dict[str, Any] | None


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]
    """EarlyStopping whose counters and best weights survive a pause (Keras resets them per fit)."""

    def __init__(self, *, resume: dict[str, Any] | None = None, best_weights: list[Any] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self._resume, self._resume_weights = resume, best_weights

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self._resume:
            self.wait, self.stopped_epoch = self._resume["wait"], self._resume["stopped_epoch"]
            self.best, self.best_epoch = self._resume["best"], self._resume["best_epoch"]
            self.best_weights = self._resume_weights

    def state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": best,
            "best_epoch": self.best_epoch,
        }


def save(folder: Path, model: keras.Model, progress: Progress, best_weights: list[Any] | None) -> None:
    model.save(folder / MODEL)
    state = dataclasses.asdict(progress)
    state["started_at"] = progress.started_at.isoformat()
    state["epochs"] = [_epoch_json(e) for e in progress.epochs]
    (folder / STATE).write_text(json.dumps(state))
    if best_weights is not None:
        np.savez(folder / BEST_WEIGHTS, *best_weights)


def load(folder: Path) -> tuple[keras.Model, Progress, list[Any] | None]:
    """The compiled model (optimizer state included), the progress and EarlyStopping's best weights."""
    import harness._trial.model  # noqa: F401 - registers harness' custom layers for loading

    model = keras.saving.load_model(folder / MODEL)
    state = json.loads((folder / STATE).read_text())
    epochs = [EpochRecord(**{**e, "finished_at": _time(e["finished_at"])}) for e in state["epochs"]]
    progress = Progress(
        started_at=datetime.fromisoformat(state["started_at"]),
        train_time_s=state["train_time_s"],
        epochs=epochs,
        early_stopping=state["early_stopping"],
    )
    weights = None
    if (folder / BEST_WEIGHTS).is_file():
        with np.load(folder / BEST_WEIGHTS) as f:
            weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    return model, progress, weights


def _epoch_json(epoch: EpochRecord) -> dict[str, Any]:
    out = dataclasses.asdict(epoch)
    out["finished_at"] = epoch.finished_at.isoformat() if epoch.finished_at else None
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
