"""harness: distributed benchmarking and hyperparameter search for Keras CNNs.

Simple things short::

    from harness import load_spec, run_search, load_leaderboard
    run_search(load_spec("search_spaces/digits.yaml"))
    load_leaderboard("results")
"""

from __future__ import annotations

__version__ = "0.1.0"

from harness.errors import DataError, HarnessError, SpecError, TrialFailed
from harness.results import load_leaderboard
from harness.spec import SearchSpec, load_spec

__all__ = [
    "DataError",
    "HarnessError",
    "SearchSpec",
    "SpecError",
    "TrialFailed",
    "__version__",
    "load_leaderboard",
    "load_spec",
    "run_search",
]


def __getattr__(name: str):  # noqa: ANN202 - lazy: importing Ray costs seconds
    if name == "run_search":
        from harness.search import run_search

        return run_search
    raise AttributeError(name)
