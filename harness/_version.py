"""The package version and the results-format version, importable without anything else."""

from __future__ import annotations

__version__ = "0.2.0"

RESULTS_FORMAT = 2
"""Version of the on-disk results layout (leaderboard columns, folders, cache keys).

1: harness 0.1 (no version file). 2: the typed trial record: `feasible`, `stop_reason`,
`error_kind` and `steady_epoch_s` columns, `harness-results.json`.
"""
