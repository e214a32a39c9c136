"""The two kinds of error that drive control flow (after KerasTuner's split).

`HarnessError` (and its `SpecError`/`DataError` children) stops everything before a
trial runs: the CLI turns it into exit code 2 and one paragraph. `TrialFailed` ends one
trial, which becomes a `failed` leaderboard row while the search goes on.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input the user must fix; nothing has been written."""


class SpecError(HarnessError):
    """A search space file that fails validation."""


class DataError(HarnessError):
    """A dataset that cannot be found or read."""


class TrialFailed(Exception):
    """One trial cannot run (e.g. an architecture too deep for its input)."""
