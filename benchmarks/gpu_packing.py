"""Trials packed onto GPUs: the same small-CNN search at 1, 2, 4 and 8 trials per GPU.

Usage (a GPU machine, `pip install -e '.[gpu]'`):
    HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/gpu_packing.py \\
        [--spec search_spaces/fashion_mnist.yaml] [--packs 1 2 4 8] [--trials 16] [--max-epochs 3]

Each level runs `harness.run_search` on the spec with `max_concurrent` = k x GPUs and
`gpus_per_trial: auto` (so 1/k of a GPU each), no scheduler and no early stopping (every
trial trains `--max-epochs` epochs: the work is the same at every level), all levels in
one process and one Ray, back to back. Reported per level: wall time of the search,
aggregate training samples/s (epochs run x training samples / wall time), its ratio to
one trial per GPU, mean GPU utilisation over the search (NVIDIA's management library,
sampled every 0.2 s), and the median first and steady epoch (compilation shows in the
first). A warm-up before the levels (the same seeded configurations, one epoch each) fills
JAX's compile cache, so the first level does not pay for compilation alone. Targets on one
H100: at least 5x one trial at a time with the GPU busy at least 80% of the search. Without
a GPU it exits 2 before any work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import pandas as pd

from harness import SearchSpec, load_spec, run_search
from harness._data import load_dataset


def gpu_count() -> int:
    """NVIDIA GPUs on this machine; exit 2 naming the fix where there are none."""
    try:
        import pynvml

        pynvml.nvmlInit()
        count = int(pynvml.nvmlDeviceGetCount())
    except Exception as exc:  # no library, no driver or no device: all mean the same here
        count, why = 0, f" ({type(exc).__name__}: {exc})"
    else:
        why = ""
    if count == 0:
        print(f"gpu_packing needs an NVIDIA GPU and `pip install -e '.[gpu]'`{why}", file=sys.stderr)
        sys.exit(2)
    return count


@contextmanager
def utilisation(samples: list[float], every_s: float = 0.2) -> Iterator[None]:
    """Mean GPU busy percentage across the machine's GPUs, sampled in a thread while the block runs."""
    import pynvml

    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            samples.append(statistics.mean(pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def level(
    base: SearchSpec,
    study: str,
    per_gpu: int,
    gpus: int,
    trials: int,
    epochs: int,
    results: Path,
    n_train: int,
) -> dict[str, float]:
    spec = base.with_overrides(
        **{
            "study": study,  # one per level: a repeated level must not resume an earlier one
            "search.trials": trials,
            "search.max_epochs": epochs,
            "search.max_concurrent": per_gpu * gpus,
            "search.scheduler": {"name": "none"},
            "search.start_from": [],
            "search.keep_models": 0,
            "training.early_stopping.patience": epochs,  # never stops early: same work per level
            "resources.gpus_per_trial": "auto",
        }
    )
    samples: list[float] = []
    t0 = time.perf_counter()
    with utilisation(samples):
        frame = run_search(spec, results_dir=results)
    wall = time.perf_counter() - t0
    return {
        "trials_per_gpu": per_gpu,
        "gpus_per_trial": float(frame["gpus"].iloc[0]),
        "trials": len(frame),
        "wall_s": round(wall, 1),
        "samples_per_s": round(float(frame["epochs_run"].fillna(0).sum()) * n_train / wall),
        "gpu_busy_pct": round(statistics.mean(samples), 1) if samples else float("nan"),
        "first_epoch_s": round(float(frame["first_epoch_s"].median()), 2),
        "steady_epoch_s": round(float(frame["steady_epoch_s"].median()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", default="search_spaces/fashion_mnist.yaml")
    parser.add_argument("--packs", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=3)
    args = parser.parse_args()
    gpus = gpu_count()
    spec = load_spec(args.spec)
    n_train = len(load_dataset(spec.dataset, seed=spec.search.seed).x_train)  # once: every level trains on it
    rows = []
    with TemporaryDirectory() as folder:
        results = Path(folder)
        # Not reported: the same seeded configurations for one epoch each fill JAX's compile
        # cache, which the first level would otherwise pay for alone.
        level(spec, "warmup", max(args.packs), gpus, args.trials, 1, results, n_train)
        for i, per_gpu in enumerate(args.packs):
            study = f"pack{i}-{per_gpu}"
            rows.append(level(spec, study, per_gpu, gpus, args.trials, args.max_epochs, results, n_train))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["speedup"] = (table["samples_per_s"] / table["samples_per_s"].iloc[0]).round(2)
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
