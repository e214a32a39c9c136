"""Per-epoch curves: every reported epoch of every trial, once, typed, beside the leaderboard."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import SMALL_SPACE

from harness import EpochRecord, load_curves, load_leaderboard, load_spec, run_search
from harness._results.curves import CURVES, run_started, write_curves

pytestmark = pytest.mark.slow


def test_a_search_records_every_epoch_of_completed_pruned_and_failed_trials(tmp_path, local_ray, write_spec):
    space = {
        **SMALL_SPACE,
        "conv_blocks": 1,
        "padding": "valid",
        "kernel_size": {"type": "categorical", "choices": [3, 11]},
    }  # 11 does not fit 8x8: fails
    asha = {"name": "asha", "grace_period": 1, "reduction_factor": 2}
    path = write_spec(space=space, search={"trials": 8, "max_epochs": 4, "sampler": "random", "seed": 1,
                                           "scheduler": asha})  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    curves = load_curves(tmp_path / "r", "t")
    assert set(frame["status"]) >= {"completed", "failed"}
    assert len(curves) == int(frame["epochs_run"].sum())  # pruned and failed trials included
    assert not curves.duplicated(["trial_id", "epoch"]).any()
    per_trial = curves.groupby("trial_id")["epoch"].agg(["min", "max", "count"])
    assert (per_trial["min"] == 1).all() and (per_trial["max"] == per_trial["count"]).all()
    assert str(curves["epoch"].dtype) == "Int64" and curves["val_accuracy"].dtype == "float64"
    assert (curves.groupby("trial_id")["search_s"].diff().dropna() > 0).all()  # later epochs, later times
    best = frame.iloc[0]
    chosen = curves[(curves.trial_id == best.trial_id) & (curves.epoch == best.best_epoch)]
    assert chosen["val_accuracy"].iloc[0] == pytest.approx(best.val_accuracy)
    assert len(pd.read_parquet(tmp_path / "r" / "curves")) == len(curves)  # compacted: plain pandas agrees
    assert len(CURVES.files(tmp_path / "r", "t")) == 1
    assert len(load_leaderboard(tmp_path / "r")) == 8


def test_a_rewritten_trial_keeps_only_its_latest_epochs_even_beside_a_compacted_file(tmp_path):
    def epochs(n: int, acc: float) -> list[EpochRecord]:
        return [EpochRecord(study="s", trial_id="a", epoch=i + 1, val_accuracy=acc) for i in range(n)]

    write_curves(tmp_path, "s", "a", "run-20261124-010203-000004", epochs(3, 0.5))
    write_curves(tmp_path, "s", "b", "run-20261124-010203-000004", epochs(2, 0.1))
    CURVES.compact(tmp_path, "s")
    write_curves(tmp_path, "s", "a", "run-20261124-010203-000004", epochs(2, 0.9))  # a retry, fewer epochs
    curves = load_curves(tmp_path, "s")
    assert curves[curves.trial_id == "a"]["val_accuracy"].tolist() == [0.9, 0.9]
    assert len(curves) == 4
    assert run_started("run-20261124-010203-000004").hour == 1 and run_started("elsewhere") is None
