"""The driver's Ray Tune callbacks: one leaderboard row per trial, and live progress counts.

Both run inside Ray Tune's event loop after every trial event, so each does O(1) work
per event (keep-top-k included, see harness._results.keeper), and both are picklable: Ray
stores them with the experiment, so a resumed run records and counts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from harness._errors import StorageFull
from harness._results.constraints import feasible
from harness._results.curves import write_curves
from harness._results.keeper import ModelKeeper
from harness._results.leaderboard import write_row, written_trial_ids
from harness._results.models import model_file
from harness._results.record import (
    REPORT_KEY,
    EpochRecord,
    EpochReport,
    ErrorKind,
    FinalReport,
    SliceReport,
    StopReason,
    TrialRecord,
    TrialStatus,
    now,
    steady_epoch_s,
)
from harness._search.progress import LiveProgress
from harness._spec.space import hyperparameters
from harness._spec.spec import Direction
from harness._storage import Location, write_text
from harness._trial.worker import WIND_DOWN_S, trial_cpus, trial_gpus

if TYPE_CHECKING:
    from harness._search.mlflow import MlflowLogger
    from harness._trial.runner import TrialContext

ERRORS_DIR = "errors"
"""Folder of a run holding the traceback of each trial that failed inside harness itself."""
_WORKER_DEATHS = (
    "ActorDiedError", "RayActorError", "OutOfMemoryError", "WorkerCrashedError", "worker process has died",
)  # fmt: skip
"""What Ray's error file says when a trial's process died (kill -9, the OOM killer), not its code."""


@dataclass
class _Seen:
    """What the driver knows of a running trial: all a pruned trial leaves behind."""

    last: EpochReport | SliceReport | None = None
    by_number: dict[int, EpochRecord] = field(default_factory=dict)
    slices: dict[float, SliceReport] = field(default_factory=dict)  # first-epoch reports, by fraction

    def add(self, report: EpochReport | SliceReport) -> None:
        """An attempt's first report brings the epochs before it (none for a fresh start)."""
        if isinstance(report, SliceReport):
            self.slices[report.fraction] = report
        else:
            if report.earlier is not None:
                self.by_number = {e.epoch: e for e in report.earlier}
            self.by_number[report.epoch.epoch] = report.epoch
        self.last = report

    @property
    def epochs(self) -> list[EpochRecord]:
        return [self.by_number[n] for n in sorted(self.by_number)]

    @property
    def epoch_times(self) -> list[float]:
        return [e.epoch_s or 0.0 for e in self.epochs]

    def best(self, metric: str, direction: Direction) -> EpochRecord | SliceReport | None:
        """The best epoch; a trial stopped inside its first epoch, its best part of it."""
        scored: list[EpochRecord | SliceReport] = [e for e in self.epochs if e.metric(metric) is not None]
        scored = scored or [s for s in self.slices.values() if s.metric(metric) is not None]
        return min(scored, key=lambda e: direction.badness(e.metric(metric) or 0.0)) if scored else None


