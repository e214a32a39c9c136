"""The Keras callback that streams epochs to Ray Tune; used only inside workers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import keras

from harness._record import REPORT_KEY, EpochRecord, EpochReport, Provenance, now


class ReportCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Reports each epoch to Ray Tune as an `EpochReport` (backend-neutral, unlike Ray's TF-only one).

    It also checks, every few batches, whether Ray asked the trial to stop between
    reports (time budget, Ctrl-C), so the worker is freed mid-epoch. (A scheduler's stop
    arrives at a report, where Ray ends the trial itself.)
    """

    def __init__(
        self,
        *,
        study: str,
        trial_id: str,
        params: int,
        provenance: Provenance,
        started_at: datetime,
        report: Callable[[dict[str, Any]], None],
        stop_requested: Callable[[], bool],
    ) -> None:
        super().__init__()
        self.study, self.trial_id, self.param_count = study, trial_id, params
        self.provenance, self.started_at = provenance, started_at
        self._report, self._stop_requested = report, stop_requested
        self.epochs: list[EpochRecord] = []
        self._t0 = 0.0

    @property
    def epoch_times(self) -> list[float]:
        return [e.epoch_s or 0.0 for e in self.epochs]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch % 8 == 0 and self._stop_requested():
            sys.exit(0)  # how Ray's own session ends a stopped function trainable

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        record = EpochRecord(
            study=self.study,
            trial_id=self.trial_id,
            epoch=epoch + 1,
            loss=_float(logs.get("loss")),
            accuracy=_float(logs.get("accuracy")),
            val_loss=_float(logs.get("val_loss")),
            val_accuracy=_float(logs.get("val_accuracy")),
            learning_rate=self._learning_rate(),
            epoch_s=time.perf_counter() - self._t0,
            finished_at=now(),
        )
        self.epochs.append(record)
        report = EpochReport(
            epoch=record, params=self.param_count, started_at=self.started_at, provenance=self.provenance
        )
        metrics = {k: float(v) for k, v in logs.items()}
        self._report({**metrics, "epoch": record.epoch, REPORT_KEY: report})

    def _learning_rate(self) -> float | None:
        try:
            return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):  # informative only
            return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
