"""Driver work per trial stays flat: harness' own Ray Tune callbacks over 5,000 synthetic trials.

Usage: .venv/bin/python benchmarks/recorder_scale.py [--trials 5000] [--keep 5]
Drives `LeaderboardRecorder` and `SearchProgress` exactly as Ray Tune's event loop does
(three epoch results, then completion: 60% completed with a model file, 30% pruned by the
scheduler, 10% failed) and times each trial's callbacks: atomic row write, keep-top-k
(dropping a model rewrites one row), progress. Ray's and Optuna's own costs are out of
scope. Prints the per-trial median and mean for the first and last 500 trials, and the
driver's Python memory (tracemalloc) after each. Figures last measured: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leaderboard_scale import fake_record

from harness import TrialStatus
from harness._results.models import stored_path
from harness._results.record import REPORT_KEY, EpochRecord, EpochReport, FinalReport, Provenance
from harness._search.recorder import LeaderboardRecorder, SearchProgress
from harness._trial.runner import TrialContext

PROVENANCE = Provenance(backend="tensorflow", backend_version="2.21.0", keras_version="3.15.1",
                        harness_version="0.2.0", device="cpu", node="node", gpu_ids="")  # fmt: skip


@dataclass
class SyntheticTrial:
    """The attributes of Ray's Trial that harness' callbacks read."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None
    placement_group_factory: None = None
    status: str = "RUNNING"


def drive(root: Path, trials: int, keep: int) -> tuple[list[float], list[int]]:
    ctx = TrialContext(study="study_00", run_id="run-1", dataset="fashion_mnist",
                       objective_metric="val_accuracy", objective_mode="max", spec_hash="abc123",
                       models_dir=str(root / "models" / "study_00"), max_epochs=3, seed=0,
                       early_stopping=None, backend="tensorflow")  # fmt: skip
    recorder = LeaderboardRecorder(ctx, results_dir=str(root), run_dir=str(root / "runs" / "run-1"),
                                   keep_models=keep, time_budget_s=None)  # fmt: skip
    progress = SearchProgress("val_accuracy", "max")
    callbacks = [recorder, progress]
    for cb in callbacks:
        cb.setup()
    rng = random.Random(0)
    (root / "models" / "study_00").mkdir(parents=True)
    times, memory = [], []
    tracemalloc.start()
    for i in range(trials):
        record = replace(fake_record("study_00", i, rng), run_id="run-1")
        trial = SyntheticTrial(record.trial_id, {**record.hyperparameters, "trial_number": i})
        results = [_epoch(record.trial_id, e, rng) for e in range(1, 4)]
        final = None
        if record.status is TrialStatus.COMPLETED:
            stored = stored_path("study_00", record.trial_id)
            (root / stored).write_bytes(b"model")  # the worker's file, written outside the timed part
            final = {REPORT_KEY: FinalReport(record=replace(record, model_path=stored))}
        t0 = time.perf_counter()
        for cb in callbacks:
            cb.on_trial_start(0, [], trial)
        for result in results:
            trial.last_result = result
            for cb in callbacks:
                cb.on_trial_result(0, [], trial, result)
        if record.status is TrialStatus.FAILED:
            for cb in callbacks:
                cb.on_trial_error(0, [], trial)
        else:
            trial.last_result = final or trial.last_result
            for cb in callbacks:
                cb.on_trial_complete(0, [], trial)
        times.append(time.perf_counter() - t0)
        memory.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    return times, memory


def _epoch(trial_id: str, n: int, rng: random.Random) -> dict[str, Any]:
    acc = rng.uniform(0.5, 0.95)
    record = EpochRecord(study="study_00", trial_id=trial_id, epoch=n, loss=1 - acc, accuracy=acc,
                         val_loss=1 - acc, val_accuracy=acc, learning_rate=1e-3, epoch_s=1.0)  # fmt: skip
    report = EpochReport(epoch=record, params=1000, started_at=datetime.now(UTC), provenance=PROVENANCE)
    return {"val_accuracy": acc, "epoch": n, REPORT_KEY: report}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--keep", type=int, default=5)
    parser.add_argument("--window", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        times, memory = drive(Path(tmp), args.trials, args.keep)
        models = len(list((Path(tmp) / "models" / "study_00").iterdir()))
    w = args.window
    for name, part, mem in (("first", times[:w], memory[w - 1]), ("last", times[-w:], memory[-1])):
        print(
            f"{name} {w} trials: median {statistics.median(part) * 1e3:.2f} ms, "
            f"mean {statistics.mean(part) * 1e3:.2f} ms per trial; driver memory {mem / 1e6:.2f} MB"
        )
    ratio = statistics.median(times[-w:]) / statistics.median(times[:w])
    print(f"last/first median ratio: {ratio:.2f}; models kept at the end: {models} (keep {args.keep})")


if __name__ == "__main__":
    main()
