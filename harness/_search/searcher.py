"""Optuna behind Ray Tune, told the truth: samplers by name, start points, warm starts, true states.

Ray's `OptunaSearch` reports a trial stopped by a scheduler to Optuna as COMPLETE with its
low-fidelity value (mixing 1-epoch and 20-epoch scores in TPE's model), and a failed
trial's NaN makes Optuna refuse the `tell` (Ray logs and swallows it), leaving that trial
RUNNING forever. `HarnessSearch` tells pruned trials as PRUNED and failed ones as FAIL.

A driver that dies restores from Ray's last snapshot, which can predate trials that went
on to finish and write their rows: Ray would sample replacements (11 rows for 10 trials)
and the sampler would never learn those results. `HarnessSearch.restore` reconciles the
snapshot with the run's rows (see `_reconcile`).
It relies on `OptunaSearch`'s `_ot_study`, `_ot_trials` and `_completed_trials`.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from harness._errors import HarnessError
from harness._results.constraints import violations
from harness._results.leaderboard import study_records
from harness._results.record import (
    FIDELITY,
    REPORT_KEY,
    EpochReport,
    FinalReport,
    SliceReport,
    TrialRecord,
    TrialStatus,
)
from harness._spec.space import START_POINT, Value
from harness._spec.spec import Bound, Direction, Objective, SearchSpec
from harness._storage import Location, Results
from harness._trial.builder import ModelBuilder

TRIAL_ID = "trial_id"
"""The user attribute of each Optuna trial naming its leaderboard row."""
OPTUNA_DB = "optuna.db"
"""The SQLite Optuna storage in a local results folder (optuna-dashboard reads it)."""


def optuna_storage(results: Location) -> tuple[optuna.storages.BaseStorage, str]:
    """Where a search's Optuna studies persist, and the URL or path to open them with.

    SQLite in a local results folder; Optuna's journal file on a network filesystem (SQLite
    locking is unreliable there); on the driver's disk where results are in an object
    store (neither can live in one): `~/.cache/harness/optuna/<bucket>/<prefix>.db`.
    """
    if not results.local:
        folder = Path.home() / ".cache" / "harness" / "optuna" / results.path.rsplit("/", 1)[0]
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / (results.name + '.db')}"
        return optuna.storages.RDBStorage(url), url
    Path(results.path).mkdir(parents=True, exist_ok=True)
    if _network_filesystem(results.path):
        from optuna.storages.journal import JournalFileBackend

        path = f"{results.path}/optuna.journal"
        return optuna.storages.JournalStorage(JournalFileBackend(path)), path
    url = f"sqlite:///{results.path}/{OPTUNA_DB}"
    return optuna.storages.RDBStorage(url), url


def _network_filesystem(path: str) -> bool:
    """Whether `path` is on NFS, CIFS or another network mount (Linux: /proc/mounts)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return False
    under = [(point, kind) for point, kind in mounts if f"{path}/".startswith(point.rstrip("/") + "/")]
    kind = max(under, key=lambda m: len(m[0]))[1] if under else ""
    return kind.split(".")[0] in NETWORK_FILESYSTEMS


NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs"})
_NEEDS = {"gp": ("torch", "pip install -e '.[torch]'"), "cmaes": ("cmaes", "pip install cmaes")}
"""Samplers whose optional package harness does not install: (package, how to install it)."""


def check_sampler(name: str) -> None:
    """A sampler whose optional package is missing is an error before any work."""
    if name in _NEEDS and importlib.util.find_spec(_NEEDS[name][0]) is None:
        package, install = _NEEDS[name]
        raise HarnessError(
            f"search.sampler: {name} needs the {package} package; `{install}`, or choose tpe, random or qmc."
        )


