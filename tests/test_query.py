"""Queries: sorting by each study's objective and Pareto fronts."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_record

from harness import ArgumentError, load_leaderboard, pareto_front, sort_leaderboard
from harness import _leaderboard as lb
from harness._query import parse_objectives


def test_pareto_front_on_a_known_frame():
    frame = pd.DataFrame({
        "trial_id": list("abcdef"),
        "val_accuracy": [0.90, 0.95, 0.85, 0.95, 0.80, None],
        "params": [100, 500, 50, 400, 60, 10],
    })  # fmt: skip
    front = pareto_front(frame, {"val_accuracy": "max", "params": "min"})
    # b is dominated by d (same accuracy, fewer params); e by c; f has no accuracy
    assert front["trial_id"].tolist() == ["a", "c", "d"]
    assert pareto_front(frame, {"params": "min"})["trial_id"].tolist() == ["f"]


def test_pareto_rejects_unknown_columns_and_bad_syntax():
    with pytest.raises(ArgumentError, match=r"numeric columns \(a\). Received: objectives=\['nope'\]"):
        pareto_front(pd.DataFrame({"a": [1]}), {"nope": "max"})
    with pytest.raises(ArgumentError, match="column:max"):
        parse_objectives("val_accuracy:up")
    assert parse_objectives("val_accuracy:max, params:min") == {"val_accuracy": "max", "params": "min"}


def test_load_leaderboard_sorts_each_study_by_its_own_objective(tmp_path):
    def put(study, trial, metric, mode, acc, loss):
        record = make_record(
            study, trial, acc=acc, val_loss=loss, objective_metric=metric, objective_mode=mode
        )
        lb.write_row(tmp_path, record)

    put("acc", "1", "val_accuracy", "max", 0.5, 0.1)
    put("acc", "2", "val_accuracy", "max", 0.9, 0.9)
    put("loss", "3", "val_loss", "min", 0.9, 0.9)
    put("loss", "4", "val_loss", "min", 0.5, 0.1)
    lb.write_row(tmp_path, make_record("acc", "5", status="failed", acc=None))
    frame = load_leaderboard(tmp_path)
    assert frame["trial_id"].tolist() == ["2", "1", "5", "4", "3"]
    assert load_leaderboard(tmp_path, study="loss")["trial_id"].tolist() == ["4", "3"]
    assert load_leaderboard(tmp_path / "nothing").empty


def test_sort_leaderboard_directions_and_errors():
    frame = pd.DataFrame({"params": [3, 1, 2], "test_accuracy": [0.1, 0.3, 0.2]})
    assert sort_leaderboard(frame, "params")["params"].tolist() == [1, 2, 3]
    assert sort_leaderboard(frame, "test_accuracy")["test_accuracy"].tolist() == [0.3, 0.2, 0.1]
    assert sort_leaderboard(frame, "params", descending=True)["params"].tolist() == [3, 2, 1]
    with pytest.raises(ArgumentError, match="Received: column='nope'"):
        sort_leaderboard(frame, "nope")
