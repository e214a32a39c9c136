"""The Keras callback that streams epochs to Ray Tune; used only inside workers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras

from harness._errors import StopRequested, TooSlow
from harness._results.record import EpochRecord, now

PACE_BATCHES = 3
"""Batches timed after the first before a trial's pace is judged."""


class ReportCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Hands each finished epoch to `on_epoch(record, logs, last)`; the trial decides what to report.

    `last` is true for the epoch after which fit ends (the last epoch, or EarlyStopping's
    stop, which runs before this callback): the runner reports it after `fit`, with the
    trial's final record, so no extra report (and no extra scheduler iteration) follows the
    epochs. It also checks, every few batches, whether the search asked the trial to stop
    between reports (Ctrl-C), and raises `StopRequested` so the worker is freed mid-epoch;
    and after every batch whether the search's time budget (`deadline`, seconds since the
    epoch) has run out: then the epoch ends where it is, is validated, and the trial
    finishes as a completed one (evaluated and saved).

    `slices` maps batch counts of the first epoch to fractions of it: after those batches
    `on_slice(fraction)` validates and reports the model, so a scheduler can compare trials
    long before any finishes an epoch.

    `pace` (batches to the first report, seconds allowed) stops a trial whose first batches say
    its first report would come too late to compare it with anything (`TooSlow`).
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
        slices: dict[int, float] | None = None,
        on_slice: Callable[[float], None] | None = None,
        pace: tuple[int, float] | None = None,
    ) -> None:
        super().__init__()
        self._pace, self._t_first = pace, 0.0
        self.study, self.trial_id, self.deadline = study, trial_id, deadline
        self._slices, self._on_slice = slices or {}, on_slice
        self._epoch = 0
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
        self._t0, self._epoch = time.perf_counter(), epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._pace is not None and self._epoch == 0:
            self._check_pace(batch)
        if self.deadline is not None and time.time() >= self.deadline:
            self.model.stop_training = True  # Keras ends the epoch here: validated, then our last report
            self.cut = True
        elif batch % 8 == 0 and self._stop_requested():
            raise StopRequested  # fit ends mid-epoch; the runner returns without a final report
        elif self._epoch == 0 and batch + 1 in self._slices and self._on_slice is not None:
            self._on_slice(self._slices[batch + 1])

    def _check_pace(self, batch: int) -> None:
        """Project when the first report comes from the first batches (the first one's compilation
        counts: it is part of the wait); stop the trial if that is later than allowed."""
        assert self._pace is not None
        at, allowed = self._pace
        now = time.perf_counter()
        if batch == 0:
            self._t_first = now
        timed = batch  # batches timed after the first
        projected = self._t_first - self._t0 + (now - self._t_first) / max(timed, 1) * (at - 1)
        if (now - self._t0 > allowed) or (timed >= PACE_BATCHES and projected > allowed):
            raise TooSlow(projected, allowed)
        if timed >= PACE_BATCHES or batch + 1 >= at:
            self._pace = None  # judged once

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


def validate_mid_epoch(model: keras.Model, data: tuple[Any, Any]) -> dict[str, float]:
    """`evaluate` on the validation data inside `fit`, leaving the epoch's training metrics as
    they were (evaluate resets the metric variables that fit accumulates into)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:  # JAX holds the trained state outside the model's variables during fit
        sync()
    saved = [keras.ops.convert_to_numpy(v) for v in model.metrics_variables]
    logs = model.evaluate(*data, batch_size=512, verbose=0, return_dict=True)
    for variable, value in zip(model.metrics_variables, saved, strict=True):
        variable.assign(value)
    if keras.backend.backend() == "torch":
        model.train()  # evaluate left the torch module in eval mode; fit set training mode per epoch
    return {k: float(v) for k, v in logs.items()}
