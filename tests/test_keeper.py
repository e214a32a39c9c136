"""Keep-top-k: the best models stay, the rest are dropped with their rows rewritten."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import make_record

from harness import load_leaderboard
from harness._results.keeper import ModelKeeper
from harness._results.leaderboard import compact, write_row
from harness._results.models import stored_path


def recorded(tmp_path: Path, trial: str, acc: float, **extra) -> object:
    model = tmp_path / "models" / "s" / f"{trial}.keras"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_text("x")
    record = make_record(trial_id=trial, acc=acc, model_path=stored_path("s", trial), **extra)
    write_row(tmp_path, record)
    return record


def test_keeps_the_best_and_drops_the_rest(tmp_path):
    keeper = ModelKeeper(tmp_path, keep=2)
    dropped = [keeper.add(recorded(tmp_path, f"t{i}", acc)) for i, acc in enumerate([0.5, 0.9, 0.7, 0.8])]
    assert dropped == [[], [], ["t0"], ["t2"]]
    assert keeper.kept == ["t1", "t3"]
    frame = load_leaderboard(tmp_path).set_index("trial_id")
    assert pd.isna(frame.loc["t0", "model_path"]) and not (tmp_path / "models/s/t0.keras").exists()
    assert Path(frame.loc["t1", "model_path"]).exists() and Path(frame.loc["t3", "model_path"]).exists()
    assert frame.loc["t0", "val_accuracy"] == pytest.approx(0.5)  # metrics stay


def test_minimised_objectives_and_rows_without_models(tmp_path):
    keeper = ModelKeeper(tmp_path, keep=1)
    keeper.add(recorded(tmp_path, "a", 0.5, objective_metric="val_loss", objective_mode="min", val_loss=0.3))
    keeper.add(recorded(tmp_path, "b", 0.5, objective_metric="val_loss", objective_mode="min", val_loss=0.2))
    assert keeper.kept == ["b"]
    assert keeper.add(make_record(trial_id="p", status="pruned")) == []
    assert keeper.add(make_record(trial_id="f", status="failed", acc=None)) == []


def test_ties_keep_the_earlier_trial(tmp_path):
    keeper = ModelKeeper(tmp_path, keep=1)
    keeper.add(recorded(tmp_path, "first", 0.8))
    assert keeper.add(recorded(tmp_path, "second", 0.8)) == ["second"]


def test_a_resumed_search_reads_the_study_once_and_keeps_ranking(tmp_path):
    for i, acc in enumerate([0.5, 0.9, 0.7]):
        recorded(tmp_path, f"t{i}", acc)
    compact(tmp_path, "s")  # rows from an earlier run live in one merged file
    keeper = ModelKeeper.for_study(tmp_path, "s", keep=1)
    assert keeper.kept == ["t1"]
    keeper.add(recorded(tmp_path, "t3", 0.95))
    compact(tmp_path, "s")
    frame = pd.read_parquet(tmp_path / "leaderboard")  # the raw read: one row per trial
    assert sorted(frame["trial_id"]) == ["t0", "t1", "t2", "t3"]
    assert frame.set_index("trial_id")["model_path"].notna().to_dict() == {
        "t0": False, "t1": False, "t2": False, "t3": True,
    }  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("models/s/*.keras")) == ["t3.keras"]


def test_an_infeasible_model_goes_before_any_feasible_one(tmp_path):
    keeper = ModelKeeper(tmp_path, keep=1)
    keeper.add(recorded(tmp_path, "big", 0.99, feasible=False))
    assert keeper.add(recorded(tmp_path, "small", 0.70, feasible=True)) == ["big"]
    assert keeper.kept == ["small"]
