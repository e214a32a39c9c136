"""Does a process that trains model after model grow? Plain Keras, no harness, no Ray.

Usage: .venv/bin/python benchmarks/fit_memory.py [--backend tensorflow|jax] [--fits 60] [--eager]
Builds, compiles and fits a new 8x8 CNN `--fits` times in one process, with
`keras.backend.clear_session(free_memory=True)` before each, as a reused Ray worker runs
trial after trial, and prints RSS growth per fit (median of the first 10 vs the last 10).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--fits", type=int, default=60)
    parser.add_argument("--eager", action="store_true", help="run_eagerly=True (TensorFlow: no tf.function)")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.random((1400, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 1400)
    rss = []
    for _ in range(args.fits):
        keras.backend.clear_session(free_memory=True)
        model = keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])  # fmt: skip
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=args.eager)
        model.fit(x, y, epochs=1, batch_size=128, verbose=0)
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        rss.append(pages * os.sysconf("SC_PAGE_SIZE") / 2**20)
    first, last = statistics.median(rss[:10]), statistics.median(rss[-10:])
    per_fit = (last - first) / (args.fits - 10)
    print(f"{args.backend}{' eager' if args.eager else ''}: RSS {first:.0f} -> {last:.0f} MiB, "
          f"{per_fit:+.2f} MiB per fit")  # fmt: skip


if __name__ == "__main__":
    main()
