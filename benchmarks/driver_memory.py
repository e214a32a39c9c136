"""Where a long search's driver memory goes, by the file that allocated it (issue 13).

Usage: .venv/bin/python benchmarks/driver_memory.py [--trials 150] [--top 15]

Runs `long_search.py`'s search in this process and compares `tracemalloc` snapshots taken
after trial 30 and after trial `--trials`, grouped by the allocating file: the growth per
trial of Python memory, and who holds it (Ray Tune, Optuna, harness). Figures:
benchmarks/README.md, "Long searches".
"""

from __future__ import annotations

import argparse
import functools
import gc
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from long_search import write_spec

from harness import load_spec, run_search
from harness._search.recorder import LeaderboardRecorder

FIRST = 30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    snapshots: list[tracemalloc.Snapshot] = []
    finished = LeaderboardRecorder.on_trial_complete
    rows = 0

    @functools.wraps(finished)
    def on_trial_complete(recorder: Any, **info: Any) -> None:
        nonlocal rows
        finished(recorder, **info)
        rows += 1
        if rows == FIRST:
            tracemalloc.start(25)
        if rows in (FIRST + 1, args.trials):  # the first after a row, so both see the same phase
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())

    LeaderboardRecorder.on_trial_complete = on_trial_complete  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = write_spec(Path(tmp), trials=args.trials + 2)
        run_search(load_spec(spec_file), results_dir=Path(tmp) / "results")
    first, last = snapshots
    per_trial = args.trials - FIRST - 1
    stats = last.compare_to(first, "filename")
    print(f"Python memory grows {sum(s.size_diff for s in stats) / 1024 / per_trial:.1f} KB per trial "
          f"(trials {FIRST + 1} to {args.trials}); by allocating file:")  # fmt: skip
    for stat in stats[: args.top]:
        print(f"  {stat.size_diff / 1024 / per_trial:7.2f} KB  {stat.traceback[0].filename}")
    harness = sum(s.size_diff for s in stats if "/harness/" in s.traceback[0].filename)
    print(f"harness' own modules: {harness / 1024 / per_trial:.2f} KB per trial")


if __name__ == "__main__":
    main()
