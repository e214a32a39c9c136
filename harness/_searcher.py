"""Optuna behind Ray Tune, told the truth: samplers by name, start points, warm starts, true states.

Ray's `OptunaSearch` reports a trial stopped by a scheduler to Optuna as COMPLETE with its
low-fidelity value (mixing 1-epoch and 20-epoch scores in TPE's model), and a failed
trial's NaN makes Optuna refuse the `tell` (Ray logs and swallows it), leaving that trial
RUNNING forever. `HarnessSearch` tells pruned trials as PRUNED and failed ones as FAIL.
It relies on `OptunaSearch`'s `_ot_study`, `_ot_trials` and `_completed_trials`.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from harness._errors import HarnessError
from harness._points import distributions, point_params, row_point
from harness._query import load_leaderboard
from harness._record import REPORT_KEY, EpochReport, FinalReport, TrialStatus
from harness._space import START_POINT, Value
from harness._spec import SearchSpec

TRAINING_ITERATION = "training_iteration"  # Ray's counter of reports: one per epoch
_NEEDS = {"gp": ("torch", "[torch]"), "cmaes": ("cmaes", " cmaes")}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler called `name` (`search.sampler`), seeded."""
    if name in _NEEDS and importlib.util.find_spec(_NEEDS[name][0]) is None:
        package, extra = _NEEDS[name]
        raise HarnessError(
            f"search.sampler: {name} needs the {package} package; `pip install -e .{extra}` "
            "or choose tpe, random or qmc."
            if extra.startswith("[")
            else f"search.sampler: {name} needs the {package} package; `pip install{extra}` "
            "or choose tpe, random or qmc."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
            # Optuna 5's TPE is multivariate with a constant liar by default; `group` adds
            # what conditional per-block spaces need (filters_3 exists only with 3 blocks).
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, group=True),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        }
        return samplers[name]()


class HarnessSearch(OptunaSearch):
    """`OptunaSearch` with start points enqueued, earlier trials added, and true final states."""

    def __init__(
        self,
        *,
        space: Callable[[optuna.Trial], dict[str, Any]],
        sampler: optuna.samplers.BaseSampler,
        metric: str,
        mode: str,
        study_name: str,
        start_points: list[dict[str, Value]],
        earlier_trials: list[FrozenTrial],
    ) -> None:
        super().__init__(space=space, sampler=sampler, metric=metric, mode=mode, study_name=study_name)
        self.objective = metric
        self._last: dict[str, EpochReport | FinalReport] = {}  # per live trial: its latest report
        self.study.add_trials(earlier_trials)  # before the first suggestion
        for params in start_points:
            self.study.enqueue_trial(params, user_attrs={START_POINT: True}, skip_if_exists=False)

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (created by `OptunaSearch` once metric and mode are known)."""
        study = self._ot_study
        if not isinstance(study, optuna.Study):
            raise RuntimeError("OptunaSearch has not created its study")
        return study

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Each epoch's value is an intermediate value (a failure's NaN is not)."""
        report = result.get(REPORT_KEY)
        if isinstance(report, EpochReport | FinalReport) and trial_id in self._ot_trials:
            self._last[trial_id] = report
            self._report_epoch(trial_id, report, result.get(TRAINING_ITERATION))

    def _report_epoch(self, trial_id: str, report: EpochReport | FinalReport, step: Any) -> None:
        value = report.epoch.metric(self.objective) if report.epoch is not None else None
        if value is not None and isinstance(step, int):
            self._ot_trials[trial_id].report(value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        last = self._last.pop(trial_id, None)
        # Ray passes no result when it stops a paused trial, even one paused after its final report.
        report = (result or {}).get(REPORT_KEY, last)
        if result and isinstance(report, EpochReport | FinalReport) and report is not last:
            # A STOP decision skips on_trial_result: this epoch was not reported yet.
            self._report_epoch(trial_id, report, result.get(TRAINING_ITERATION))
        value = None
        if error or (isinstance(report, FinalReport) and report.record.status is TrialStatus.FAILED):
            state = TrialState.FAIL
        elif isinstance(report, FinalReport):
            state, value = TrialState.COMPLETE, getattr(report.record, self.objective)
        else:  # stopped by the scheduler or the time budget: no final value
            state = TrialState.PRUNED
        self.study.tell(self._ot_trials[trial_id], value, state=state)
        self._completed_trials.add(trial_id)


def start_points(spec: SearchSpec) -> list[dict[str, Value]]:
    """`search.start_from` as the values Optuna enqueues (validated with the spec)."""
    return [point_params(spec.space, point) for point in spec.search.start_from]


def earlier_trials(spec: SearchSpec, results_dir: str | Path, dataset: str) -> list[FrozenTrial]:
    """`search.warm_start`: rows of earlier studies on this dataset whose parameters fit the space."""
    trials: list[FrozenTrial] = []
    metric = spec.objective.metric
    for study in spec.search.warm_start:
        frame = load_leaderboard(results_dir, study)
        if frame.empty:
            raise HarnessError(
                f"search.warm_start: study {study!r} has no rows under {results_dir}; "
                "name a study that has run there, or remove it."
            )
        for row in frame[frame["dataset"] == dataset].to_dict("records"):
            trial = _as_trial(spec, row, metric)
            if trial is not None:
                trials.append(trial)
    return trials


def _as_trial(spec: SearchSpec, row: Mapping[str, Any], metric: str) -> FrozenTrial | None:
    hps = {k.removeprefix("hp_"): _plain(v) for k, v in row.items() if k.startswith("hp_")}
    try:
        params = point_params(spec.space, row_point(hps))
    except ValueError:
        return None  # sampled from another space: says nothing about this one
    value = _plain(row.get(metric))
    status = row.get("status")
    state = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(str(status), TrialState.FAIL)
    if state is TrialState.COMPLETE and value is None:
        state = TrialState.FAIL
    best_epoch = _plain(row.get("best_epoch"))
    return optuna.trial.create_trial(
        state=state,
        value=value if state is TrialState.COMPLETE else None,
        params=params,
        distributions=distributions(spec.space, params),
        intermediate_values={int(best_epoch): value}
        if state is TrialState.PRUNED and value and best_epoch
        else None,
        user_attrs={"warm_start": f"{row.get('study')}/{row.get('trial_id')}"},
    )


def _plain(value: Any) -> Any:
    """pandas nulls -> None, numpy scalars -> Python (what Optuna and the point checks take)."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value
