"""The Parquet leaderboard's write side: one row file per trial, compaction, the format version.

Layout: `<results>/leaderboard/<study>/<trial_id>.parquet`, `study` kept as a column
(plain folder names, no Hive partitions). Every file has the same explicit schema,
generated from `TrialRecord`, with a fixed `hp_*` column per vocabulary entry (see
harness._space): pyarrow infers a directory's schema from its first file, so per-study
columns would silently vanish from `pandas.read_parquet("results/leaderboard")`.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import replace
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from harness._errors import HarnessError
from harness._record import ROW_FIELDS, TrialRecord, field_types, now
from harness._space import PARAMETERS, base_name, column_names
from harness._storage import Location, Results, atomic_write, write_text
from harness._version import RESULTS_FORMAT, __version__

FORMAT_FILE = "harness-results.json"
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
)
"""The leaderboard's columns: the record's fields, then one `hp_*` column per vocabulary entry."""


def leaderboard_dir(results_dir: Results) -> Location:
    return Location.of(results_dir) / "leaderboard"


def write_row(results_dir: Results, record: TrialRecord) -> str:
    """Write one trial's row; rewriting the same trial id replaces it (idempotent)."""
    record = replace(record, written_at=now())
    table = pa.Table.from_pylist([record.to_row()], schema=SCHEMA)
    target = leaderboard_dir(results_dir) / record.study / f"{record.trial_id}.parquet"
    return atomic_write(target, lambda stream: pq.write_table(table, stream))


def read_table(results_dir: Results, study: str | None = None) -> pa.Table:
    """Every complete row file, read with the fixed schema (missing columns become null)."""
    check_format(results_dir)
    root = leaderboard_dir(results_dir)
    folder = root / study if study else root
    if not folder.is_dir():
        return SCHEMA.empty_table()
    dataset = ds.dataset(
        folder.path, filesystem=folder.fs, schema=SCHEMA, format="parquet", exclude_invalid_files=True
    )
    table = dataset.to_table()
    if study:
        table = table.filter(ds.field("study") == study)
    return table


def written_trial_ids(results_dir: Results, study: str) -> set[str]:
    table = read_table(results_dir, study).select(["trial_id"])
    return set(table.column("trial_id").to_pylist())


def row_files(results_dir: Results, study: str) -> list[Location]:
    return (leaderboard_dir(results_dir) / study).files(".parquet")


def studies(results_dir: Results) -> list[str]:
    return [folder.name for folder in leaderboard_dir(results_dir).folders()]


def compact(results_dir: Results, study: str) -> str | None:
    """Merge a study's row files into one file, each trial once (its newest row).

    The merged file is complete (atomic write) before any source file is removed, and
    a source is removed only if unchanged since it was read (its stamp: inode, time and
    size; time and size on object stores); readers dedupe by trial id, so at no moment
    does a row go missing or count twice, even if this is interrupted.
    """
    files = row_files(results_dir, study)
    if len(files) <= 1:
        return files[0].uri if files else None
    stamps = {f.uri: f.stamp() for f in files}
    files = [f for f in files if stamps[f.uri] is not None]  # another compaction won
    paths = [f.path for f in files]
    table = dedupe(ds.dataset(paths, filesystem=files[0].fs, schema=SCHEMA, format="parquet").to_table())
    stamp = now().strftime("%Y%m%dT%H%M%S%f")
    target = files[0].parent / f"compacted-{stamp}-{os.getpid()}.parquet"
    written = atomic_write(target, lambda stream: pq.write_table(table, stream))
    for f in files:
        if f.stamp() == stamps[f.uri]:  # a rewrite gives a new inode (locally) or a new time
            f.delete()
    return written


def dedupe(table: pa.Table) -> pa.Table:
    """Keep each (study, trial_id)'s newest row."""
    keys = pc.binary_join_element_wise(table["study"], table["trial_id"], "/")
    unique = pc.unique(keys)
    if len(unique) == table.num_rows:
        return table
    order = pc.sort_indices(table, sort_keys=[("written_at", "descending")])
    newest_first = table.take(order)
    return newest_first.take(pc.index_in(unique, pc.take(keys, order)))


def ensure_format(results_dir: Results) -> None:
    """Mark a results folder with this version's format (refusing newer ones)."""
    check_format(results_dir)
    write_text(
        Location.of(results_dir) / FORMAT_FILE,
        json.dumps({"results_format": RESULTS_FORMAT, "written_by": f"harness {__version__}"}),
    )


def check_format(results_dir: Results) -> int:
    """The folder's results-format version (1 when unmarked); a newer one is refused."""
    path = Location.of(results_dir) / FORMAT_FILE
    if not path.is_file():
        return 1
    try:
        version = int(json.loads(path.read_text())["results_format"])
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path}: unreadable results-format file ({exc}); restore or remove it.") from None
    if version > RESULTS_FORMAT:
        raise HarnessError(
            f"{results_dir}: results format {version} was written by a newer harness; this is "
            f"harness {__version__} (format {RESULTS_FORMAT}). Upgrade harness to read it."
        )
    return version
