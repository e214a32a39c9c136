"""Parquet datasets under a results folder, one file per trial, and the folder's format version.

The leaderboard (one row per trial) and the curves (one row per epoch) share the write,
read and compaction rules here; they differ in folder, schema and which rows win.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from harness._errors import HarnessError
from harness._names import check_name
from harness._results.record import now
from harness._storage import Location, Results, atomic_write, write_text
from harness._version import RESULTS_FORMAT, __version__

FORMAT_FILE = "harness-results.json"


@dataclass(frozen=True)
class TrialTable:
    """A Parquet dataset under the results, one file per trial and study folder, compacted per study.

    The leaderboard (one row per trial) and the curves (one row per epoch) share the
    write, read and compaction rules; they differ in folder, schema and which rows win.
    """

    folder: str
    schema: pa.Schema
    dedupe: Callable[[pa.Table], pa.Table]

    def root(self, results_dir: Results) -> Location:
        return Location.of(results_dir) / self.folder

    def write(
        self, results_dir: Results, study: str, trial_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> str:
        """Write one trial's rows; rewriting the same trial id replaces them (idempotent)."""
        check_name("study", study)
        check_name("trial_id", trial_id)
        table = pa.Table.from_pylist(rows, schema=self.schema)
        target = self.root(results_dir) / study / f"{trial_id}.parquet"
        return atomic_write(target, lambda stream: pq.write_table(table, stream))

    def read(self, results_dir: Results, study: str | None = None) -> pa.Table:
        """Every complete file, read with the fixed schema (missing columns become null)."""
        return self.read_checked(results_dir, study)[0]

    def read_checked(self, results_dir: Results, study: str | None = None) -> tuple[pa.Table, list[str]]:
        """`read`, and the files it skipped as unreadable (torn or foreign), named for a warning.

        pyarrow opens every file to exclude the invalid ones; comparing its file list with
        the folder's costs one listing, not a second pass over the files.
        """
        if study is not None:
            check_name("study", study)
        check_format(results_dir)
        root = self.root(results_dir)
        folder = root / study if study else root
        if not folder.is_dir():
            return self.schema.empty_table(), []
        dataset = self._dataset(folder.path, folder, exclude_invalid_files=True)
        table = dataset.to_table()
        if study:
            table = table.filter(ds.field("study") == study)
        listed = folder.fs.get_file_info(pafs.FileSelector(folder.path, recursive=True))
        found = {i.path for i in listed if i.path.endswith(".parquet") and not i.base_name.startswith(".")}
        skipped = sorted(found - set(dataset.files))
        return table, [f"{folder.uri}{path[len(folder.path):]}: unreadable, skipped" for path in skipped]

    def files(self, results_dir: Results, study: str) -> list[Location]:
        return (self.root(results_dir) / study).files(".parquet")

    def _dataset(self, source: str | list[str], where: Location, **options: bool) -> ds.Dataset:
        return ds.dataset(source, filesystem=where.fs, schema=self.schema, format="parquet", **options)

    def compact(self, results_dir: Results, study: str) -> str | None:
        """Merge a study's files into one, each trial once (its newest rows).

        The merged file is complete (atomic write) before any source file is removed, and
        a source is removed only if unchanged since it was read (its stamp: inode, time
        and size; time and size on object stores); readers dedupe, so at no moment does
        a row go missing or count twice, even if this is interrupted. Unreadable files
        (torn, foreign) are left in place, unmerged: readers skip them and name them.
        """
        files = self.files(results_dir, check_name("study", study))
        if len(files) <= 1:
            return files[0].uri if files else None
        stamps = {f.uri: f.stamp() for f in files}
        files = [f for f in files if stamps[f.uri] is not None]  # another compaction won
        dataset = self._dataset([f.path for f in files], files[0], exclude_invalid_files=True)
        readable = set(dataset.files)
        files = [f for f in files if f.path in readable]  # as readers do: the rest stay, named by them
        if len(files) <= 1:
            return files[0].uri if files else None
        table = self.dedupe(dataset.to_table())
        stamp = now().strftime("%Y%m%dT%H%M%S%f")
        target = files[0].parent / f"compacted-{stamp}-{os.getpid()}.parquet"
        written = atomic_write(target, lambda stream: pq.write_table(table, stream))
        for f in files:
            if f.stamp() == stamps[f.uri]:  # a rewrite gives a new inode (locally) or a new time
                f.delete()
        return written


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
