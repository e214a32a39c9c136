"""Long searches stay flat: 1,000 tiny real trials in one study (issue 13).

Usage: .venv/bin/python benchmarks/long_search.py [--trials 1000] [--window 100] [--epochs 1]

A real `run_search` in this process: local Ray, TensorFlow, scikit-learn's digits, one
epoch (`--epochs`) of a one-block CNN per trial, the random sampler, no scheduler, two
trials at a time, keep-top-k 5. Measured from inside the driver, per trial:
- harness' own driver time: every call of its Ray Tune callbacks (`LeaderboardRecorder`,
  `SearchProgress`) and of `HarnessSearch` (suggest, each result, completion), summed per
  trial, with how much of it the driver thread spent on the CPU and in Python's collector
  (the rest is waiting). Ray's and TensorFlow's own costs are out of scope.
- the driver's resident memory (RSS) when the trial's row has been written;
- the RSS of the worker that ran it, read when the trial ends (Ray puts the worker's pid in
  every result; Ray reuses a worker for trial after trial).
Prints the first and last `window` trials side by side. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness import load_spec, run_search
from harness._search.recorder import LeaderboardRecorder, SearchProgress
from harness._search.searcher import HarnessSearch

SPEC = {
    "study": "long",
    "dataset": {"name": "digits", "validation_split": 0.2},
    "search": {"trials": 1000, "max_epochs": 1, "sampler": "random", "seed": 0, "max_concurrent": 2,
               "scheduler": {"name": "none"}, "keep_models": 5},
    "training": {"early_stopping": None},
    "space": {"conv_blocks": 1, "filters": 4, "kernel_size": 3, "dense_units": 16, "batch_size": 128,
              "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
}  # fmt: skip


class Probe:
    """Per-trial harness time, and memory samples, gathered by wrapping harness' driver hooks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.cpu: dict[str, float] = collections.defaultdict(float)  # the driver thread's CPU time
        self.gc: dict[str, float] = collections.defaultdict(float)  # collector time inside the hooks
        self._gc_total = 0.0
        self._gc_start = 0.0
        self.by_hook: dict[str, dict[str, float]] = collections.defaultdict(dict)  # hook -> trial -> s
        self.order: list[str] = []  # trial ids in the order their rows were written
        self.driver_rss: list[int] = []
        self.worker_rss: dict[int, list[int]] = collections.defaultdict(list)  # pid -> RSS per trial
        self.trial_worker_rss: list[int] = []  # per trial in row order: its worker's RSS as it ended
        self.pid: dict[str, int] = {}

    def install(self) -> None:
        hooks: dict[type, tuple[str, ...]] = {
            LeaderboardRecorder: ("on_trial_start", "on_trial_result", "on_trial_complete", "on_trial_error"),
            SearchProgress: ("on_trial_start", "on_trial_result", "on_trial_complete", "on_trial_error"),
            HarnessSearch: ("suggest", "on_trial_result", "on_trial_complete"),
        }
        for cls, names in hooks.items():
            for name in names:
                setattr(cls, name, self._timed(getattr(cls, name)))
        finished = LeaderboardRecorder.on_trial_complete

        @functools.wraps(finished)
        def on_trial_complete(recorder: Any, **info: Any) -> None:  # Ray passes keywords
            finished(recorder, **info)
            trial = info["trial"]
            self._sample(trial.trial_id, (trial.last_result or {}).get("pid"))

        LeaderboardRecorder.on_trial_complete = on_trial_complete  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self._gc_total += time.perf_counter() - self._gc_start

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(obj: Any, *args: Any, **kwargs: Any) -> Any:
            t0, cpu0, gc0 = time.perf_counter(), time.thread_time(), self._gc_total
            try:
                return method(obj, *args, **kwargs)
            finally:
                took, trial_id = time.perf_counter() - t0, _trial_id(args, kwargs)
                self.seconds[trial_id] += took
                self.cpu[trial_id] += time.thread_time() - cpu0
                self.gc[trial_id] += self._gc_total - gc0
                hook = self.by_hook[f"{type(obj).__name__}.{method.__name__}"]
                hook[trial_id] = hook.get(trial_id, 0.0) + took

        return timed

    def _sample(self, trial_id: str, pid: int | None) -> None:
        self.order.append(trial_id)
        self.driver_rss.append(_rss(os.getpid()) or 0)
        worker = _rss(int(pid)) if pid is not None else None
        if worker is not None:
            self.worker_rss[int(pid or 0)].append(worker)
            self.trial_worker_rss.append(worker)


