"""Queries: sorting by each study's objective and Pareto fronts."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_record

from harness import ArgumentError, load_leaderboard, pareto_front, sort_leaderboard
from harness._results import leaderboard as lb
from harness._results.query import parse_objectives


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


def test_pareto_ranks_peel_fronts():
    from harness._results.query import pareto_ranks

    frame = pd.DataFrame({"a": [0.9, 0.8, 0.95, 0.7, None, 0.85], "p": [100, 50, 200, 60, 10, 150]})
    ranks = pareto_ranks(frame, {"a": "max", "p": "min"}).tolist()
    assert ranks[:4] == [0, 0, 0, 1] and pd.isna(ranks[4]) and ranks[5] == 1


def test_infeasible_rows_never_rank_first(tmp_path):
    lb.write_row(tmp_path, make_record(trial_id="big", acc=0.99, feasible=False, params=900))
    lb.write_row(tmp_path, make_record(trial_id="small", acc=0.80, feasible=True, params=90))
    lb.write_row(tmp_path, make_record(trial_id="cut", status="pruned", acc=0.5, feasible=True))
    assert load_leaderboard(tmp_path)["trial_id"].tolist() == ["small", "cut", "big"]


def test_a_multi_objective_study_ranks_by_pareto_rank_then_its_first_objective(tmp_path):
    both = "val_accuracy:max,params:min"
    for trial_id, acc, params in [("a", 0.90, 500), ("b", 0.85, 100), ("c", 0.80, 600), ("d", 0.95, 900)]:
        lb.write_row(tmp_path, make_record(trial_id=trial_id, acc=acc, params=params, objectives=both))
    frame = load_leaderboard(tmp_path)
    assert frame["trial_id"].tolist() == ["d", "a", "b", "c"]  # front {d, a, b} by accuracy, then c
    assert frame["objectives"].eq(both).all() and frame["objective_metric"].eq("val_accuracy").all()


def test_within_params_answers_the_best_model_under_a_budget(tmp_path):
    from harness import select_trial
    from harness._results.query import within_params

    lb.write_row(tmp_path, make_record(trial_id="big", acc=0.99, params=900_000))
    lb.write_row(tmp_path, make_record(trial_id="small", acc=0.90, params=90_000))
    assert select_trial(tmp_path, max_params=100_000)["trial_id"] == "small"
    assert select_trial(tmp_path)["trial_id"] == "big"
    assert within_params(load_leaderboard(tmp_path), 10)["trial_id"].tolist() == []
    with pytest.raises(ArgumentError, match="`max_params` must be a positive number"):
        within_params(load_leaderboard(tmp_path), 0)
