"""Steady epoch time: harness (default settings) against the same model in plain Keras.

Usage: HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/epoch_overhead.py \\
           [--spec search_spaces/baselines/fashion_mnist.yaml] [--limit-train 20000] [--epochs 4] [--rounds 2]

Each round runs, back to back and each in a fresh process, (a) plain Keras: the same
model (harness' builder), split, batch size and epochs, `model.fit` with TensorFlow's
default threads, and (b) `harness search` of the same fixed spec with default resources
(`cpus_per_trial: auto`, per-epoch checkpoints, reports). Steady epoch time is the median
epoch after the first (which pays graph building). Prints each round and the ratio of
medians. Figures last measured: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from harness import load_spec

PLAIN = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from harness import load_spec
from harness._data import load_dataset
from harness._trial.model import build_model, compile_model
from harness._spec.space import first_config
spec = load_spec(sys.argv[1])
data = load_dataset(spec.dataset, seed=spec.search.seed)
config = first_config(spec.space)
model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
times = []
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t0 = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): times.append(time.perf_counter() - self.t0)
model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=int(sys.argv[3]),
          batch_size=int(config.get("batch_size", 64)), callbacks=[Clock()], verbose=0)
print(json.dumps(times))
"""


def plain(spec: str, limit: int, epochs: int) -> float:
    out = subprocess.run([sys.executable, "-c", PLAIN, spec, str(limit), str(epochs)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return statistics.median(times[1:])


def harness(spec: str, limit: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "harness", "search", spec, "--results", tmp, "--max-epochs", str(epochs),
               "--study", "epoch_overhead"]  # fmt: skip
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        frame = pd.read_parquet(Path(tmp) / "leaderboard")
    return float(frame["steady_epoch_s"].iloc[0])


def subset_spec(spec: str, limit: int, folder: Path) -> str:
    """The spec with `dataset.limit_train` set, written as a file both sides read."""
    resolved = load_spec(spec).with_overrides(**{"dataset.limit_train": limit})
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(resolved.model_dump(mode="json")))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="search_spaces/baselines/fashion_mnist.yaml")
    parser.add_argument("--limit-train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    plains, ours = [], []
    folder = Path(tempfile.mkdtemp())
    spec = subset_spec(args.spec, args.limit_train, folder)
    for r in range(args.rounds):
        plains.append(plain(spec, args.limit_train, args.epochs))
        ours.append(harness(spec, args.limit_train, args.epochs))
        print(
            f"round {r + 1}: plain Keras {plains[-1]:.2f} s/epoch, harness {ours[-1]:.2f} s/epoch", flush=True
        )
    ratio = statistics.median(ours) / statistics.median(plains)
    print(f"steady epoch, median over {args.rounds} rounds: plain Keras {statistics.median(plains):.2f} s, "
          f"harness {statistics.median(ours):.2f} s; ratio {ratio:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
