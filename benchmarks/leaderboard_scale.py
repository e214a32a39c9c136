"""Leaderboard at scale: append 100,000 realistic rows over 20 studies, compact, load.

Usage: .venv/bin/python benchmarks/leaderboard_scale.py [--rows 100000] [--studies 20]
Appending writes one atomic Parquet file per row, as the search driver does; the
append figure is measured on a sample (`--timed-appends`) and the rest are written in
bulk to save time. Figures last measured are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness import TrialRecord, load_leaderboard
from harness._results import leaderboard as lb


def fake_record(study: str, i: int, rng: random.Random) -> TrialRecord:
    """A realistic record: a mix of statuses, 1-4 conv blocks, every column filled as a search would."""
    status = rng.choices(["completed", "pruned", "failed"], [0.6, 0.3, 0.1])[0]
    blocks = rng.randint(1, 4)
    acc = None if status == "failed" else rng.uniform(0.5, 0.99)
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i)
    values = {
        "study": study, "trial_id": f"{study}_{i:06d}", "run_id": "run-1", "status": status,
        "dataset": "fashion_mnist", "val_accuracy": acc, "val_loss": None if acc is None else 1 - acc,
        "test_accuracy": acc if status == "completed" else None,
        "test_loss": 1 - acc if status == "completed" else None,
        "epochs_run": rng.randint(1, 20), "best_epoch": rng.randint(1, 20),
        "train_time_s": rng.uniform(5, 500), "total_time_s": rng.uniform(5, 510),
        "params": rng.randint(10_000, 5_000_000), "backend": "tensorflow", "device": "cpu",
        "error": "TrialFailed: boom" if status == "failed" else None,
        "started_at": start, "finished_at": start + timedelta(seconds=60),
        "objective_metric": "val_accuracy", "objective_mode": "max", "spec_hash": "abc123",
        "harness_version": "0.1.0", "keras_version": "3.15.1", "backend_version": "2.21.0",
    }  # fmt: skip
    config = {"conv_blocks": blocks, "optimizer": rng.choice(["adam", "sgd"]),
              "learning_rate": rng.uniform(1e-4, 1e-2), "batch_size": rng.choice([64, 128]),
              **{f"filters_{b}": rng.choice([16, 32, 64]) for b in range(1, blocks + 1)}}  # fmt: skip
    return TrialRecord(**values, hyperparameters=config)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--timed-appends", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(0)
    per_study = args.rows // args.studies
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = []
        for i in range(args.timed_appends):  # the driver's real path: one atomic file per row
            record = fake_record("study_00", i, rng)
            t0 = time.perf_counter()
            lb.write_row(root, record)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lb.compact(root, "study_00")
        compact_s = time.perf_counter() - t0
        for s in range(args.studies):  # the rest in bulk, as compaction would leave them
            study = f"study_{s:02d}"
            start = args.timed_appends if s == 0 else 0
            rows = [fake_record(study, i, rng) for i in range(start, per_study)]
            folder = Path(lb.leaderboard_dir(root).path) / study
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                pa.Table.from_pylist([r.to_row() for r in rows], schema=lb.SCHEMA), folder / "bulk.parquet"
            )
            lb.compact(root, study)
        loads = []
        for _ in range(5):
            t0 = time.perf_counter()
            frame = load_leaderboard(root)
            loads.append(time.perf_counter() - t0)
        one = time.perf_counter()
        load_leaderboard(root, "study_07")
        one = time.perf_counter() - one
    print(
        f"append one row (atomic file): median {statistics.median(times) * 1e3:.2f} ms, "
        f"p95 {sorted(times)[int(len(times) * 0.95)] * 1e3:.2f} ms over {len(times)} rows"
    )
    print(f"compact {args.timed_appends} row files: {compact_s:.2f} s")
    print(
        f"load_leaderboard, {len(frame):,} rows x {frame.shape[1]} columns, {args.studies} studies "
        f"after compaction: median {statistics.median(loads):.3f} s (min {min(loads):.3f}, "
        f"max {max(loads):.3f}) over 5 loads"
    )
    print(f"load_leaderboard of one study ({per_study:,} rows): {one:.3f} s")


if __name__ == "__main__":
    main()
