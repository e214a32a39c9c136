"""The Parquet leaderboard's write side: one row file per trial, and compaction.

Layout: `<results>/leaderboard/<study>/<trial_id>.parquet`, `study` kept as a column
(plain folder names, no Hive partitions). Every file has the same explicit schema,
generated from `TrialRecord`, with a fixed `hp_*` column per vocabulary entry (see
harness._spec.space): pyarrow infers a directory's schema from its first file, so per-study
columns would silently vanish from `pandas.read_parquet("results/leaderboard")`. A user
model's hyperparameters, whose names are its own, travel as one JSON column for the same
reason; `load_leaderboard` gives them typed `hp_*` columns.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from harness._results.curves import CURVES
from harness._results.record import ROW_FIELDS, USER_HYPERPARAMETERS, TrialRecord, field_types, now
from harness._results.tables import TrialTable
from harness._spec.space import PARAMETERS, base_name, column_names
from harness._storage import Location, Results

_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    int: pa.int64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}
_HP_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}


def _arrow_type(kind: type) -> pa.DataType:
    return pa.string() if issubclass(kind, enum.Enum) else _ARROW_TYPES[kind]


SCHEMA = pa.schema(
    [(name, _arrow_type(kind)) for name, kind in field_types(TrialRecord).items() if name in ROW_FIELDS]
    + [(f"hp_{key}", _HP_TYPES[PARAMETERS[base_name(key)].kind]) for key in column_names()]
    + [(USER_HYPERPARAMETERS, pa.string())]
)
"""The leaderboard's columns: the record's fields, one `hp_*` column per vocabulary entry, and a
user model's hyperparameters as JSON (`load_leaderboard` turns them into typed `hp_*` columns)."""


def leaderboard_dir(results_dir: Results) -> Location:
    return LEADERBOARD.root(results_dir)


def write_row(results_dir: Results, record: TrialRecord) -> str:
    """Write one trial's row; rewriting the same trial id replaces it (idempotent)."""
    row = replace(record, written_at=now()).to_row()
    return LEADERBOARD.write(results_dir, record.study, record.trial_id, [row])


def read_table(results_dir: Results, study: str | None = None) -> pa.Table:
    return LEADERBOARD.read(results_dir, study)


def written_trial_ids(results_dir: Results, study: str) -> set[str]:
    table = read_table(results_dir, study).select(["trial_id"])
    return set(table.column("trial_id").to_pylist())


def study_records(results_dir: Results, study: str, run_id: str | None = None) -> list[TrialRecord]:
    """A study's rows as records, each trial once (its newest row); with `run_id`, that run's only."""
    rows = dedupe(read_table(results_dir, study)).to_pylist()
    return [TrialRecord.from_row(row) for row in rows if run_id is None or row["run_id"] == run_id]


def row_files(results_dir: Results, study: str) -> list[Location]:
    return LEADERBOARD.files(results_dir, study)


def studies(results_dir: Results) -> list[str]:
    return [folder.name for folder in leaderboard_dir(results_dir).folders()]


def compact(results_dir: Results, study: str) -> str | None:
    """Merge a study's row files into one file, each trial once (its newest row); its curves too."""
    CURVES.compact(results_dir, study)
    return LEADERBOARD.compact(results_dir, study)


def dedupe(table: pa.Table) -> pa.Table:
    """Keep each (study, trial_id)'s newest row."""
    keys = pc.binary_join_element_wise(table["study"], table["trial_id"], "/")
    unique = pc.unique(keys)
    if len(unique) == table.num_rows:
        return table
    order = pc.sort_indices(table, sort_keys=[("written_at", "descending")])
    newest_first = table.take(order)
    return newest_first.take(pc.index_in(unique, pc.take(keys, order)))


LEADERBOARD = TrialTable("leaderboard", SCHEMA, dedupe)
