"""Optuna behind Ray Tune: true trial states, start points first, warm starts, samplers by name."""

from __future__ import annotations

import importlib.util

import optuna
import pytest
from conftest import SMALL_SPACE, optuna_study
from optuna.trial import TrialState

from harness import HarnessError, load_leaderboard, load_spec, pareto_front, run_search
from harness._search.searcher import make_sampler

STATES = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def test_samplers_by_name_and_missing_packages():
    assert isinstance(make_sampler("tpe", 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("qmc", 0), optuna.samplers.QMCSampler)
    assert isinstance(make_sampler("nsga2", 0), optuna.samplers.NSGAIISampler)
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(HarnessError, match="cmaes needs the cmaes package"):
            make_sampler("cmaes", 0)


@pytest.mark.slow
def test_pruned_and_failed_trials_reach_optuna_with_their_states(tmp_path, local_ray, write_spec):
    space = {"conv_blocks": {"type": "int", "low": 1, "high": 2}, "padding": "valid", "dense_units": 8,
             "kernel_size": {"type": "categorical", "choices": [3, 11]},
             "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}  # fmt: skip
    path = write_spec(space=space, search={"trials": 8, "max_epochs": 3, "sampler": "random", "seed": 1,
                      "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2}})  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path)
    assert {"failed", "completed"} <= set(frame["status"])
    study = optuna_study(tmp_path, "t")
    assert len(study.trials) == 8 and not [t for t in study.trials if t.state is TrialState.RUNNING]
    by_params = {tuple(sorted(t.params.items())): t for t in study.trials}
    for row in frame.to_dict("records"):
        params = {k: row[f"hp_{k}"] for k in ("conv_blocks", "kernel_size", "learning_rate")}
        trial = by_params[tuple(sorted(params.items()))]
        assert trial.state is STATES[row["status"]], row["trial_id"]
        if row["status"] == "completed":
            assert trial.value == pytest.approx(row["val_accuracy"])


@pytest.mark.slow
def test_start_points_run_first_to_completion_and_are_recorded(tmp_path, local_ray, write_spec):
    worst = {"conv_blocks": 2, "filters": [4, 4], "learning_rate": 0.003}  # slow to learn: ASHA's prey
    search = {"trials": 5, "max_epochs": 3, "seed": 0, "max_concurrent": 2, "start_from": [worst],
              "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 3}}  # fmt: skip
    path = write_spec(search=search, resources={"cpus_per_trial": "auto"})
    frame = run_search(load_spec(path), results_dir=tmp_path)
    study = optuna_study(tmp_path, "t")
    first = study.trials[0]
    assert first.params == {"conv_blocks": 2, "filters_1": 4, "filters_2": 4, "learning_rate": 0.003}
    assert first.state is TrialState.COMPLETE and first.user_attrs["start_point"]
    row = frame[(frame.hp_filters_1 == 4) & (frame.hp_filters_2 == 4) & (frame.hp_learning_rate == 0.003)]
    assert len(row) == 1 and row.iloc[0]["status"] == "completed" and row.iloc[0]["epochs_run"] == 3
    assert row.iloc[0]["started_at"] == frame["started_at"].min()  # evaluated first
    assert row.iloc[0]["cpus"] == 2 and frame.drop(row.index)["cpus"].eq(1).all()  # on the whole node


@pytest.mark.slow
def test_warm_start_puts_earlier_trials_in_the_study_before_the_first_suggestion(
    tmp_path, local_ray, write_spec
):
    search = {"trials": 3, "max_epochs": 2, "seed": 0, "scheduler": {"name": "none"}}
    run_search(load_spec(write_spec(study="first", search=search)), results_dir=tmp_path)
    earlier = load_leaderboard(tmp_path, "first")
    path = write_spec(study="second", search={**search, "trials": 2, "warm_start": ["first"]})
    run_search(load_spec(path), results_dir=tmp_path)
    study = optuna_study(tmp_path, "second")
    assert len(study.trials) == 5
    warm, own = study.trials[:3], study.trials[3:]
    assert sorted(t.user_attrs["warm_start"] for t in warm) == sorted(f"first/{i}" for i in earlier.trial_id)
    assert all(t.state is TrialState.COMPLETE for t in warm)
    assert sorted(t.value for t in warm) == pytest.approx(sorted(earlier["val_accuracy"]))
    assert not any("warm_start" in t.user_attrs for t in own)
    with pytest.raises(HarnessError, match="study 'nope' has no rows"):
        run_search(load_spec(write_spec(study="third", search={**search, "warm_start": ["nope"]})),
                   results_dir=tmp_path)  # fmt: skip


@pytest.mark.slow
def test_a_multi_objective_search_returns_its_front_first(tmp_path, local_ray, write_spec):
    objective = [{"metric": "val_accuracy"}, {"metric": "params"}]
    path = write_spec(
        objective=objective, search={"trials": 5, "max_epochs": 1, "seed": 0, "sampler": "nsga2"}
    )
    frame = run_search(load_spec(path), results_dir=tmp_path)
    assert len(frame) == 5 and frame["status"].eq("completed").all()
    assert frame["objectives"].eq("val_accuracy:max,params:min").all()
    front = pareto_front(frame, {"val_accuracy": "max", "params": "min"})
    assert set(frame.head(len(front))["trial_id"]) == set(front["trial_id"])  # the front ranks first
    study = optuna_study(tmp_path, "t")
    assert len(study.directions) == 2 and all(t.state is TrialState.COMPLETE for t in study.trials)
    assert {tuple(t.values) for t in study.best_trials} == {
        (row.val_accuracy, row.params) for row in front.itertuples()
    }


def test_optuna_keeps_one_trial_per_row_in_sqlite_with_the_same_params_values_and_states(
    tmp_path, local_ray, write_spec
):
    """What optuna-dashboard shows (`optuna-dashboard sqlite:///results/optuna.db`) matches the rows."""
    space = {**SMALL_SPACE, "padding": "valid", "kernel_size": {"type": "categorical", "choices": [3, 11]}}
    asha = {"name": "asha", "grace_period": 1, "reduction_factor": 2}
    path = write_spec(space=space, search={"trials": 6, "max_epochs": 3, "sampler": "random", "seed": 3,
                                           "scheduler": asha})  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    url = f"sqlite:///{tmp_path / 'r' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(url)
    assert name == f"t-{frame.attrs['run_id']}"
    trials = {t.user_attrs["trial_id"]: t for t in optuna.load_study(study_name=name, storage=url).trials}
    assert set(trials) == set(frame["trial_id"])  # every trial told: none left RUNNING
    states = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    for row in frame.itertuples():
        trial = trials[row.trial_id]
        assert trial.state is states[row.status]
        assert trial.params["kernel_size"] == row.hp_kernel_size
        if row.status == "completed":
            assert trial.value == pytest.approx(row.val_accuracy)
        # one value per epoch, at its fidelity (4 units an epoch: rungs at 1/4 and 1/2 of the first)
        steps = set(trial.intermediate_values)
        assert {s for s in steps if s % 4 == 0} == {4 * (e + 1) for e in range(row.epochs_run)}
        assert steps - {1, 2} == {s for s in steps if s % 4 == 0}
