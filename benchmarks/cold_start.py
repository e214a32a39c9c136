"""Cold start: the first minutes of a search on a space nobody has tuned (no start points).

Usage: HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/cold_start.py \\
           [--space benchmarks/cold_start/fashion_mnist.yaml] [--budget 600] [--seed 0] \\
           [--tools harness,kerastuner,optuna[,VARIANT...]]
       .venv/bin/python benchmarks/cold_start.py --combine RUN1/curves.json RUN2/curves.json ...

Three tools, back to back in fresh processes on the same cores, each with the same space,
split, `max_epochs` and wall budget:
- harness with its defaults (`harness search SPACE --time-budget B --seed S`), and on request
  with one early-phase setting changed (the VARIANTS below: `harness-no-probe` and the like);
- KerasTuner 1.4.8 Hyperband (not a dependency: installed beside the project as
  benchmarks/anytime.py says), sampling into harness' own model builder;
- Optuna alone, as a user writes it in one process: TPE with `HyperbandPruner`, a Keras
  callback that reports every epoch and prunes, every core.
Every epoch's validation accuracy counts when it is reported, for every tool. Prints each
tool's best validation accuracy at 60, 150, 300, 450 and 600 s (scaled to the budget), its
first scored epoch and the configurations it evaluated; writes the curves as JSON.
Figures last measured: benchmarks/README.md, "Cold start".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from anytime import KERASTUNER, best_by, epoch_points

from harness import load_spec

MARKS = (60, 150, 300, 450, 600)
"""Seconds at which the best so far is read, for a 600 s budget (scaled to others)."""

OPTUNA_ALONE = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, optuna
from harness import load_spec
from harness._data import load_dataset
from harness._trial.model import build_model, compile_model
from harness._spec.space import CategoricalDist, FloatDist, IntDist

spec = load_spec(sys.argv[1]); log = open(sys.argv[2], "a"); t0 = float(sys.argv[3])
data = load_dataset(spec.dataset, seed=spec.search.seed)
optuna.logging.set_verbosity(optuna.logging.WARNING)

def sample(trial, name, entry):
    if isinstance(entry, IntDist):
        return trial.suggest_int(name, entry.low, entry.high, step=entry.step or 1, log=entry.log)
    if isinstance(entry, FloatDist):
        return trial.suggest_float(name, entry.low, entry.high, step=entry.step, log=entry.log)
    if isinstance(entry, CategoricalDist):
        return trial.suggest_categorical(name, entry.choices)
    return entry

class Prune(keras.callbacks.Callback):
    def __init__(self, trial):
        super().__init__(); self.trial = trial
    def on_epoch_end(self, epoch, logs=None):
        value = float(logs["val_accuracy"])
        row = {"t": time.time() - t0, "val_accuracy": value, "trial": self.trial.number}
        log.write(json.dumps(row) + "\\n")
        log.flush()
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned()

def objective(trial):
    blocks = spec.space.get("conv_blocks")
    n = int(sample(trial, "conv_blocks", blocks)) if blocks is not None else 2
    config = {"conv_blocks": n}
    for name, entry in spec.space.items():
        if name == "conv_blocks":
            continue
        if getattr(entry, "per_block", False):
            for i in range(1, n + 1):
                config[f"{name}_{i}"] = sample(trial, f"{name}_{i}", entry)
        else:
            config[name] = sample(trial, name, entry)
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                        epochs=spec.search.max_epochs, batch_size=int(config.get("batch_size", 64)),
                        callbacks=[Prune(trial)], verbose=0)
    return max(history.history["val_accuracy"])

pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.search.max_epochs,
                                        reduction_factor=3)
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=spec.search.seed),
                            pruner=pruner)
study.optimize(objective, n_trials=spec.search.trials)
"""


VARIANTS: dict[str, dict[str, object]] = {
    "harness-no-probe": {"search.probe": False},
    "harness-compared": {"search.scheduler.compare_with_start_points": True},
    "harness-paced": {"search.first_report_s": 60.0},
    "harness-both": {"search.scheduler.compare_with_start_points": True, "search.first_report_s": 60.0},
    "harness-whole-4": {"resources.whole_node_trials": 4},  # the probe and 3 sampled trials, in turn
    "harness-whole-8": {"resources.whole_node_trials": 8},
}
"""harness with one setting changed, by tool name."""


def run_harness(
    spec_path: str, budget: float, seed: int, out: Path, name: str = "harness"
) -> tuple[list[tuple[float, float]], int]:
    """harness as configured: every epoch's validation accuracy (Ray's per-trial results; the
    first epoch's rung reports are left out, as the peers log whole epochs), its trials."""
    results = out / name
    t0 = time.time()
    cmd = [sys.executable, "-m", "harness", "search", spec_path, "--results", str(results),
           "--time-budget", str(budget), "--seed", str(seed)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 900, check=False)
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    return epoch_points(results, t0)