Report = EpochReport | FinalReport | SliceReport
"""What a worker reports; each but a failure's carries an intermediate value."""


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler called `name` (`search.sampler`), seeded."""
    check_sampler(name)
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
        objectives: tuple[Objective, ...],
        constraints: dict[str, Bound],
        study_name: str,
        start_points: list[dict[str, Value]],
        earlier_trials: list[FrozenTrial],
        trials: int,
        recorded: Callable[[], list[TrialRecord]],
        storage: optuna.storages.BaseStorage | None = None,
        time_budget_s: float | None = None,
    ) -> None:
        metrics, modes = [str(o.metric) for o in objectives], [str(o.direction) for o in objectives]
        super().__init__(
            space=space,
            sampler=sampler,
            metric=metrics if len(metrics) > 1 else metrics[0],
            mode=modes if len(modes) > 1 else modes[0],
            study_name=study_name,
            storage=storage,
        )
        self.objectives, self.constraints = metrics, constraints
        self.trials, self.recorded = trials, recorded  # `recorded`: this run's rows, read on restore
        self.time_budget_s = time_budget_s
        self.deadline: float | None = None  # the budget's end, from the first suggestion (of a resume too)
        self._unsnapshotted = 0  # trials that wrote rows after Ray's last snapshot (see restore)
        self._told_before_restart: set[str] = set()  # re-run by Ray, already told by a driver that died
        self._last: dict[str, Report] = {}  # per live trial: its latest report
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

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED
        """No more than `trials` in all, counting those Ray's snapshot missed, and none once the time
        budget is spent (running trials wind down then); each named for its row."""
        if self.deadline is None and self.time_budget_s is not None:
            self.deadline = time.time() + self.time_budget_s
        spent = self.deadline is not None and time.time() >= self.deadline
        if spent or len(self._ot_trials) + self._unsnapshotted >= self.trials:
            return str(self.FINISHED)
        config: dict[str, Any] | None = super().suggest(trial_id)  # asks Optuna: `_ot_trials[trial_id]`
        self._ot_trials[trial_id].set_user_attr(TRIAL_ID, trial_id)  # found again after a restart
        return config

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self.deadline = None  # a resumed run has its budget again, as its trials do
        self._reconcile()

    def _reconcile(self) -> None:
        """After Ray's snapshot, the run's rows: each trial that finished since counts toward
        `trials` and is told to Optuna from its row; a trial Ray never saw (and that left no
        row) is told FAIL, so none stays RUNNING. Trials the snapshot knows run again."""
        known = set(self._ot_trials) - self._completed_trials
        rows = {r.trial_id: r for r in self.recorded() if r.trial_id not in self._ot_trials}
        self._unsnapshotted = len(rows)
        for frozen in self.study.get_trials(deepcopy=False):
            trial_id = str(frozen.user_attrs.get(TRIAL_ID))
            if frozen.state.is_finished():
                if trial_id in known:
                    self._told_before_restart.add(trial_id)
            elif trial_id not in known:
                trial = optuna.Trial(self.study, frozen._trial_id)
                self._tell(trial, rows.get(trial_id), error=trial_id not in rows)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Each report's value is an intermediate value at its `FIDELITY` (a failure's NaN is not)."""
        report = result.get(REPORT_KEY)
        if trial_id in self._told_before_restart:
            return
        if isinstance(report, Report) and trial_id in self._ot_trials:
            self._last[trial_id] = report
            self._report(trial_id, report, result.get(FIDELITY))

    def _report(self, trial_id: str, report: Report, step: Any) -> None:
        """Intermediate values (Optuna keeps them for one objective only, once per step: a trial
        restarted inside its first epoch reports its first rungs again)."""
        source = report if isinstance(report, SliceReport) else report.epoch
        if len(self.objectives) > 1 or source is None or not isinstance(step, int):
            return
        value = source.metric(self.objectives[0])
        if value is not None:
            with warnings.catch_warnings():  # "already reported": the value at that step stays
                warnings.filterwarnings("ignore", message=".*is already reported")
                self._ot_trials[trial_id].report(value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if trial_id in self._told_before_restart:
            self._completed_trials.add(trial_id)
            return
        last = self._last.pop(trial_id, None)
        # Ray passes no result when it stops a paused trial, even one paused after its final report.
        report = (result or {}).get(REPORT_KEY, last)
        if result and isinstance(report, Report) and report is not last:
            # A STOP decision skips on_trial_result: this report was not passed on yet.
            self._report(trial_id, report, result.get(FIDELITY))
        record = report.record if isinstance(report, FinalReport) else None
        self._tell(self._ot_trials[trial_id], record, error)
        self._completed_trials.add(trial_id)

    def _tell(self, trial: optuna.Trial, record: TrialRecord | None, error: bool) -> None:
        """A trial's final state from its row (none: stopped by the scheduler or the time budget)."""
        values = None
        if error or (record is not None and record.status is TrialStatus.FAILED):
            state = TrialState.FAIL
        elif record is not None and record.status is TrialStatus.COMPLETED:
            values = [getattr(record, m) for m in self.objectives]
            # An objective the trial could not measure (steady_epoch_s after one epoch): no value to tell.
            state = TrialState.FAIL if None in values else TrialState.COMPLETE
            values = None if state is TrialState.FAIL else values
        else:  # stopped by the scheduler or the time budget, or never trained (infeasible)
            state = TrialState.PRUNED
        if record is not None and state is not TrialState.FAIL:
            for key, excess in violations(record, self.constraints).items():
                trial.set_constraint(key, excess)  # TPE sets infeasible trials apart
        self.study.tell(trial, values, state=state)


def start_points(spec: SearchSpec, builder: ModelBuilder) -> list[dict[str, Value]]:
    """`search.start_from` (or a cold search's probe) as the values Optuna enqueues."""
    return [builder.start_params(point) for point in spec.first_points]


def earlier_trials(
    spec: SearchSpec, builder: ModelBuilder, results_dir: Results, dataset: str
) -> list[FrozenTrial]:
    """`search.warm_start`: rows of earlier studies on this dataset whose parameters fit the space."""
    trials: list[FrozenTrial] = []
    for study in spec.search.warm_start:
        rows = study_records(results_dir, study)
        if not rows:
            raise HarnessError(
                f"search.warm_start: study {study!r} has no rows under {results_dir}; "
                "name a study that has run there, or remove it."
            )
        for record in rows:
            trial = _as_trial(spec, builder, record) if record.dataset == dataset else None
            if trial is not None:
                trials.append(trial)
    return trials


_STATES = {TrialStatus.COMPLETED: TrialState.COMPLETE, TrialStatus.PRUNED: TrialState.PRUNED}
_OPTUNA_DIRECTIONS = {
    Direction.MAX: optuna.study.StudyDirection.MAXIMIZE,
    Direction.MIN: optuna.study.StudyDirection.MINIMIZE,
}


def as_study(spec: SearchSpec, builder: ModelBuilder, records: list[TrialRecord]) -> optuna.Study:
    """An in-memory Optuna study of leaderboard rows, for Optuna's importance and plotting tools."""
    directions = [_OPTUNA_DIRECTIONS[o.direction] for o in spec.objectives]
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory" is noise here
    study = optuna.create_study(directions=directions)
    study.add_trials([t for t in (_as_trial(spec, builder, r) for r in records) if t is not None])
    return study


def _as_trial(spec: SearchSpec, builder: ModelBuilder, record: TrialRecord) -> FrozenTrial | None:
    try:
        params, dists = builder.trial_params(record.hyperparameters)
    except ValueError:
        return None  # sampled from another space: says nothing about this one
    values = [getattr(record, o.metric) for o in spec.objectives]
    state = _STATES.get(record.status, TrialState.FAIL)
    if state is TrialState.COMPLETE and None in values:
        state = TrialState.FAIL
    first = values[0]
    pruned_at = (
        {record.best_epoch * spec.search.scheduler.units_per_epoch: first}
        if state is TrialState.PRUNED and first and record.best_epoch and not spec.multi_objective
        else None
    )
    trial = optuna.trial.create_trial(
        state=state,
        values=values if state is TrialState.COMPLETE else None,
        params=params,
        distributions=dists,
        intermediate_values=pruned_at,
        user_attrs={"warm_start": f"{record.study}/{record.trial_id}"},
    )
    if state is not TrialState.FAIL:
        for key, excess in violations(record, spec.limits).items():
            trial.set_constraint(key, excess)
    return trial
