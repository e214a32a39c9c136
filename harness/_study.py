"""A study's results as objects: its trials as typed records, best first, and what to do with
them (load, export, evaluate, report). The leaderboard frame is one view of the same rows.

`search` is the front door from Python: a spec (file, dict or `SearchSpec`), your data, and
the few settings people change most, in one call that returns the `Study`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness._data import Data
from harness._errors import ArgumentError, HarnessError
from harness._names import check_name
from harness._results.query import load_leaderboard, pareto_front, parse_objectives
from harness._results.record import TrialRecord, TrialStatus
from harness._spec.spec import SearchSpec, load_spec
from harness._storage import Location, Results

if TYPE_CHECKING:
    from harness._reports.evaluate import Evaluation


@dataclass(frozen=True)
class Study:
    """One study of a results folder, as read when it was loaded: its trials, best first.

    The ranking is the leaderboard's (`load_leaderboard`): feasible, then completed, pruned,
    failed, then the objective (a multi-objective study's Pareto rank first).
    """

    name: str
    results_dir: str
    trials: tuple[TrialRecord, ...]
    frame: pd.DataFrame = field(repr=False, compare=False)
    data: Data | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(
        cls, results_dir: Results = "results", *, study: str | None = None, data: Data | None = None
    ) -> Study:
        """The study named `study` under `results_dir` (the only one there when not given).

        `data`: the arrays it searched from Python, which evaluation and export need again.
        """
        frame = load_leaderboard(results_dir, check_name("study", study) if study else None)
        found = sorted(frame["study"].unique()) if not frame.empty else []
        if study is None and len(found) != 1:
            raise ArgumentError("study", f"is needed: the studies under {results_dir} are {found}", study)
        if not found:
            raise ArgumentError("study", f"must name a study with rows under {results_dir}", study)
        trials = tuple(TrialRecord.from_row(row) for row in frame.to_dict("records"))
        uri = results_dir.uri if isinstance(results_dir, Location) else str(results_dir)
        return cls(name=found[0], results_dir=uri, trials=trials, frame=frame, data=data)

    @property
    def best_trial(self) -> TrialRecord:
        """The first-ranked completed trial that meets the constraints."""
        best = self.best_trials
        if not best:
            raise HarnessError(
                f"study {self.name!r} has no completed trial that meets its constraints under "
                f"{self.results_dir} ({len(self.trials)} trials); search longer, or look at study.trials."
            )
        return best[0]

    @property
    def best_trials(self) -> list[TrialRecord]:
        """The best trial; in a multi-objective study every trial of the Pareto front, best first."""
        eligible = [t for t in self.trials if t.status is TrialStatus.COMPLETED and t.feasible is not False]
        if not eligible or eligible[0].objectives is None:
            return eligible[:1]
        front = set(pareto_front(self.frame, parse_objectives(eligible[0].objectives))["trial_id"])
        return [t for t in eligible if t.trial_id in front]

    def trial(self, trial_id: str) -> TrialRecord:
        """The trial with this id."""
        for record in self.trials:
            if record.trial_id == trial_id:
                return record
        raise ArgumentError("trial_id", f"must name a trial of study {self.name!r}", trial_id)

    def to_pandas(self) -> pd.DataFrame:
        """The study's leaderboard rows, best first: `load_leaderboard`'s frame."""
        return self.frame.copy()

    def curves(self) -> pd.DataFrame:
        """Every recorded epoch of the study's trials (`load_curves`)."""
        from harness._results.curves import load_curves

        return load_curves(self.results_dir, self.name)

    def load_model(self, trial: str | TrialRecord | None = None) -> Any:
        """A trial's kept Keras model (the best trial's by default)."""
        from harness._reports.export import load_trial_model

        return load_trial_model(self._row(trial))

    def export(
        self,
        out: str | Path,
        trial: str | TrialRecord | None = None,
        *,
        formats: tuple[str, ...] = ("keras",),
        verify: bool = True,
        data_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """`export_trial` for a trial of this study (the best by default); returns its model card."""
        from harness._reports.export import export_trial

        row = self._row(trial)
        return export_trial(row, out, results_dir=self.results_dir, formats=formats, data_dir=data_dir,
                            verify=verify, data=self.data)  # fmt: skip

    def evaluate(
        self, trial: str | TrialRecord | None = None, *, data_dir: str | Path | None = None
    ) -> Evaluation:
        """A trial's test-set evaluation (the best trial's by default): per class, confusion."""
        from harness._reports.evaluate import evaluate_trial

        return evaluate_trial(
            self._row(trial), results_dir=self.results_dir, data_dir=data_dir, data=self.data
        )

    def report(self, out: str | Path | None = None, *, data_dir: str | Path | None = None) -> str:
        """Write the study's HTML report (`harness report`); return where."""
        from harness._reports.report import build_report

        return build_report(self.results_dir, study=self.name, out=out, data_dir=data_dir, data=self.data)

    def _row(self, trial: str | TrialRecord | None) -> pd.Series:
        trial_id = self.best_trial.trial_id if trial is None else getattr(trial, "trial_id", trial)
        rows = self.frame[self.frame["trial_id"] == self.trial(str(trial_id)).trial_id]
        return rows.iloc[0]

    def __repr__(self) -> str:
        counts = pd.Series([str(t.status) for t in self.trials]).value_counts().to_dict()
        return f"Study(name={self.name!r}, results_dir={self.results_dir!r}, trials={counts})"


def load_study(
    results_dir: Results = "results", *, study: str | None = None, data: Data | None = None
) -> Study:
    """Read a finished (or running) study of a results folder as objects.

    Args:
        results_dir: The results folder or URI.
        study: The study's name; may be left out when the folder holds one study.
        data: The arrays the study searched from Python, which evaluation and export need again.

    Returns:
        The study, its trials ranked as the leaderboard ranks them.

    Raises:
        ArgumentError: No such study, or several and `study` was not given.
    """
    return Study.load(results_dir, study=study, data=data)


def search(
    spec: str | Path | Mapping[str, Any] | SearchSpec,
    *,
    data: Data | None = None,
    trials: int | None = None,
    time_budget_s: float | None = None,
    results: Results = "results",
    resume: bool = False,
    **options: Any,
) -> Study:
    """Run (or resume) a search and return its study.

    Args:
        spec: A YAML file, a dict with the same sections, or a `SearchSpec`.
        data: Your own arrays (`Data.from_arrays`); the spec's `dataset` may then be left out.
        trials: Overrides `search.trials`.
        time_budget_s: Overrides `search.time_budget_s`.
        results: The results folder or URI (`s3://bucket/prefix`).
        resume: Continue the study's interrupted run instead of starting a new one.
        **options: `run_search`'s other arguments: `model`, `backend`, `address`, `data_dir`,
            `mlflow`, `strict`.

    Returns:
        The study as read when the search ended: its trials ranked, the best first.

    Raises:
        SpecError: The spec is invalid (nothing ran).
        DataError: The dataset cannot be found or read.
        ArgumentError: An argument is out of range; the message names it.
        InternalError: Every trial failed inside harness itself (with `strict=True`: any did).
    """
    overrides = {"search.trials": trials, "search.time_budget_s": time_budget_s}
    built = _spec(spec, data).with_overrides(**overrides)
    from harness._search.search import run_search

    run_search(built, results_dir=results, resume=resume, data=data, **options)
    return Study.load(results, study=built.study, data=data)


def _spec(spec: str | Path | Mapping[str, Any] | SearchSpec, data: Data | None) -> SearchSpec:
    """A validated spec; with `data`, one without a dataset section means the arrays."""
    if isinstance(spec, SearchSpec):
        return spec
    if not isinstance(spec, str | Path | Mapping):
        raise ArgumentError("spec", "must be a YAML file, a dict or a SearchSpec", type(spec).__name__)
    return load_spec(spec, own_data=data is not None)
