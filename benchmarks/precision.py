"""Mixed precision on this machine: steady epoch time of each `precision` against float32.

Usage: HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/precision.py \\
           [--spec search_spaces/baselines/fashion_mnist.yaml] [--limit-train 10000] [--epochs 3] \\
           [--rounds 2] [--precisions mixed_bfloat16]

Each round trains the spec's first configuration (harness' builder, split and batch size)
once per precision, back to back, each in a fresh process with the backend's default
threads; steady epoch time is the median epoch after the first. Prints each round and
each precision's ratio of medians to float32 (above 1: slower). harness offers mixed
precision only where this measured it faster (GPUs): figures in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TRAIN = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from harness import load_spec
from harness._data import load_dataset
from harness._trial.model import build_model, compile_model
from harness._spec.space import first_config
spec = load_spec(sys.argv[1])
data = load_dataset(spec.dataset, seed=spec.search.seed)
config = {**first_config(spec.space), "precision": sys.argv[4]}
model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
limit = int(sys.argv[2])
times = []
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t0 = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): times.append(time.perf_counter() - self.t0)
history = model.fit(data.x_train[:limit], data.y_train[:limit], validation_data=(data.x_val, data.y_val),
                    epochs=int(sys.argv[3]), batch_size=int(config.get("batch_size", 64)),
                    callbacks=[Clock()], verbose=0)
print(json.dumps({"times": times, "val_accuracy": history.history["val_accuracy"][-1]}))
"""


def steady_epoch(spec: str, limit: int, epochs: int, precision: str) -> tuple[float, float]:
    cmd = [sys.executable, "-c", TRAIN, spec, str(limit), str(epochs), precision]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    return statistics.median(out["times"][1:]), out["val_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="search_spaces/baselines/fashion_mnist.yaml")
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["mixed_bfloat16"])
    args = parser.parse_args()
    kinds = ["float32", *args.precisions]
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            epoch_s, val = steady_epoch(args.spec, args.limit_train, args.epochs, kind)
            times[kind].append(epoch_s)
            print(f"round {r + 1} {kind}: {epoch_s:.2f} s/epoch (val_accuracy {val:.4f})", flush=True)
    base = statistics.median(times["float32"])
    for kind in args.precisions:
        print(f"{kind} / float32: {statistics.median(times[kind]) / base:.2f}x")


if __name__ == "__main__":
    main()
