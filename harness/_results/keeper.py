"""Keep-top-k for saved models, ranked incrementally: O(log k) driver work per trial.

Re-reading and re-ranking the whole study after every trial costs more as the study grows
(the benchmarks page, "Driver work per trial stays flat"). Here the study is read once when a
search starts; after that each completed trial is one heap push and, past `keep`, one eviction.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace

from harness._results.leaderboard import study_records, write_row
from harness._results.models import delete_model
from harness._results.ranking import rank_key
from harness._results.record import TrialRecord, TrialStatus
from harness._storage import Results


class ModelKeeper:
    """Holds the best `keep` completed trials that have a model; drops the rest.

    Ranked by `rank_key`, as the leaderboard ranks; among equal keys the earlier trial stays.
    (A multi-objective study keeps every model by default: its front has no single order.)
    """

    def __init__(self, results_dir: Results, keep: int) -> None:
        self.results_dir, self.keep = results_dir, keep
        # (the rank key negated, -arrival, trial_id): the worst on top
        self._heap: list[tuple[tuple[float, ...], int, str]] = []
        self._records: dict[str, TrialRecord] = {}
        self._arrivals = itertools.count()

    @classmethod
    def for_study(cls, results_dir: Results, study: str, keep: int) -> ModelKeeper:
        """Seeded with the study's rows that still hold a model (read once per search)."""
        keeper = cls(results_dir, keep)
        for record in study_records(results_dir, study):
            keeper.add(record)  # rows without a model are ignored
        return keeper

    def add(self, record: TrialRecord) -> list[str]:
        """Consider a newly recorded trial; returns the trial ids whose model was dropped."""
        if record.status is not TrialStatus.COMPLETED or record.model_path is None:
            return []
        metric = record.objective_metric or "val_accuracy"
        key = rank_key(record.status, record.feasible, getattr(record, metric, None), record.objective_mode)
        heapq.heappush(self._heap, (tuple(-k for k in key), -next(self._arrivals), record.trial_id))
        self._records[record.trial_id] = record
        dropped = []
        while len(self._heap) > self.keep:
            *_, trial_id = heapq.heappop(self._heap)
            self._drop(self._records.pop(trial_id))
            dropped.append(trial_id)
        return dropped

    @property
    def kept(self) -> list[str]:
        return sorted(self._records)

    def _drop(self, record: TrialRecord) -> None:
        """Row first, then the file: a crash in between leaves a spare file, never a dangling path."""
        write_row(self.results_dir, replace(record, model_path=None))
        delete_model(self.results_dir, record.study, record.model_path or "")

