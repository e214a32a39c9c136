"""The errors that drive control flow (after KerasTuner's split), and argument errors.

`HarnessError` (and its children) stops everything before a trial runs: the CLI turns
it into exit code 2 and one paragraph. `TrialFailed` ends one trial, which becomes a
`failed` leaderboard row (`error_kind` user) while the search goes on. Any other
exception inside a trial is a defect of harness (`error_kind` internal).
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Bad input the user must fix; nothing has been written."""


class SpecError(HarnessError):
    """A search space file that fails validation."""


class DataError(HarnessError):
    """A dataset that cannot be found or read."""


class ArgumentError(HarnessError, ValueError):
    """An API argument out of range, in Keras' style; the CLI renames it to its flag.

    `str(error)`: "`backend` must be one of [...]. Received: backend='tf'".
    """

    def __init__(self, argument: str, expected: str, received: Any) -> None:
        self.argument, self.expected, self.received = argument, expected, received
        super().__init__(f"`{argument}` {expected}. Received: {argument}={received!r}")

    def render(self, flag: str) -> str:
        """The message for a command line, where the argument is the option `flag`."""
        return f"{flag} {self.expected}. Received: {flag} {self.received}"


class StorageFull(HarnessError):
    """No space left where the search writes: it stops, since every retry would fail again."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"no space left on the device holding {path}. Free space there, then continue with "
            "`harness search SPACE.yaml --resume`: rows already written are intact, and the trials "
            "that were running start again from their last epoch."
        )


class TrialFailed(Exception):
    """One trial cannot run (e.g. an architecture too deep for its input, NaN loss)."""


class TooSlow(Exception):
    """A trial whose first report would come after `search.first_report_s`: stopped, not failed."""

    def __init__(self, projected: float, allowed: float) -> None:
        self.projected, self.allowed = projected, allowed
        super().__init__(f"first report projected after {projected:.0f} s; allowed {allowed:.0f} s")


class StopRequested(Exception):
    """The search asked a running trial to stop (its scheduler, or Ctrl-C): it ends where it is,
    with no final report, which is how the driver tells a stopped trial from a finished one."""


class InternalError(RuntimeError):
    """Raised at the end of a search when every trial failed inside harness' own code (with
    `run_search(strict=True)`, when any did)."""
