"""Leaderboard tables and the live progress bar."""

from __future__ import annotations

import io

import pandas as pd
from conftest import make_record
from rich.console import Console

from harness._progress import LiveProgress, leaderboard_table


def render(table) -> str:
    console = Console(file=io.StringIO(), width=300)
    console.print(table)
    return console.file.getvalue()


def test_table_shows_main_columns_and_set_hyperparameters():
    frame = pd.DataFrame([make_record(trial_id="t1").to_row(), make_record(trial_id="t2", acc=0.5).to_row()])
    text = render(leaderboard_table(frame, title="top"))
    assert "t1" in text and "0.9" in text and "filters_2=16" in text
    assert "filters_3" not in text and "study" not in text  # one study: no study column


def test_live_progress_is_current_only_while_open():
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    with LiveProgress("s", 3, console) as live:
        assert LiveProgress.current is live
        live.show(2, "completed 2")
    assert LiveProgress.current is None
