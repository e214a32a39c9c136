"""Steady epoch time: the same CNN as a user's build(hp) function and as harness' YAML space.

Usage: HARNESS_DATA_DIR=~/data .venv/bin/python benchmarks/user_model_overhead.py \\
           [--limit-train 20000] [--epochs 4] [--rounds 3]

The Keras Fashion-MNIST tutorial CNN (search_spaces/baselines/fashion_mnist.yaml:
Conv2D(32, 3x3, same, relu), max pooling, dropout 0.25, Dense(128), dropout 0.25, softmax;
Adam 1e-3, batch 128), written twice: as that YAML space, and as a plain Keras function that
declares its learning rate and batch size through `hp` (`model: user_model_overhead:build`).
Each round runs both `harness search`es back to back, each in a fresh process with default
resources, on the same split; steady epoch time is the row's `steady_epoch_s` (the median
epoch after the first). Prints each round and the ratio of medians (goal: within 1.05).
Figures last measured: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from harness import load_spec

BASELINE = "search_spaces/baselines/fashion_mnist.yaml"


def build(hp):  # type: ignore[no-untyped-def]  # a user's function, as users write it
    """The tutorial CNN in plain Keras."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Rescaling(1 / 255),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    hp.Fixed("batch_size", 128)
    lr = hp.Fixed("learning_rate", 0.001)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def specs(limit: int, epochs: int, folder: Path) -> tuple[Path, Path]:
    """The YAML space and the user model's spec, on the same subset and epochs."""
    yaml_spec = load_spec(BASELINE).with_overrides(
        **{"dataset.limit_train": limit, "search.max_epochs": epochs, "study": "yaml_model"}
    )
    user = yaml_spec.model_dump(mode="json") | {"study": "user_model", "space": {},
                                                 "model": "user_model_overhead:build"}  # fmt: skip
    paths = folder / "yaml.yaml", folder / "user.yaml"
    paths[0].write_text(yaml.safe_dump(yaml_spec.model_dump(mode="json")))
    paths[1].write_text(yaml.safe_dump(user))
    return paths


def steady(spec: Path) -> float:
    """One `harness search` in a fresh process: its trial's steady epoch time."""
    here = str(Path(__file__).parent)  # where user_model_overhead is importable, for the workers too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "harness", "search", str(spec), "--results", tmp]
        subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        frame = pd.read_parquet(Path(tmp) / "leaderboard")
    return float(frame["steady_epoch_s"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit-train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    yaml_path, user_path = specs(args.limit_train, args.epochs, Path(tempfile.mkdtemp()))
    theirs, ours = [], []
    for r in range(args.rounds):
        ours.append(steady(yaml_path))
        theirs.append(steady(user_path))
        print(
            f"round {r + 1}: YAML space {ours[-1]:.2f} s/epoch, build(hp) {theirs[-1]:.2f} s/epoch",
            flush=True,
        )
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"steady epoch, median over {args.rounds} rounds: YAML {statistics.median(ours):.2f} s, "
          f"build(hp) {statistics.median(theirs):.2f} s; ratio {ratio:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
