"""HarnessSearch alone stays flat: 1,000 trials of suggest, one epoch's result, completion,
on the SQLite Optuna storage a search uses, without Ray (issue 13's long searches).

Usage: .venv/bin/python benchmarks/searcher_scale.py [--trials 1000] [--window 100]
Prints each call's median time for the first and last `window` trials and the Python
memory traced (tracemalloc) per trial. Figures: benchmarks/README.md, "Long searches".
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import yaml

from harness._results.record import (
    REPORT_KEY,
    EpochRecord,
    EpochReport,
    FinalReport,
    Provenance,
    TrialRecord,
    TrialStatus,
)
from harness._search.search import _define_by_run
from harness._search.searcher import HarnessSearch, make_sampler, optuna_storage
from harness._spec.spec import load_spec
from harness._storage import Location

PROVENANCE = Provenance(backend="tensorflow", backend_version="2", keras_version="3", harness_version="0",
                        device="cpu", node="n", gpu_ids="")  # fmt: skip
SPACE = {"conv_blocks": 1, "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    spec_file = tmp / "space.yaml"
    search_settings = {"trials": args.trials, "sampler": "random"}
    spec_file.write_text(yaml.safe_dump({"study": "long", "dataset": {"name": "digits"}, "space": SPACE,
                                         "search": search_settings}))  # fmt: skip
    spec = load_spec(spec_file)
    search = HarnessSearch(
        storage=optuna_storage(Location.of(tmp / "results"))[0],
        space=functools.partial(_define_by_run, space=spec.space), sampler=make_sampler("random", 0),
        objectives=[("val_accuracy", "max")], constraints={}, study_name="long-run", start_points=[],
        earlier_trials=[], trials=args.trials, recorded=list,
    )  # fmt: skip
    times: dict[str, list[float]] = {"suggest": [], "result": [], "complete": []}
    memory = []
    tracemalloc.start()
    for i in range(args.trials):
        trial_id = f"t{i:05d}"
        epoch = EpochRecord(study="long", trial_id=trial_id, epoch=1, val_accuracy=0.5)
        report = EpochReport(epoch=epoch, params=1, started_at=datetime.now(UTC), provenance=PROVENANCE)
        record = TrialRecord(study="long", trial_id=trial_id, status=TrialStatus.COMPLETED, val_accuracy=0.5)
        t0 = time.perf_counter()
        search.suggest(trial_id)
        t1 = time.perf_counter()
        search.on_trial_result(trial_id, {REPORT_KEY: report, "training_iteration": 1})
        t2 = time.perf_counter()
        search.on_trial_complete(trial_id, {REPORT_KEY: FinalReport(record=record, epoch=epoch)})
        t3 = time.perf_counter()
        for name, took in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            times[name].append(took * 1e3)
        memory.append(tracemalloc.get_traced_memory()[0])
    w = args.window
    for name, part in times.items():
        print(f"{name}: median {statistics.median(part[:w]):.2f} ms in the first {w}, "
              f"{statistics.median(part[-w:]):.2f} ms in the last {w}")  # fmt: skip
    growth = (memory[-1] - memory[w - 1]) / (args.trials - w) / 1e3
    print(f"Python memory traced: {memory[w - 1] / 1e6:.2f} MB after {w} trials, {memory[-1] / 1e6:.2f} MB "
          f"after {args.trials} ({growth:.1f} KB per trial)")  # fmt: skip


if __name__ == "__main__":
    main()