def run_logged(code: str, spec_path: str, budget: float, out: Path, name: str) -> list[dict[str, float]]:
    """A one-process tool (`code`: argv spec, log, start time, work folder) that logs
    `{"t", "val_accuracy"}` per epoch; stopped at the budget."""
    log = out / f"{name}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(".bench/kerastuner").resolve())}
    t0 = time.time()
    with contextlib.suppress(subprocess.TimeoutExpired):  # the budget is over: what was logged counts
        subprocess.run([sys.executable, "-c", code, spec_path, str(log), str(t0), str(out / name)],
                       env=env, capture_output=True, text=True, timeout=budget, check=False)  # fmt: skip
    lines = log.read_text().splitlines() if log.is_file() else []
    return [json.loads(line) for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="benchmarks/cold_start/fashion_mnist.yaml")
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tools", default="harness,kerastuner,optuna")
    parser.add_argument("--combine", nargs="+", metavar="CURVES_JSON",
                        help="no run: median and range over earlier runs' curves.json")  # fmt: skip
    args = parser.parse_args()
    if args.combine:
        combine([json.loads(Path(p).read_text()) for p in args.combine])
        return
    out = Path(tempfile.mkdtemp(prefix="cold-start-"))
    spec = load_spec(args.space).with_overrides(**{"search.seed": args.seed})
    spec_path = out / "space.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    curves: dict[str, list[tuple[float, float]]] = {}
    configs: dict[str, int] = {}
    for tool in args.tools.split(","):
        if tool == "harness":
            curves[tool], configs[tool] = run_harness(str(spec_path), args.budget, args.seed, out)
        elif tool in VARIANTS:  # harness with one setting changed
            variant = out / f"{tool}.yaml"
            variant.write_text(yaml.safe_dump(spec.with_overrides(**VARIANTS[tool]).model_dump(mode="json")))
            curves[tool], configs[tool] = run_harness(str(variant), args.budget, args.seed, out, tool)
        elif tool == "kerastuner":
            logged = run_logged(KERASTUNER, str(spec_path), args.budget, out, "kt")
            curves[tool] = [(r["t"], r["val_accuracy"]) for r in logged]
            configs[tool] = len(list((out / "kt" / "kt").glob("trial_*")))
        else:
            logged = run_logged(OPTUNA_ALONE, str(spec_path), args.budget, out, "optuna")
            curves[tool] = [(r["t"], r["val_accuracy"]) for r in logged]
            configs[tool] = len({r["trial"] for r in logged})
        print(f"{tool}: {len(curves[tool])} epochs reported", flush=True)
    run = {
        "space": args.space,
        "seed": args.seed,
        "budget": args.budget,
        "curves": curves,
        "configs": configs,
    }
    (out / "curves.json").write_text(json.dumps(run))
    print(f"space {args.space}, seed {args.seed}, budget {args.budget:.0f} s")
    combine([run])
    print(f"curves: {out / 'curves.json'}")


def combine(runs: list[dict[str, Any]]) -> None:
    """The table: per tool, the median over runs (seeds) with its range where there are several."""
    budget = float(runs[0].get("budget", 600))
    marks = [m * budget / 600 for m in MARKS]
    print(f"{len(runs)} run(s), seeds {[r.get('seed', '?') for r in runs]}")
    print("| tool | first scored epoch | " + " | ".join(f"best at {m:.0f} s" for m in marks) + " | configs |")
    print("| --- | --- | " + " | ".join("---" for _ in marks) + " | --- |")
    tools = dict.fromkeys(tool for run in runs for tool in run["curves"])
    for tool in tools:
        mine = [run for run in runs if tool in run["curves"]]
        firsts = [min((w for w, _ in run["curves"][tool]), default=None) for run in mine]
        cells = [_spread([best_by(run["curves"][tool], m) for run in mine], "{:.4f}") for m in marks]
        first = _spread(firsts, "{:.0f} s")
        configs = _spread([run["configs"][tool] for run in mine], "{:.0f}")
        print(f"| {tool} | {first} | {' | '.join(cells)} | {configs} |")


def _spread(values: list[float | None], fmt: str) -> str:
    """`median (min-max)`; a run with no value yet at that point counts as the lowest ("-")."""
    known = sorted(-math.inf if v is None else float(v) for v in values)
    show = lambda v: "-" if v == -math.inf else fmt.format(v)  # noqa: E731
    median = show(statistics.median(known)) if known else "-"
    return median if len(known) < 2 else f"{median} ({show(known[0])} to {show(known[-1])})"


if __name__ == "__main__":
    main()
