"""The Parquet leaderboard: one row per trial, written atomically by the driver.

Layout: `<results>/leaderboard/<study>/<trial_id>.parquet`, `study` kept as a column
(plain folder names, no Hive partitions). Every file has the same explicit schema,
with a fixed `hp_*` column per vocabulary entry (see harness.space): pyarrow infers
a directory's schema from its first file, so per-study columns would silently vanish
from `pandas.read_parquet("results/leaderboard")`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - used as pa.compute
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from harness.space import PARAMETERS, base_name, column_names

_TS = pa.timestamp("us", tz="UTC")
_HP_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
BASE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("study", pa.string()),
    ("trial_id", pa.string()),
    ("run_id", pa.string()),
    ("status", pa.string()),
    ("dataset", pa.string()),
    ("val_accuracy", pa.float64()),
    ("val_loss", pa.float64()),
    ("test_accuracy", pa.float64()),
    ("test_loss", pa.float64()),
    ("epochs_run", pa.int64()),
    ("best_epoch", pa.int64()),
    ("train_time_s", pa.float64()),
    ("total_time_s", pa.float64()),
    ("first_epoch_s", pa.float64()),
    ("build_s", pa.float64()),
    ("evaluate_s", pa.float64()),
    ("save_s", pa.float64()),
    ("params", pa.int64()),
    ("error", pa.string()),
    ("backend", pa.string()),
    ("device", pa.string()),
    ("started_at", _TS),
    ("finished_at", _TS),
    ("model_path", pa.string()),
    ("objective_metric", pa.string()),
    ("objective_mode", pa.string()),
    ("spec_hash", pa.string()),
    ("harness_version", pa.string()),
    ("keras_version", pa.string()),
    ("backend_version", pa.string()),
    ("node", pa.string()),
    ("gpu_ids", pa.string()),
    ("written_at", _TS),
]
SCHEMA = pa.schema(
    BASE_FIELDS + [(f"hp_{key}", _HP_TYPES[PARAMETERS[base_name(key)].kind]) for key in column_names()]
)
STATUSES = ("completed", "pruned", "failed")


def leaderboard_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "leaderboard"


def make_row(values: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A full row: known columns from `values`, `hp_*` from the trial config, rest null."""
    row: dict[str, Any] = {name: None for name in SCHEMA.names}
    row.update({k: v for k, v in values.items() if k in row})
    for key, value in config.items():
        if f"hp_{key}" in row:
            row[f"hp_{key}"] = value
    for name in ("started_at", "finished_at"):
        if isinstance(row[name], str):
            row[name] = datetime.fromisoformat(row[name])
    row["written_at"] = datetime.now(UTC)
    if row["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {row['status']!r}")
    return row


def write_row(results_dir: str | Path, row: Mapping[str, Any]) -> Path:
    """Write one trial's row; rewriting the same trial id replaces it (idempotent)."""
    folder = leaderboard_dir(results_dir) / str(row["study"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{row['trial_id']}.parquet"
    tmp = folder / f".{row['trial_id']}.parquet.tmp"  # dot files are invisible to readers
    pq.write_table(pa.Table.from_pylist([dict(row)], schema=SCHEMA), tmp)
    os.replace(tmp, path)
    return path


def read_table(results_dir: str | Path, study: str | None = None) -> pa.Table:
    """Every complete row file, read with the fixed schema (missing columns become null)."""
    root = leaderboard_dir(results_dir)
    folder = root / study if study else root
    if not folder.is_dir():
        return SCHEMA.empty_table()
    dataset = ds.dataset(folder, schema=SCHEMA, format="parquet", exclude_invalid_files=True)
    table = dataset.to_table()
    if study:
        table = table.filter(ds.field("study") == study)
    return table


def written_trial_ids(results_dir: str | Path, study: str) -> set[str]:
    table = read_table(results_dir, study).select(["trial_id"])
    return set(table.column("trial_id").to_pylist())


def row_files(results_dir: str | Path, study: str) -> list[Path]:
    folder = leaderboard_dir(results_dir) / study
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def compact(results_dir: str | Path, study: str) -> Path | None:
    """Merge a study's row files into one file, each trial once (its newest row).

    The merged file is complete (temp + rename) before any source file is removed, and
    a source is removed only if unchanged since it was read; readers dedupe by trial id,
    so at no moment does a row go missing or count twice, even if this is interrupted.
    """
    files = row_files(results_dir, study)
    if len(files) <= 1:
        return files[0] if files else None
    stamps = {f: _stamp(f) for f in files}
    files = [f for f, stamp in stamps.items() if stamp is not None]  # another compaction won
    table = dedupe(ds.dataset(files, schema=SCHEMA, format="parquet").to_table())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = files[0].parent / f"compacted-{stamp}-{os.getpid()}.parquet"
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)
    for f in files:
        if _stamp(f) == stamps[f]:  # a rewrite (os.replace) gives a new inode: keep it
            f.unlink(missing_ok=True)
    return target


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def dedupe(table: pa.Table) -> pa.Table:
    """Keep each (study, trial_id)'s newest row."""
    pc = pa.compute
    keys = pc.binary_join_element_wise(table["study"], table["trial_id"], "/")
    unique = pc.unique(keys)
    if len(unique) == table.num_rows:
        return table
    order = pc.sort_indices(table, sort_keys=[("written_at", "descending")])
    newest_first = table.take(order)
    return newest_first.take(pc.index_in(unique, pc.take(keys, order)))


def sort_by_objective(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed trials first, then pruned, then failed; within each, best objective first.

    A pruned trial's best partial epoch is not comparable with a finished trial's
    selected epoch, so it never outranks one.
    """
    if frame.empty:
        return frame
    metric = frame["objective_metric"].fillna("val_accuracy")
    values = pd.Series(np.nan, index=frame.index)
    for name in metric.unique():
        rows = metric == name
        if name in frame.columns:
            values[rows] = pd.to_numeric(frame.loc[rows, name], errors="coerce")
    sign = frame["objective_mode"].map({"max": -1.0, "min": 1.0}).fillna(-1.0)
    tier = frame["status"].map({"completed": 0, "pruned": 1}).fillna(2)
    frame = frame.assign(_tier=tier, _key=values * sign)
    frame = frame.sort_values(["study", "_tier", "_key"], na_position="last", kind="stable")
    return frame.drop(columns=["_tier", "_key"]).reset_index(drop=True)


def keep_top_models(results_dir: str | Path, study: str, keep: int) -> list[str]:
    """Delete model files of completed trials ranked below `keep`; null their model_path.

    Returns the trial ids whose model was dropped. Rows keep every metric.
    """
    table = dedupe(read_table(results_dir, study))
    columns = ["study", "trial_id", "status", "model_path", "val_accuracy", "val_loss",
               "objective_metric", "objective_mode"]  # fmt: skip
    frame = sort_by_objective(table.select(columns).to_pandas())
    with_model = frame[frame["model_path"].notna()]
    drop = set(with_model["trial_id"].iloc[keep:])
    for record in table.to_pylist():
        if record["trial_id"] in drop:
            Path(record["model_path"]).unlink(missing_ok=True)
            write_row(results_dir, {**record, "model_path": None, "written_at": datetime.now(UTC)})
    if drop and any(f.name.startswith("compacted-") for f in row_files(results_dir, study)):
        compact(results_dir, study)  # the old rows sit in a merged file: keep one row per trial
    return sorted(drop)
