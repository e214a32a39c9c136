"""The Keras callback that streams epochs to Ray Tune; imported only inside workers."""

from __future__ import annotations

import sys
import time

import keras


class ReportCallback(keras.callbacks.Callback):
    """Reports each epoch to Ray Tune (backend-neutral, unlike Ray's TF-only callback).

    It also checks, every few batches, whether Ray asked the trial to stop between
    reports (time budget, Ctrl-C), so the worker is freed mid-epoch. (A scheduler's stop
    arrives at a report, where Ray ends the trial itself.)
    """

    def __init__(self, params: int) -> None:
        super().__init__()
        self.param_count = params
        self.epoch_times: list[float] = []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch % 8 == 0 and _stop_requested():
            sys.exit(0)  # how Ray's own session ends a stopped function trainable

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from ray import tune

        self.epoch_times.append(time.perf_counter() - self._t0)
        metrics: dict = {k: float(v) for k, v in (logs or {}).items()}
        metrics.update(epoch=epoch + 1, params=self.param_count, epoch_time_s=self.epoch_times[-1])
        if epoch == 0:  # so a pruned trial's row still names what produced it
            from harness._trial import environment

            metrics.update(environment())
        tune.report(metrics)


def _stop_requested() -> bool:
    try:
        from ray.train._internal.session import get_session

        event = getattr(get_session(), "stop_event", None)
        if event is not None and event.is_set():
            event.clear()
            return True
    except Exception:  # private API: if it moves, trials just stop at the next report
        pass
    return False
