"""harness.Study: a study's rows as ranked records, one ranking shared with the leaderboard and keeper."""

from __future__ import annotations

import random

import pytest
from conftest import make_record

from harness import ArgumentError, HarnessError, Study, TrialRecord, load_leaderboard, load_study
from harness._results import leaderboard as lb
from harness._results.keeper import ModelKeeper


def put(results, *records: TrialRecord) -> None:
    for record in records:
        lb.write_row(results, record)


def test_trials_are_records_in_the_leaderboard_order_and_the_best_is_the_first_feasible_completed(tmp_path):
    put(
        tmp_path,
        make_record("s", "low", acc=0.7),
        make_record("s", "high", acc=0.95, feasible=False),  # over a constraint: never the best
        make_record("s", "mid", acc=0.8, feasible=True),
        make_record("s", "pruned", status="pruned", acc=0.99),
        make_record("s", "failed", status="failed", acc=None),
    )
    study = load_study(tmp_path)
    assert [t.trial_id for t in study.trials] == load_leaderboard(tmp_path)["trial_id"].tolist()
    assert [t.trial_id for t in study.trials] == ["mid", "low", "pruned", "failed", "high"]
    assert all(isinstance(t, TrialRecord) for t in study.trials)
    assert study.best_trial.trial_id == "mid" and study.best_trials == [study.best_trial]
    assert study.trial("low").val_accuracy == pytest.approx(0.7)
    assert study.to_pandas()["trial_id"].tolist() == [t.trial_id for t in study.trials]
    assert "completed" in repr(study) and study.name == "s"


def test_a_multi_objective_study_has_its_front_as_best_trials(tmp_path):
    objectives = {"objective_metric": "val_accuracy", "objectives": "val_accuracy:max,params:min"}
    put(
        tmp_path,
        make_record("m", "big", acc=0.95, params=1000, **objectives),
        make_record("m", "small", acc=0.90, params=100, **objectives),
        make_record("m", "worse", acc=0.85, params=500, **objectives),  # dominated by small
    )
    study = Study.load(tmp_path, study="m")
    assert [t.trial_id for t in study.best_trials] == ["big", "small"]
    assert study.best_trial.trial_id == "big"


def test_errors_say_what_is_missing(tmp_path):
    put(tmp_path, make_record("a", "1"), make_record("b", "2", status="failed", acc=None))
    with pytest.raises(ArgumentError, match=r"is needed: the studies under .* are \['a', 'b'\]"):
        load_study(tmp_path)
    with pytest.raises(ArgumentError, match="must name a study with rows"):
        load_study(tmp_path, study="c")
    with pytest.raises(HarnessError, match="study 'b' has no completed trial"):
        load_study(tmp_path, study="b").best_trial  # noqa: B018 - the property raises
    with pytest.raises(ArgumentError, match="must name a trial of study 'a'"):
        load_study(tmp_path, study="a").trial("nope")


@pytest.mark.parametrize("seed", range(5))
def test_the_keeper_keeps_exactly_the_leaderboard_top_k(tmp_path, seed):
    """One ranking: whatever the mix of feasibility, ties and directions, the models kept are the
    leaderboard's first k completed rows with a model."""
    rng = random.Random(seed)
    mode = rng.choice(["max", "min"])
    metric = "val_accuracy" if mode == "max" else "val_loss"
    keeper = ModelKeeper(tmp_path, keep=3)
    values = rng.sample([round(0.05 * k, 2) for k in range(1, 13)], 12)  # distinct: no ties to break
    for i, value in enumerate(values):
        record = make_record(
            "k", f"t{i:02d}", acc=value, val_loss=value, objective_metric=metric, objective_mode=mode,
            feasible=rng.choice([True, False, None]), model_path=f"k/t{i:02d}.keras",
        )  # fmt: skip
        put(tmp_path, record)
        keeper.add(record)
    frame = load_leaderboard(tmp_path, "k")
    assert keeper.kept == sorted(frame["trial_id"].head(3))
