"""Row files: explicit schema, atomic idempotent writes, compaction, top-k models."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from harness import leaderboard as lb
from harness.results import load_leaderboard


def row(study: str, trial: str, status: str = "completed", acc: float | None = 0.9, **extra) -> dict:
    values = {
        "study": study, "trial_id": trial, "status": status, "dataset": "digits",
        "val_accuracy": acc, "val_loss": None if acc is None else 1 - acc,
        "objective_metric": "val_accuracy", "objective_mode": "max",
        "started_at": datetime.now(UTC).isoformat(), **extra,
    }  # fmt: skip
    if status == "completed":
        values.update(test_accuracy=acc, params=100, epochs_run=2)
    if status == "failed":
        values.update(error="TrialFailed: boom")
    return lb.make_row(values, {"conv_blocks": 2, "filters_1": 8, "filters_2": 16, "optimizer": "adam"})


@pytest.mark.parametrize("first", ["failed", "pruned", "completed"])
def test_schema_is_the_same_whichever_status_is_written_first(tmp_path, first):
    order = [first] + [s for s in ("completed", "pruned", "failed") if s != first]
    for i, status in enumerate(order):
        lb.write_row(tmp_path, row("s", f"t{i}", status, acc=None if status == "failed" else 0.5 + i / 10))
    assert len(pd.read_parquet(tmp_path / "leaderboard")) == 3
    frame = load_leaderboard(tmp_path)
    assert frame["test_accuracy"].dtype == "float64" and frame["params"].dtype == "Int64"
    assert frame["error"].notna().sum() == 1 and frame["params"].isna().sum() == 2
    assert frame["hp_filters_2"].dtype == "Int64" and frame["hp_optimizer"].tolist() == ["adam"] * 3
    for path in (tmp_path / "leaderboard" / "s").glob("*.parquet"):
        assert pq.read_schema(path).equals(lb.SCHEMA, check_metadata=False)


def test_read_parquet_over_two_studies_keeps_every_column(tmp_path):
    lb.write_row(tmp_path, lb.make_row({**row("a", "1"), "status": "completed"}, {"conv_blocks": 1}))
    lb.write_row(tmp_path, row("b", "2"))  # b has per-block columns a lacks
    frame = pd.read_parquet(tmp_path / "leaderboard")
    assert sorted(frame["study"]) == ["a", "b"]
    assert frame.set_index("study").loc["b", "hp_filters_2"] == 16


def test_rewriting_a_trial_replaces_its_row(tmp_path):
    lb.write_row(tmp_path, row("s", "t1", acc=0.5))
    lb.write_row(tmp_path, row("s", "t1", acc=0.7))
    frame = load_leaderboard(tmp_path)
    assert len(frame) == 1 and frame["val_accuracy"].iloc[0] == pytest.approx(0.7)


def test_make_row_rejects_unknown_status():
    with pytest.raises(ValueError, match="status must be one of"):
        row("s", "t", status="weird")


def test_compaction_keeps_every_row_exactly_once(tmp_path):
    for i in range(30):
        lb.write_row(tmp_path, row("s", f"t{i:02d}", acc=i / 100))
    lb.write_row(tmp_path, row("s", "t05", acc=0.99))  # a rewrite before compaction
    target = lb.compact(tmp_path, "s")
    assert lb.row_files(tmp_path, "s") == [target]
    frame = pd.read_parquet(tmp_path / "leaderboard")
    assert len(frame) == 30 and frame["trial_id"].is_unique
    assert frame.set_index("trial_id").loc["t05", "val_accuracy"] == pytest.approx(0.99)
    lb.write_row(tmp_path, row("s", "t30"))
    lb.compact(tmp_path, "s")  # compacting a compacted file plus new rows
    assert len(pd.read_parquet(tmp_path / "leaderboard")) == 31


def test_compaction_interrupted_before_cleanup_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    for i in range(10):
        lb.write_row(tmp_path, row("s", f"t{i}"))

    def crash(self, missing_ok=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        lb.compact(tmp_path, "s")
    monkeypatch.undo()
    frame = load_leaderboard(tmp_path)
    assert len(frame) == 10 and frame["trial_id"].is_unique
    lb.compact(tmp_path, "s")
    assert len(lb.row_files(tmp_path, "s")) == 1
    assert len(pd.read_parquet(tmp_path / "leaderboard")) == 10


def test_reading_while_rows_are_written(tmp_path):
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            lb.write_row(tmp_path, row("s", f"t{i}"))
            i += 1

    lb.write_row(tmp_path, row("s", "first"))
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        sizes = []
        deadline = time.time() + 3
        while time.time() < deadline:
            frame = load_leaderboard(tmp_path)  # never sees a half-written file
            assert frame["trial_id"].is_unique
            sizes.append(len(frame))
    finally:
        stop.set()
        thread.join()
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_keep_top_models_drops_the_rest_and_nulls_model_path(tmp_path):
    for i, acc in enumerate([0.5, 0.9, 0.7, 0.8]):
        model = tmp_path / f"m{i}.keras"
        model.write_text("x")
        lb.write_row(tmp_path, row("s", f"t{i}", acc=acc, model_path=str(model)))
    dropped = lb.keep_top_models(tmp_path, "s", keep=2)
    assert dropped == ["t0", "t2"]
    frame = load_leaderboard(tmp_path).set_index("trial_id")
    assert pd.isna(frame.loc["t0", "model_path"]) and not (tmp_path / "m0.keras").exists()
    assert Path(frame.loc["t1", "model_path"]).exists() and Path(frame.loc["t3", "model_path"]).exists()
    assert frame.loc["t0", "val_accuracy"] == pytest.approx(0.5)  # metrics stay


def test_completed_trials_outrank_pruned_ones_with_better_partial_scores(tmp_path):
    lb.write_row(tmp_path, row("s", "pruned", status="pruned", acc=0.99))
    lb.write_row(tmp_path, row("s", "done", acc=0.80))
    lb.write_row(tmp_path, row("s", "failed", status="failed", acc=None))
    assert load_leaderboard(tmp_path)["trial_id"].tolist() == ["done", "pruned", "failed"]


def test_dropping_models_after_compaction_keeps_one_row_per_trial(tmp_path):
    for i, acc in enumerate([0.5, 0.9, 0.7]):
        model = tmp_path / f"m{i}.keras"
        model.write_text("x")
        lb.write_row(tmp_path, row("s", f"t{i}", acc=acc, model_path=str(model)))
    lb.compact(tmp_path, "s")  # rows now live in one merged file
    assert lb.keep_top_models(tmp_path, "s", keep=1) == ["t0", "t2"]
    frame = pd.read_parquet(tmp_path / "leaderboard")  # the raw read, no dedupe
    assert sorted(frame["trial_id"]) == ["t0", "t1", "t2"]
    assert frame.set_index("trial_id")["model_path"].notna().to_dict() == {
        "t0": False,
        "t1": True,
        "t2": False,
    }
