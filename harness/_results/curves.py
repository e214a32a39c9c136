"""Per-epoch curves: one Parquet row per (study, trial, epoch), beside the leaderboard.

Layout: `<results>/curves/<study>/<trial_id>.parquet`, written by the driver when the
trial's leaderboard row is (just before it), compacted with it. A trial's file holds the
epochs of its latest attempt, earlier epochs restored from a checkpoint included: a
retried or resumed trial rewrites its file whole, so there are never two versions of an
epoch, and readers keep each trial's newest file only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harness._results.record import EpochRecord, now
from harness._results.tables import TrialTable
from harness._storage import Results

CURVE_SCHEMA = pa.schema(
    [
        ("study", pa.string()),
        ("trial_id", pa.string()),
        ("run_id", pa.string()),
        ("epoch", pa.int64()),
        ("loss", pa.float64()),
        ("accuracy", pa.float64()),
        ("val_loss", pa.float64()),
        ("val_accuracy", pa.float64()),
        ("learning_rate", pa.float64()),
        ("epoch_s", pa.float64()),
        ("search_s", pa.float64()),  # seconds from the run's start to the end of this epoch
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("written_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _newest_file_per_trial(table: pa.Table) -> pa.Table:
    """Each trial's rows from its newest write only (a compacted file and a later rewrite), once:
    a compaction interrupted before it removed its sources leaves the same write in two files."""
    if table.num_rows == 0:
        return table
    keys = pc.binary_join_element_wise(table["study"], table["trial_id"], "/")
    frame = pd.DataFrame({"key": keys.to_pandas(), "epoch": table["epoch"].to_pandas(),
                          "written_at": table["written_at"].to_pandas()})  # fmt: skip
    newest = frame["written_at"] == frame.groupby("key")["written_at"].transform("max")
    keep = newest & ~frame.duplicated(["key", "epoch", "written_at"])
    return table.filter(pa.array(keep.to_numpy()))


CURVES = TrialTable("curves", CURVE_SCHEMA, _newest_file_per_trial)


def write_curves(
    results_dir: Results, study: str, trial_id: str, run_id: str, epochs: Iterable[EpochRecord]
) -> str | None:
    """Write a trial's epochs (replacing any earlier version); nothing for a trial with none."""
    started = run_started(run_id)
    written = now()

    def since_start(e: EpochRecord) -> float | None:
        return None if e.finished_at is None or started is None else (e.finished_at - started).total_seconds()

    rows = [
        {
            "study": study, "trial_id": trial_id, "run_id": run_id, "epoch": e.epoch,
            "loss": e.loss, "accuracy": e.accuracy, "val_loss": e.val_loss, "val_accuracy": e.val_accuracy,
            "learning_rate": e.learning_rate, "epoch_s": e.epoch_s, "finished_at": e.finished_at,
            "search_s": since_start(e),
            "written_at": written,
        }
        for e in sorted(epochs, key=lambda e: e.epoch)
    ]  # fmt: skip
    return CURVES.write(results_dir, study, trial_id, rows) if rows else None


def run_started(run_id: str) -> datetime | None:
    """When a run started: its id is `run-YYYYmmdd-HHMMSS-ffffff` in UTC."""
    from datetime import UTC

    try:
        return datetime.strptime(run_id, "run-%Y%m%d-%H%M%S-%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def load_curves(results_dir: Results = "results", study: str | None = None) -> pd.DataFrame:
    """Every recorded epoch of every trial (of one study): completed, pruned and failed alike.

    `pandas.read_parquet("<results>/curves")` reads the same rows, but may also return a
    trial's older file while a rewrite races a compaction: prefer this function.

    Args:
        results_dir: The results folder or URI.
        study: One study's epochs only.

    Returns:
        One row per (study, trial_id, epoch), sorted that way; unreadable files are skipped
        and named in `frame.attrs["unreadable"]`.
    """
    table, unreadable = CURVES.read_checked(results_dir, study)
    frame = _newest_file_per_trial(table).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    frame = frame.sort_values(["study", "trial_id", "epoch"], kind="stable").reset_index(drop=True)
    frame.attrs["unreadable"] = unreadable  # files skipped, as `load_leaderboard` names them
    return frame