def write_spec(folder: Path, **search: int) -> Path:
    """SPEC with `search` fields replaced, as a YAML file in `folder`."""
    path = folder / "long.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "search": {**SPEC["search"], **search}}))
    return path


def _rss(pid: int) -> int | None:
    """Resident memory in bytes (Linux), or None when the process is gone."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _trial_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Ray passes the trial (callbacks) or its id (searchers), by position or by name."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, str):
            return value
        if hasattr(value, "trial_id"):
            return str(value.trial_id)
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (each one checkpoints)")
    parser.add_argument("--backend", default=None, help="tensorflow (the CPU default), jax or torch")
    args = parser.parse_args()
    probe = Probe()
    probe.install()
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = write_spec(Path(tmp), trials=args.trials, max_epochs=args.epochs)
        t0 = time.perf_counter()
        frame = run_search(load_spec(spec_file), results_dir=Path(tmp) / "results", backend=args.backend)
        wall = time.perf_counter() - t0
    w = args.window
    ms = [probe.seconds[t] * 1e3 for t in probe.order]
    print(f"{len(frame)} rows ({frame['status'].value_counts().to_dict()}) in {wall:.0f} s "
          f"({len(frame) / wall * 60:.0f} trials/min)")  # fmt: skip
    for name, part in (("first", slice(0, w)), ("last", slice(-w, None))):
        print(f"{name} {w} trials: harness driver time median {statistics.median(ms[part]):.2f} ms, "
              f"mean {statistics.mean(ms[part]):.2f} ms per trial")  # fmt: skip
    print(f"last/first median ratio: {statistics.median(ms[-w:]) / statistics.median(ms[:w]):.2f}")
    parts = (("of it on the driver thread's CPU", probe.cpu), ("of it in Python's collector", probe.gc))
    for label, table in parts:
        part = [table[t] * 1e3 for t in probe.order]
        print(f"  {label}: median {statistics.median(part[:w]):.2f} ms in the first {w}, "
              f"{statistics.median(part[-w:]):.2f} ms in the last {w}")  # fmt: skip
    for hook, per_trial in sorted(probe.by_hook.items()):
        part = [per_trial.get(t, 0.0) * 1e3 for t in probe.order]
        first, last = statistics.median(part[:w]), statistics.median(part[-w:])
        print(f"  {hook}: median {first:.2f} ms in the first {w}, {last:.2f} ms in the last {w}")
    rss = [r / 2**20 for r in probe.driver_rss]
    print(f"driver RSS: {rss[w - 1]:.0f} MiB after trial {w}, {rss[-1]:.0f} MiB after trial {len(rss)} "
          f"(median of the first {w}: {statistics.median(rss[:w]):.0f} MiB, "
          f"of the last {w}: {statistics.median(rss[-w:]):.0f} MiB)")  # fmt: skip
    workers = [r / 2**20 for r in probe.trial_worker_rss]
    most = max(map(len, probe.worker_rss.values()))
    print(
        f"workers: {len(probe.worker_rss)}, at most {most} trials each; "
        f"the trial's worker RSS, median of the first {w}: {statistics.median(workers[:w]):.0f} MiB, "
        f"of the last {w}: {statistics.median(workers[-w:]):.0f} MiB; largest {max(workers):.0f} MiB"
    )
    for pid, samples in sorted(probe.worker_rss.items(), key=lambda kv: -len(kv[1])):
        if len(samples) >= 2 * w:
            mib = [s / 2**20 for s in samples]
            first, last = statistics.median(mib[:w]), statistics.median(mib[-w:])
            print(f"worker {pid}: {len(mib)} trials; RSS median of its first {w}: {first:.0f} MiB, "
                  f"of its last {w}: {last:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
