"""Per-trial overhead of a digits search: trial wall time minus time inside `fit`.

Usage: .venv/bin/python benchmarks/trial_overhead.py [--trials 16] [--backend tensorflow]
Prints median/mean/max overhead (all trials, and trials after each worker's first)
and the search's wall time. Figures last measured are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness import SearchSpec, run_search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--backend", default="tensorflow")
    args = parser.parse_args()
    spec = SearchSpec.model_validate({
        "study": "overhead",
        "dataset": {"name": "digits", "validation_split": 0.2},
        "search": {"trials": args.trials, "max_epochs": 1, "scheduler": {"name": "none"}},
        "training": {"early_stopping": None},
        "space": {"conv_blocks": 1, "filters": {"type": "categorical", "choices": [4, 8, 16]},
                  "dense_units": 16, "batch_size": 128},
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frame = run_search(spec, results_dir=Path(tmp), backend=args.backend)
        wall = time.perf_counter() - t0
    frame = frame.sort_values("started_at")
    overhead = (frame["total_time_s"] - frame["train_time_s"]).tolist()
    warm = overhead[2:]  # 2 workers on 2 cores: each one's first trial pays the imports
    print(f"trials: {len(frame)} ({frame['status'].value_counts().to_dict()})")
    print(f"search wall time: {wall:.1f} s; mean fit time {frame['train_time_s'].mean():.2f} s")
    print(f"overhead all:  median {statistics.median(overhead):.3f} s, max {max(overhead):.3f} s")
    print(
        f"overhead warm: median {statistics.median(warm):.3f} s, "
        f"mean {statistics.mean(warm):.3f} s, max {max(warm):.3f} s"
    )
    parts = frame.iloc[2:][["build_s", "evaluate_s", "save_s"]]
    rest = [o - p for o, p in zip(warm, parts.sum(axis=1), strict=True)]
    print(
        "warm medians: "
        + ", ".join(f"{c} {parts[c].median():.3f} s" for c in parts)
        + f", rest (Ray report, seeding, bookkeeping) {statistics.median(rest):.3f} s"
    )


if __name__ == "__main__":
    main()
