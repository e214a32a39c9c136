"""JAX's persistent compilation cache: a trial's first epoch with a cold cache and a warm one.

Usage: .venv/bin/python benchmarks/compile_cache.py [--spec search_spaces/digits.yaml] [--rounds 3]

Each round runs `harness search SPEC --backend jax --trials 1 --max-epochs 3` (one and the
same configuration: same spec, same seed) three times in fresh processes, back to back: with
a new, empty cache (cold: every program is compiled and written), again with that
cache (warm: programs are loaded), and with the cache turned off (none). Reported: each
run's `first_epoch_s` (the epoch that compiles) and `steady_epoch_s` from the leaderboard,
and the median ratio of cold to warm first epochs. On a GPU, run it with `--gpus-per-trial 1`
added through `--extra`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from harness import load_leaderboard


def first_epoch(spec: str, results: Path, cache: str | None, extra: list[str]) -> tuple[float, float]:
    env = dict(os.environ)
    if cache is None:
        env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    else:
        env["JAX_COMPILATION_CACHE_DIR"] = cache
    cmd = [sys.executable, "-m", "harness", "search", spec, "--backend", "jax", "--results", str(results),
           "--trials", "1", "--max-epochs", "3", *extra]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    frame = load_leaderboard(results)
    row = frame.sort_values("finished_at").iloc[-1]
    return float(row["first_epoch_s"]), float(row["steady_epoch_s"] or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", default="search_spaces/digits.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `harness search` options")
    args = parser.parse_args()
    ratios = []
    with TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cache = str(Path(tmp) / f"cache{r}")
            runs = {kind: first_epoch(args.spec, Path(tmp) / "r", c, args.extra)
                    for kind, c in (("cold", cache), ("warm", cache), ("none", None))}  # fmt: skip
            ratios.append(runs["cold"][0] / runs["warm"][0])
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k} first {v[0]:.2f} s (steady {v[1]:.2f} s)" for k, v in runs.items())
            )
    print(f"first epoch, cold / warm cache: {statistics.median(ratios):.2f}x (median of {len(ratios)})")


if __name__ == "__main__":
    main()