class LeaderboardRecorder(Callback):
    """Writes one atomic row per finished trial: completed, pruned or failed."""

    def __init__(self, ctx: TrialContext, *, results_dir: str, run_dir: str, keep_models: int | None,
                 time_budget_s: float | None, max_retries: int = 0, trial_timeout_s: float | None = None,
                 mlflow: MlflowLogger | None = None) -> None:  # fmt: skip
        self.ctx, self.results_dir, self.run_dir = ctx, results_dir, run_dir
        self.keep_models, self.time_budget_s, self.max_retries = keep_models, time_budget_s, max_retries
        self.trial_timeout_s, self.mlflow = trial_timeout_s, mlflow
        self.started: dict[str, datetime] = {}  # trial id -> when its current attempt started
        self.timed_out: set[str] = set()
        self.seen: dict[str, _Seen] = {}
        self.keeper: ModelKeeper | None = None
        self.setup_time = 0.0

    def setup(self, *args: Any, **info: Any) -> None:
        """Also called on resume: re-read the study's kept models once, not per trial."""
        self.setup_time = now().timestamp()
        self.started.clear()  # a resumed run starts its trials again (their clocks too)
        if self.keep_models is not None:
            self.keeper = ModelKeeper.for_study(self.results_dir, self.ctx.study, self.keep_models)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "keeper": None}  # rebuilt from the leaderboard in setup()

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.started[trial.trial_id] = now()

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """`search.trial_timeout_s`: a hung trial (a fit or data pipeline that never returns) sends
        nothing, so the driver ends it: its process is killed, with no retry."""
        if self.trial_timeout_s is None or not self.started:
            return
        deadline = now() - timedelta(seconds=self.trial_timeout_s)
        late = {t for t, since in self.started.items() if since < deadline} - self.timed_out
        for trial in (t for t in trials if t.trial_id in late and t.status == "RUNNING"):
            actor = trial.temporary_state.ray_actor
            if actor is not None:
                self.timed_out.add(trial.trial_id)
                trial.max_failures = 0  # Ray's FailureConfig would run it again: it would hang again
                ray.kill(actor, no_restart=True)  # Ray sees the death: on_trial_error records it

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any],
                        **info: Any) -> None:  # fmt: skip
        report = result.get(REPORT_KEY)
        if isinstance(report, FinalReport) and report.storage_full:
            raise StorageFull(report.storage_full)  # ends the search as a driver crash would: resumable
        if isinstance(report, EpochReport | SliceReport):
            self.seen.setdefault(trial.trial_id, _Seen()).add(report)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        report = (trial.last_result or {}).get(REPORT_KEY)
        if _too_late(report):  # started after the time budget: no row, as for a pending trial
            self.seen.pop(trial.trial_id, None)
            self.started.pop(trial.trial_id, None)
        elif isinstance(report, FinalReport):
            self._record(report.record, report.traceback, report.epochs)
        else:
            self._record(self._early_stop(trial, StopReason.SCHEDULER))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if trial.trial_id in self.timed_out:
            error = f"still running after {self.trial_timeout_s:g} s (search.trial_timeout_s); not retried"
            stopped = replace(self._early_stop(trial, StopReason.TIMEOUT), status=TrialStatus.FAILED,
                              error=error, error_kind=ErrorKind.USER)  # fmt: skip
            self._record(stopped)
            return
        full = _error_file_text(trial)
        error = _last_line(full)
        died = any(d in full for d in _WORKER_DEATHS)
        kind = ErrorKind.USER if died else ErrorKind.INTERNAL
        if died:  # not the configuration's fault as such: say what happened and what was tried
            error = f"the trial's worker died (killed or out of memory), retried {self.max_retries}x: {error}"
        record = replace(
            self._early_stop(trial, None), status=TrialStatus.FAILED, error=error, error_kind=kind
        )
        self._record(record, full if kind is ErrorKind.INTERNAL else None)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Trials that ended without an event of their own get a row here: those Ray errored
        silently, and those cut by the time budget once started (pending ones get none).
        Trials still running after Ctrl-C are left alone: `--resume` restarts them.
        """
        elapsed = now().timestamp() - self.setup_time
        cut = self.time_budget_s is not None and elapsed >= self.time_budget_s - 1.0
        unrecorded = [
            t for t in trials
            if t.status == Trial.ERROR or (cut and (t.trial_id in self.seen or t.trial_id in self.started))
        ]  # fmt: skip
        done = written_trial_ids(self.results_dir, self.ctx.study) if unrecorded else set()
        for trial in (t for t in unrecorded if t.trial_id not in done):
            if trial.status == Trial.ERROR:
                self._record(self._not_started(trial))
            else:
                self._record(self._early_stop(trial, StopReason.TIME_BUDGET))

    def _not_started(self, trial: Trial) -> TrialRecord:
        """Ray ends a trial it could not start on a reused worker (the worker's previous trial
        outlived WIND_DOWN_S) as ERROR without an error event or a retry. Without a row,
        `--resume` (which leaves errored trials alone) would report it missing forever.
        """
        error = (
            "Ray could not start this trial on a reused worker (its previous trial had not ended "
            f"within {WIND_DOWN_S} s) and did not retry it"
        )
        early = self._early_stop(trial, None)
        return replace(early, status=TrialStatus.FAILED, error=error, error_kind=ErrorKind.INTERNAL)

    def _early_stop(self, trial: Trial, reason: StopReason | None) -> TrialRecord:
        """A pruned row from the trial's reported epochs (its best epoch's metrics)."""
        seen = self.seen.get(trial.trial_id, _Seen())
        record = TrialRecord(
            study=self.ctx.study,
            trial_id=trial.trial_id,
            status=TrialStatus.PRUNED,
            run_id=self.ctx.run_id,
            dataset=self.ctx.dataset,
            objective_metric=self.ctx.objective_metric,
            objective_mode=str(self.ctx.direction),
            spec_hash=self.ctx.spec_hash,
            cpus=trial_cpus(trial.placement_group_factory),
            gpus=trial_gpus(trial.placement_group_factory),
            stop_reason=reason,
            objectives=self.ctx.objectives_column,
            finished_at=now(),
            epochs_run=len(seen.epoch_times),
            train_time_s=sum(seen.epoch_times) if seen.epoch_times else None,
            first_epoch_s=seen.epoch_times[0] if seen.epoch_times else None,
            steady_epoch_s=steady_epoch_s(seen.epoch_times),
            builder=self.ctx.builder.record_label,
            hyperparameters=hyperparameters(trial.config),
        )
        if seen.last is not None:
            record = replace(record.with_provenance(seen.last.provenance), params=seen.last.params)
        started = seen.last.started_at if seen.last is not None else self.started.get(trial.trial_id)
        if started is not None:  # a trial that ran says when; one cut before its first epoch too
            record = replace(record, started_at=started, total_time_s=(now() - started).total_seconds())
        best = seen.best(self.ctx.objective_metric, self.ctx.direction)
        if best is not None:
            record = replace(record, val_accuracy=best.val_accuracy, val_loss=best.val_loss,
                             best_epoch=best.epoch if isinstance(best, EpochRecord) else None)  # fmt: skip
        return replace(record, feasible=feasible(record, self.ctx.constraints))

    def _record(
        self, record: TrialRecord, traceback: str | None = None, epochs: tuple[EpochRecord, ...] = ()
    ) -> None:
        """Curves first, then the row: a row never lacks its curves (a crash between re-runs the trial)."""
        if traceback is not None:
            write_text(Location.of(self.run_dir) / ERRORS_DIR / f"{record.trial_id}.txt", traceback)
        epochs = epochs or tuple(self.seen.get(record.trial_id, _Seen()).epochs)
        write_curves(self.results_dir, record.study, record.trial_id, self.ctx.run_id, epochs)
        write_row(self.results_dir, record)
        self.seen.pop(record.trial_id, None)
        self.started.pop(record.trial_id, None)
        dropped = self.keeper.add(record) if self.keeper is not None else []
        if self.mlflow is not None:  # the model only while keep-top-k keeps it
            model = model_file(self.results_dir, record.study, record.model_path or "")
            kept = model is not None and record.trial_id not in dropped
            self.mlflow.log(replace(record, model_path=model.uri if model and kept else None), epochs)


class SearchProgress(Callback):
    """Counts running/completed/pruned/failed trials and the best completed value so far.

    "Best" is what the leaderboard ranks first: a completed, feasible trial's value (the epoch
    it kept), never a passing epoch's. It holds only counts; the drawing is `LiveProgress.current`'s.
    """

    def __init__(self, metric: str, direction: Direction) -> None:
        self.metric, self.direction = metric, direction
        self.counts = {"completed": 0, "pruned": 0, "failed": 0}
        self.running: set[str] = set()  # a set: a paused trial starts again
        self.best: float | None = None

    def setup(self, *args: Any, **info: Any) -> None:
        self.running.clear()  # a resumed run restarts its unfinished trials

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.running.add(trial.trial_id)
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        report = (trial.last_result or {}).get(REPORT_KEY)
        if _too_late(report):
            self.running.discard(trial.trial_id)
            self._refresh()
        elif isinstance(report, FinalReport):
            record = report.record
            ranked = record.status is TrialStatus.COMPLETED and record.feasible is not False
            self._finish(trial, record.status, getattr(record, self.metric) if ranked else None)
        else:
            self._finish(trial, TrialStatus.PRUNED, None)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._finish(trial, TrialStatus.FAILED, None)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any],
                        **info: Any) -> None:  # fmt: skip
        self._refresh()

    def _finish(self, trial: Trial, status: TrialStatus, value: float | None) -> None:
        self.running.discard(trial.trial_id)
        self.counts[str(status)] += 1
        self._consider(value)
        self._refresh()

    def _consider(self, value: float | None) -> None:
        if value is None or math.isnan(value):
            return
        if self.best is None or self.direction.better(value, self.best):
            self.best = float(value)

    def _refresh(self) -> None:
        live = LiveProgress.current
        if live is None:
            return
        done = sum(self.counts.values())
        best = "-" if self.best is None else f"{self.best:.4f}"
        counts = ", ".join(f"{k} {v}" for k, v in {"running": len(self.running), **self.counts}.items())
        live.show(done, f"{counts} | best completed {self.metric} {best}")


def _too_late(report: object) -> bool:
    """A trial Ray started after the search's time budget had run out: it trained nothing."""
    return (
        isinstance(report, FinalReport)
        and report.record.stop_reason is StopReason.TIME_BUDGET
        and not report.record.epochs_run
    )


def _last_line(error_file_text: str) -> str:
    """The exception a crashed trial (not a caught failure) left behind, in one line."""
    lines = [ln for ln in error_file_text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "trial crashed (no error file)")[:2000]


def _error_file_text(trial: Trial) -> str:
    path = getattr(trial, "error_file", None)
    return Path(path).read_text() if path and Path(path).is_file() else ""
