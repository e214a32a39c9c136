"""Live search progress (Rich) and leaderboard tables; no Ray import, so queries start fast."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
