"""The Keras callback that streams epochs to Ray Tune; used only inside workers."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import keras

from harness._record import EpochRecord, now


class ReportCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Hands each finished epoch to `on_epoch(record, logs, last)`; the trial decides what to report.

    `last` is true for the epoch after which fit ends (the last epoch, or EarlyStopping's
    stop, which runs before this callback): its report carries the trial's final record,
    so no extra report (and no extra scheduler iteration) follows the epochs. It also
    checks, every few batches, whether Ray asked the trial to stop between reports (Ctrl-C),
    so the worker is freed mid-epoch; and after every batch whether the search's time budget
    (`deadline`, seconds since the epoch) has run out: then the epoch ends where it is, is
    validated, and the trial finishes as a completed one (evaluated and saved).
    """

    def __init__(
        self,
        *,
        study: str,
        trial_id: str,
        on_epoch: Callable[[EpochRecord, dict[str, float], bool], None],
        stop_requested: Callable[[], bool],
        epochs: list[EpochRecord] | None = None,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.study, self.trial_id, self.deadline = study, trial_id, deadline
        self.cut = False  # training ended by the deadline
        self._on_epoch, self._stop_requested = on_epoch, stop_requested
        self.epochs: list[EpochRecord] = list(epochs or [])  # a resumed trial's earlier epochs
        self._t0 = 0.0

    @property
    def epoch_times(self) -> list[float]:
        return [e.epoch_s or 0.0 for e in self.epochs]

    def history(self) -> dict[str, list[float]]:
        """Keras' `History.history` over every epoch, earlier attempts' included."""
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        return {
            k: [math.nan if getattr(e, k) is None else float(getattr(e, k)) for e in self.epochs]
            for k in keys
        }

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.deadline is not None and time.time() >= self.deadline:
            self.model.stop_training = True  # Keras ends the epoch here: validated, then our last report
            self.cut = True
        elif batch % 8 == 0 and self._stop_requested():
            sys.exit(0)  # how Ray's own session ends a stopped function trainable

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        record = EpochRecord(
            study=self.study,
            trial_id=self.trial_id,
            epoch=epoch + 1,
            loss=metrics.get("loss"),
            accuracy=metrics.get("accuracy"),
            val_loss=metrics.get("val_loss"),
            val_accuracy=metrics.get("val_accuracy"),
            learning_rate=self._learning_rate(),
            epoch_s=time.perf_counter() - self._t0,
            finished_at=now(),
        )
        self.epochs.append(record)
        last = epoch + 1 >= int(self.params.get("epochs", 0)) or bool(self.model.stop_training)
        self._on_epoch(record, metrics, last)

    def _learning_rate(self) -> float | None:
        try:
            return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):  # informative only
            return None
