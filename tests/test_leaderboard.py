"""Row files: explicit schema, atomic idempotent writes, compaction, top-k models."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_record

from harness import RESULTS_FORMAT, HarnessError, TrialRecord, load_leaderboard
from harness._results import leaderboard as lb
from harness._results import tables
from harness._storage import Location


def row(study: str, trial: str, status: str = "completed", acc: float | None = 0.9, **extra) -> TrialRecord:
    return make_record(study, trial, status, acc, **extra)


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
    lb.write_row(tmp_path, row("a", "1", hyperparameters={"conv_blocks": 1}))
    lb.write_row(tmp_path, row("b", "2"))  # b has per-block columns a lacks
    frame = pd.read_parquet(tmp_path / "leaderboard")
    assert sorted(frame["study"]) == ["a", "b"]
    assert frame.set_index("study").loc["b", "hp_filters_2"] == 16


def test_rewriting_a_trial_replaces_its_row(tmp_path):
    lb.write_row(tmp_path, row("s", "t1", acc=0.5))
    lb.write_row(tmp_path, row("s", "t1", acc=0.7))
    frame = load_leaderboard(tmp_path)
    assert len(frame) == 1 and frame["val_accuracy"].iloc[0] == pytest.approx(0.7)


def test_compaction_keeps_every_row_exactly_once(tmp_path):
    for i in range(30):
        lb.write_row(tmp_path, row("s", f"t{i:02d}", acc=i / 100))
    lb.write_row(tmp_path, row("s", "t05", acc=0.99))  # a rewrite before compaction
    target = lb.compact(tmp_path, "s")
    assert [f.uri for f in lb.row_files(tmp_path, "s")] == [target]
    frame = pd.read_parquet(tmp_path / "leaderboard")
    assert len(frame) == 30 and frame["trial_id"].is_unique
    assert frame.set_index("trial_id").loc["t05", "val_accuracy"] == pytest.approx(0.99)
    lb.write_row(tmp_path, row("s", "t30"))
    lb.compact(tmp_path, "s")  # compacting a compacted file plus new rows
    assert len(pd.read_parquet(tmp_path / "leaderboard")) == 31


def test_compaction_leaves_a_torn_file_in_place_and_merges_the_rest(tmp_path):
    for i in range(5):
        lb.write_row(tmp_path, row("s", f"t{i}"))
    torn = tmp_path / "leaderboard" / "s" / "t9.parquet"
    torn.write_bytes(b"PAR1 torn by a crash")
    lb.compact(tmp_path, "s")
    assert torn.read_bytes() == b"PAR1 torn by a crash"  # left for the user, not deleted
    assert sorted(f.name for f in lb.row_files(tmp_path, "s"))[-1] == "t9.parquet"
    assert len(lb.row_files(tmp_path, "s")) == 2  # the merged file and the torn one
    frame = load_leaderboard(tmp_path, "s")
    assert sorted(frame["trial_id"]) == [f"t{i}" for i in range(5)]
    assert frame.attrs["unreadable"] == [f"{torn}: unreadable, skipped"]  # named by every reader
    lb.compact(tmp_path, "s")  # a later search's compaction: no traceback either


def test_compaction_interrupted_before_cleanup_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    for i in range(10):
        lb.write_row(tmp_path, row("s", f"t{i}"))

    def crash(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Location, "delete", crash)  # killed after the merged file, before cleanup
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


def test_completed_trials_outrank_pruned_ones_with_better_partial_scores(tmp_path):
    lb.write_row(tmp_path, row("s", "pruned", status="pruned", acc=0.99))
    lb.write_row(tmp_path, row("s", "done", acc=0.80))
    lb.write_row(tmp_path, row("s", "failed", status="failed", acc=None))
    assert load_leaderboard(tmp_path)["trial_id"].tolist() == ["done", "pruned", "failed"]


def test_results_format_is_written_and_newer_ones_are_refused(tmp_path):
    tables.ensure_format(tmp_path)
    assert tables.check_format(tmp_path) == RESULTS_FORMAT
    (tmp_path / tables.FORMAT_FILE).write_text('{"results_format": 99}')
    with pytest.raises(HarnessError, match="newer harness"):
        load_leaderboard(tmp_path)


def test_leaderboards_of_the_previous_format_still_load(tmp_path):
    """A version-1 row file (no feasible/stop_reason/error_kind/steady_epoch_s) reads with nulls."""
    old = lb.SCHEMA
    for name in ("feasible", "stop_reason", "error_kind", "steady_epoch_s"):
        old = old.remove(old.get_field_index(name))
    table = pa.Table.from_pylist([row("s", "old").to_row()], schema=old)
    (tmp_path / "leaderboard" / "s").mkdir(parents=True)
    pq.write_table(table, tmp_path / "leaderboard" / "s" / "old.parquet")
    frame = load_leaderboard(tmp_path)
    assert tables.check_format(tmp_path) == 1
    assert frame["trial_id"].tolist() == ["old"] and frame["stop_reason"].isna().all()
    assert frame["val_accuracy"].iloc[0] == pytest.approx(0.9)
