"""Anytime comparison: best validation accuracy over wall time, harness against KerasTuner Hyperband.

Usage: HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/anytime.py \\
           [--space search_spaces/fashion_mnist.yaml] [--budget 600] [--limit-train 20000] \\
           [--tools harness:asha,harness:hyperband,kerastuner]

KerasTuner is not a dependency: install it beside the project, once (it imports TensorBoard
on the TensorFlow backend), into a folder the script puts on KerasTuner's PYTHONPATH only:
`.venv/bin/pip install --target .bench/kerastuner --no-deps keras-tuner==1.4.8 kt-legacy \
tensorboard==2.20.0 tensorboard-data-server markdown werkzeug`.

Every tool gets the same space (KerasTuner's hyperparameters are sampled into harness'
own model builder, so both train identical architectures), the same training and
validation split (`dataset.limit_train` of the space's dataset, seeded), the same
`max_epochs`, and the same wall budget, back to back in fresh processes on the same
cores. Every epoch's validation accuracy counts when it is reported, for both tools.
Prints each tool's best at 1/4, 1/2 and all of the budget, and when it first reached the
last tool's final best. Figures last measured: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from harness import load_spec

KERASTUNER = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, keras_tuner as kt, numpy as np
from harness import load_spec
from harness._data import load_dataset
from harness._trial.model import build_model, compile_model
from harness._spec.space import CategoricalDist, FloatDist, IntDist

spec = load_spec(sys.argv[1]); log = open(sys.argv[2], "a"); t0 = float(sys.argv[3])
data = load_dataset(spec.dataset, seed=spec.search.seed)
blocks = spec.space.get("conv_blocks")

def sample(hp, name, entry):
    if isinstance(entry, IntDist):
        return hp.Int(name, entry.low, entry.high, step=entry.step)
    if isinstance(entry, FloatDist):
        sampling = "log" if entry.log else "linear"
        return hp.Float(name, entry.low, entry.high, step=entry.step, sampling=sampling)
    if isinstance(entry, CategoricalDist):
        return hp.Choice(name, entry.choices)
    return entry

def build(hp):
    config = {}
    n = int(sample(hp, "conv_blocks", blocks)) if blocks is not None else 2
    config["conv_blocks"] = n
    for name, entry in spec.space.items():
        if name == "conv_blocks":
            continue
        if getattr(entry, "per_block", False):
            for i in range(1, n + 1):
                config[f"{name}_{i}"] = sample(hp, f"{name}_{i}", entry)
        else:
            config[name] = sample(hp, name, entry)
    hp.Fixed("batch", int(config.get("batch_size", 64)))
    return compile_model(build_model(config, data.input_shape, data.num_classes), config)

class Log(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        log.write(json.dumps({"t": time.time() - t0, "val_accuracy": float(logs["val_accuracy"])}) + "\\n")
        log.flush()

class Tuner(kt.Hyperband):
    def run_trial(self, trial, *args, **kwargs):
        kwargs["batch_size"] = trial.hyperparameters.get("batch")
        return super().run_trial(trial, *args, **kwargs)

tuner = Tuner(build, objective="val_accuracy", max_epochs=spec.search.max_epochs, factor=3,
              seed=spec.search.seed, directory=sys.argv[4], project_name="kt", overwrite=True)
tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), callbacks=[Log()],
             verbose=0)
"""


def run_harness(spec_path: str, scheduler: str, budget: float, out: Path) -> list[tuple[float, float]]:
    results = out / f"harness-{scheduler}"
    t0 = time.time()
    cmd = [sys.executable, "-m", "harness", "search", spec_path, "--results", str(results),
           "--time-budget", str(budget), "--study", f"anytime-{scheduler}"]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 600, check=False)
    return epoch_points(results, t0)[0]


def epoch_points(results: Path, t0: float) -> tuple[list[tuple[float, float]], int]:
    """Each whole epoch's (seconds since t0, validation accuracy) from Ray's per-trial results,
    as the peers log them, and the trials. Rung reports inside the first epoch and the final
    report of a trial cut before any epoch (no `epoch`, accuracy NaN) are left out."""
    points, trials = [], 0
    for result_file in results.glob("runs/*/run-*/*/result.json"):
        trials += 1
        for line in result_file.read_text().splitlines():
            row = json.loads(line)
            if row.get("val_accuracy") is not None and row.get("epoch") is not None:
                points.append((float(row["timestamp"]) - t0, float(row["val_accuracy"])))
    return points, trials


def run_kerastuner(spec_path: str, budget: float, out: Path) -> list[tuple[float, float]]:
    log = out / "kerastuner.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(".bench/kerastuner").resolve())}
    t0 = time.time()
    with contextlib.suppress(subprocess.TimeoutExpired):  # the budget is over: what was logged counts
        subprocess.run([sys.executable, "-c", KERASTUNER, spec_path, str(log), str(t0), str(out / "kt")],
                       env=env, capture_output=True, text=True, timeout=budget, check=False)  # fmt: skip
    lines = log.read_text().splitlines() if log.is_file() else []
    return [(r["t"], r["val_accuracy"]) for r in map(json.loads, lines)]


def best_by(points: list[tuple[float, float]], t: float) -> float | None:
    values = [v for when, v in points if when <= t]
    return max(values) if values else None


def first_reaching(points: list[tuple[float, float]], target: float) -> float | None:
    hits = [when for when, v in sorted(points) if v >= target]
    return hits[0] if hits else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="search_spaces/fashion_mnist.yaml")
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--limit-train", type=int, default=20000)
    parser.add_argument("--tools", default="harness:asha,harness:hyperband,kerastuner")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="anytime-"))
    spec = load_spec(args.space).with_overrides(**{"dataset.limit_train": args.limit_train})
    spec_path = out / "space.yaml"
    data = spec.model_dump(mode="json")
    spec_path.write_text(yaml.safe_dump(data))
    curves: dict[str, list[tuple[float, float]]] = {}
    for tool in args.tools.split(","):
        if tool == "kerastuner":
            curves[tool] = run_kerastuner(str(spec_path), args.budget, out)
        else:
            scheduler = tool.split(":")[1]
            data["search"]["scheduler"] = {"name": scheduler, "grace_period": 1, "reduction_factor": 3}
            spec_path.write_text(yaml.safe_dump(data))
            curves[tool] = run_harness(str(spec_path), scheduler, args.budget, out)
        print(f"{tool}: {len(curves[tool])} epochs reported", flush=True)
    b = args.budget
    final = {tool: best_by(points, b) for tool, points in curves.items()}
    print(f"| tool | best at {b / 4:.0f} s | best at {b / 2:.0f} s | best at {b:.0f} s | first epoch s |")
    print("| --- | --- | --- | --- | --- |")
    for tool, points in curves.items():
        cells = [best_by(points, t) for t in (b / 4, b / 2, b)]
        first = min((w for w, _ in points), default=None)
        print(f"| {tool} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells)
              + f" | {'-' if first is None else f'{first:.0f}'} |")  # fmt: skip
    if "kerastuner" in final and final["kerastuner"] is not None:
        for tool, points in curves.items():
            reach = first_reaching(points, final["kerastuner"])
            print(f"{tool} reached KerasTuner's final best {final['kerastuner']:.4f} at "
                  f"{'never' if reach is None else f'{reach:.0f} s'}")  # fmt: skip
    (out / "curves.json").write_text(json.dumps(curves))
    print(f"curves: {out / 'curves.json'}")


if __name__ == "__main__":
    main()
