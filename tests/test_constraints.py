"""Constraints: infeasible trials are marked, never trained when over a parameter limit, ranked last."""

from __future__ import annotations

import pytest
from conftest import make_record, optuna_study
from optuna.trial import TrialState

from harness import load_leaderboard, load_spec, run_search
from harness._results.constraints import feasible, violations
from harness._spec.spec import Bound


def test_violations_are_relative_excesses_and_unknown_values_are_left_out():
    limits = {"params": Bound(max=1000), "train_time_s": Bound(min=1.0, max=10.0)}
    record = make_record(params=1500, train_time_s=None)
    assert violations(record, limits) == {"params_max": pytest.approx(0.5)}
    assert feasible(record, limits) is False
    assert feasible(make_record(params=500, train_time_s=20.0), limits) is False
    assert feasible(make_record(params=500, train_time_s=5.0), limits) is True
    assert feasible(record, {}) is None  # no constraints: the column stays null


@pytest.mark.slow
def test_trials_over_a_parameter_limit_are_not_trained_marked_and_ranked_last(
    tmp_path, local_ray, write_spec
):
    small = {"conv_blocks": 2, "filters": [4, 4], "learning_rate": 0.005}  # 630 parameters
    large = {"conv_blocks": 1, "filters": [8], "learning_rate": 0.005}  # 2,314 parameters
    search = {
        "trials": 4,
        "max_epochs": 2,
        "seed": 0,
        "start_from": [large, small],
        "scheduler": {"name": "none"},
    }
    path = write_spec(search=search, constraints={"params": {"max": 1500}})
    frame = run_search(load_spec(path), results_dir=tmp_path)
    assert len(frame) == 4
    over = frame[frame["params"] > 1500]
    assert len(over) >= 1 and over["feasible"].eq(False).all()
    assert over["status"].eq("pruned").all() and over["stop_reason"].eq("infeasible").all()
    assert over["epochs_run"].eq(0).all() and over["model_path"].isna().all()  # never trained
    within = frame[frame["params"] <= 1500]
    assert within["feasible"].eq(True).all() and within["status"].eq("completed").all()
    assert frame.iloc[0]["feasible"] and frame.iloc[-len(over) :]["feasible"].eq(False).all()
    trials = {t.params.get("filters_1"): t for t in optuna_study(tmp_path, "t").trials[:2]}
    assert trials[8].constraints["params_max"] > 0 and trials[8].state is TrialState.PRUNED
    assert trials[4].constraints["params_max"] <= 0 and trials[4].state is TrialState.COMPLETE
    assert load_leaderboard(tmp_path)["trial_id"].tolist() == frame["trial_id"].tolist()
