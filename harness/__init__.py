"""harness: distributed benchmarking and hyperparameter search for Keras CNNs.

Simple things short::

    from harness import load_spec, run_search, load_leaderboard
    run_search(load_spec("search_spaces/digits.yaml"))
    load_leaderboard("results")

This is the public API; modules whose names start with an underscore are private.
Importing harness imports neither Ray nor Keras (queries start fast); `run_search`
imports them when it runs.
"""

from __future__ import annotations

from harness._data import Data
from harness._errors import ArgumentError, DataError, HarnessError, InternalError, SpecError, TrialFailed
from harness._reports.bench import run_suite
from harness._reports.evaluate import Evaluation, evaluate_trial
from harness._reports.export import ExportError, export_trial, predict_images, select_trial
from harness._results.curves import load_curves
from harness._results.query import load_leaderboard, pareto_front, sort_leaderboard
from harness._results.record import EpochRecord, ErrorKind, Provenance, StopReason, TrialRecord, TrialStatus
from harness._search.dry_run import DryRun, dry_run
from harness._search.search import run_search
from harness._spec.spec import SearchSpec, load_spec
from harness._study import Study, load_study, search
from harness._version import RESULTS_FORMAT, __version__

__all__ = [
    "RESULTS_FORMAT",
    "ArgumentError",
    "Data",
    "DataError",
    "DryRun",
    "EpochRecord",
    "ErrorKind",
    "Evaluation",
    "ExportError",
    "HarnessError",
    "InternalError",
    "Provenance",
    "SearchSpec",
    "SpecError",
    "StopReason",
    "Study",
    "TrialFailed",
    "TrialRecord",
    "TrialStatus",
    "__version__",
    "dry_run",
    "evaluate_trial",
    "export_trial",
    "load_curves",
    "load_leaderboard",
    "load_spec",
    "load_study",
    "pareto_front",
    "predict_images",
    "run_search",
    "run_suite",
    "search",
    "select_trial",
    "sort_leaderboard",
]
