"""Live search progress (Rich) and leaderboard tables, kept out of the search logic."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from harness.spec import Objective

TABLE_COLUMNS = [
    "study", "trial_id", "status", "val_accuracy", "test_accuracy",
    "epochs_run", "params", "train_time_s",
]  # fmt: skip
HEADERS = {
    "val_accuracy": "val acc",
    "test_accuracy": "test acc",
    "epochs_run": "epochs",
    "train_time_s": "fit s",
    "trial_id": "trial",
}


def _callback_base() -> type:
    from ray.tune import Callback

    return Callback


class LiveProgress:
    """The driver's progress bar; the (pickled, restorable) callback draws through it."""

    current: LiveProgress | None = None

    def __init__(self, study: str, total: int, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )  # fmt: skip
        self.task = self.progress.add_task(study, total=total, status="starting")

    def __enter__(self) -> LiveProgress:
        LiveProgress.current = self
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        LiveProgress.current = None

    def show(self, done: int, status: str) -> None:
        self.progress.update(self.task, completed=done, status=status)


class SearchProgress(_callback_base()):  # type: ignore[misc]
    """A Ray Tune callback counting running/done/pruned/failed trials and the best so far.

    It holds only counts, so Ray can pickle it with the experiment and a resumed run
    carries on counting; the drawing is `LiveProgress.current`'s.
    """

    def __init__(self, study: str, total: int, objective: Objective):
        self.study, self.total = study, total
        self.metric, self.mode = objective.metric, objective.mode
        self.counts = {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
        self.best: float | None = None

    def _refresh(self) -> None:
        live = LiveProgress.current
        if live is None:
            return
        done = self.counts["completed"] + self.counts["pruned"] + self.counts["failed"]
        best = "-" if self.best is None else f"{self.best:.4f}"
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        live.show(done, f"{counts} | best {self.metric} {best}")

    def setup(self, **info: Any) -> None:
        self.counts["running"] = 0  # a resumed run restarts its unfinished trials

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.counts["running"] += 1
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        status = last.get("status", "pruned") if last.get("final") else "pruned"
        self._finish(status, last.get(self.metric))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish("failed", None)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._consider(result.get(self.metric))
        self._refresh()

    def _finish(self, status: str, value: float | None) -> None:
        self.counts["running"] = max(0, self.counts["running"] - 1)
        self.counts[status] = self.counts.get(status, 0) + 1
        self._consider(value)
        self._refresh()

    def _consider(self, value: float | None) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = float(value)


def leaderboard_table(frame: pd.DataFrame, title: str = "Leaderboard") -> Table:
    """Main columns, then the hyperparameters as one compact `name=value` column."""
    columns = [c for c in TABLE_COLUMNS if c in frame.columns]
    if frame["study"].nunique() <= 1:
        columns.remove("study")
    table = Table(title=title)
    for col in columns:
        table.add_column(HEADERS.get(col, col), no_wrap=True)
    table.add_column("hyperparameters", overflow="fold")
    hp_cols = [c for c in frame.columns if c.startswith("hp_")]
    for record in frame.to_dict("records"):
        hps = " ".join(f"{c.removeprefix('hp_')}={_fmt(record[c])}" for c in hp_cols if _fmt(record[c]))
        table.add_row(*(_fmt(record[c]) for c in columns), hps)
    return table


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
