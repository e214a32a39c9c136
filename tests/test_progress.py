"""Leaderboard tables and the live progress bar."""

from __future__ import annotations

import io
import re

import pandas as pd
from conftest import make_record
from rich.console import Console

from harness._search.progress import LiveProgress, leaderboard_table


def render(table) -> str:
    console = Console(file=io.StringIO(), width=300)
    console.print(table)
    return console.file.getvalue()


def test_table_shows_main_columns_and_set_hyperparameters():
    frame = pd.DataFrame([make_record(trial_id="t1").to_row(), make_record(trial_id="t2", acc=0.5).to_row()])
    text = render(leaderboard_table(frame, title="top"))
    assert "t1" in text and "0.9" in text and "filters_2=16" in text
    assert "filters_3" not in text and "study" not in text  # one study: no study column


def test_live_progress_draws_its_study_count_and_status_on_its_console_while_current():
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    with LiveProgress("digits_demo", 3, console) as live:
        assert LiveProgress.current is live
        live.show(2, "completed 2 | best val_accuracy 0.9000")
    assert LiveProgress.current is None
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1, lines  # not a terminal: the final state, drawn once
    line = lines[0]
    assert line.startswith("digits_demo ") and "━" in line  # the study, then its bar
    assert " 2/3 completed 2 | best val_accuracy 0.9000 " in line
    assert "starting" not in line  # the status was replaced, not appended


def test_on_a_terminal_each_refresh_redraws_the_bar_in_place_with_the_latest_status():
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    with LiveProgress("s", 3, console) as live:
        live.show(1, "completed 1")
        live.progress.refresh()
        live.show(3, "completed 3")
    text = console.file.getvalue()
    frames = [f.strip() for f in re.split(r"\r\x1b\[2K", text)]  # each redraw erases the line first
    wants = ("0/3 starting", "1/3 completed 1", "3/3 completed 3")
    drawn = [[i for i, frame in enumerate(frames) if want in frame] for want in wants]
    assert all(drawn), (wants, frames)
    firsts = [at[0] for at in drawn]
    assert firsts == sorted(firsts) and frames[-1].startswith("s ") and "3/3 completed 3" in frames[-1]
