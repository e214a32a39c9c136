"""One trial's plain runner: build (or restore), fit with reports, finish; it returns the outcome.

The runner knows nothing of Ray. Its reports leave, and the checkpoint it resumes from
arrives, through a `Channel`: Ray Tune's in a worker (`worker.run_trial`), a list in tests.
Every outcome ends in one `FinalReport` sent through the channel: a completed trial's with
its last epoch (so the scheduler counts no extra iteration), evaluated and saved after `fit`
returns; a failed one's with its error and whose fault it was (`ErrorKind`); an untrained
one's (over a limit known once its model is built, `constraints.params`, or too slow to its
first report). A trial the search stops (scheduler, Ctrl-C) ends mid-epoch with no final
report, which is how the driver tells "pruned".
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import traceback
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness._errors import StopRequested, TooSlow, TrialFailed
from harness._results.constraints import feasible
from harness._results.models import stored_path
from harness._results.provenance import provenance
from harness._results.record import (
    FIDELITY,
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
from harness._spec.space import START_POINT, hyperparameters
from harness._spec.spec import Direction
from harness._storage import Location, copy_file, local_scratch, storage_full
from harness._trial.builder import CnnBuilder, ModelBuilder
from harness._trial.devices import out_of_memory, release_gpu_memory

if TYPE_CHECKING:
    import keras

    from harness._data import Dataset
    from harness._spec.spec import Bound, Objective
    from harness._trial.checkpoint import Progress, ResumableEarlyStopping
    from harness._trial.reporter import ReportCallback

TRAINING_LIBRARIES = frozenset({"keras", "tensorflow", "jax", "jaxlib", "torch", "optree", "numpy"})
"""Packages a failure of the user's configuration is raised from while training (shapes, memory)."""


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """Everything a trial needs besides its config and data; small and picklable."""

    study: str
    run_id: str
    dataset: str
    objectives: tuple[Objective, ...]  # the first is the scheduler's
    spec_hash: str
    models_dir: str
    max_epochs: int
    seed: int
    early_stopping: dict[str, Any] | None
    backend: str
    constraints: dict[str, Bound] = field(default_factory=dict)
    builder: ModelBuilder = field(default_factory=lambda: CnnBuilder({}))  # what the trial builds
    deadline: float | None = None  # the time budget's end (time.time()): trials wind down then
    units_per_epoch: int = 1  # the scheduler's `FIDELITY` units in an epoch
    first_epoch_fractions: tuple[float, ...] = ()  # where in the first epoch to report (1/9, 1/3)
    start_points_compared: bool = False  # start points report inside the first epoch too (for ASHA)
    first_report_limit_s: float | None = None  # a sampled trial slower to its first report stops

    @property
    def metrics(self) -> list[str]:
        """Every objective's metric, the first first: each report carries them all (Ray checks)."""
        return [o.metric for o in self.objectives]

    @property
    def objective_metric(self) -> str:
        return self.objectives[0].metric

    @property
    def direction(self) -> Direction:
        return self.objectives[0].direction

    @property
    def objectives_column(self) -> str | None:
        """A multi-objective search's objectives, as the record's `objectives` column."""
        return ",".join(map(str, self.objectives)) if len(self.objectives) > 1 else None


class Channel(Protocol):
    """Where a runner's reports go and its checkpoint comes from (Ray Tune's session in a worker)."""

    def report(self, metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        """Send one report; `checkpoint` is a folder the channel copies before returning."""

    def stop_requested(self) -> bool:
        """Whether the search asked the trial to stop since the last report."""

    def restored(self) -> AbstractContextManager[Path | None]:
        """The folder of the checkpoint to continue from, while open; None for a fresh start."""


class TrialRunner:
    """One run of a trial's configuration (or its continuation from a checkpoint).

    `run` builds, fits with a report per epoch (and inside the first epoch), then finishes
    outside `fit`: best weights, test evaluation, the saved model, the final report.
    """

    def __init__(
        self,
        config: dict[str, Any],
        data: Dataset,
        ctx: TrialContext,
        trial_id: str,
        channel: Channel,
        *,
        cpus: float,
        gpus: float = 0.0,
    ) -> None:
        self.config, self.data, self.ctx, self.cpus, self.gpus = config, data, ctx, cpus, gpus
        self.channel = channel
        self.t0 = time.perf_counter()
        self.record = TrialRecord(
            study=ctx.study,
            trial_id=trial_id,
            status=TrialStatus.FAILED,
            run_id=ctx.run_id,
            dataset=ctx.dataset,
            objective_metric=ctx.objective_metric,
            objective_mode=str(ctx.direction),
            spec_hash=ctx.spec_hash,
            started_at=now(),
            cpus=cpus,
            gpus=gpus,
            objectives=ctx.objectives_column,
            builder=ctx.builder.record_label,
            hyperparameters=hyperparameters(config),
        )
        self.reporter: ReportCallback | None = None
        self.stopper: ResumableEarlyStopping | None = None
        self.training = False
        self.infeasible = False
        self.cut = False  # training ended (or never began) at the search's time budget
        self.reported = False  # the first report of an attempt carries the epochs before it
        self.last: tuple[EpochRecord, dict[str, float]] | None = None  # reported once finished

    def run(self) -> FinalReport | None:
        """The trial's final report, already sent; None when the search stopped the trial."""
        try:
            self._fit()
            if self.infeasible or self.too_late:
                return self._send(self._not_trained())
            return self._finish()
        except StopRequested:
            return None
        except TooSlow:
            return self._send(self._too_slow())
        except Exception as exc:  # a bad trial must not end the search; whose fault it is, is kept
            return self._send(self._failed(exc))

    def _send(self, final: FinalReport) -> FinalReport:
        self.channel.report({**objective_values(final.record, self.ctx.metrics), REPORT_KEY: final})
        return final

    def _failed(self, exc: Exception) -> FinalReport:
        full = storage_full(exc, self.ctx.models_dir)
        if full is not None:  # nobody's trial is at fault, and a retry would fail again
            return FinalReport(record=self.record, storage_full=full.path)
        kind = classify(exc, in_training=self.training, user_modules=self.ctx.builder.user_modules)
        record = replace(
            self._with_epochs(self.record),
            error=(self._out_of_memory_hint() if out_of_memory(exc) else "")
            + f"{type(exc).__name__}: {exc}"[:2000],
            error_kind=kind,
            total_time_s=time.perf_counter() - self.t0,
            finished_at=now(),
        )
        tb = traceback.format_exc() if kind is ErrorKind.INTERNAL else None
        return FinalReport(record=record, traceback=tb, epochs=self._epochs())

    def _out_of_memory_hint(self) -> str:
        """What a user changes when a trial runs out of memory: the backend's error rarely says."""
        if self.gpus:
            return (
                f"out of GPU memory with {self.gpus:g} of a GPU: use a smaller batch_size, or fewer "
                "trials per GPU (a larger gpus_per_trial). "
            )
        return "out of memory: use a smaller batch_size or a smaller model. "

    def _fit(self) -> None:
        import keras

        from harness._trial.checkpoint import ResumableEarlyStopping
        from harness._trial.reporter import ReportCallback

        keras.backend.clear_session(free_memory=False)  # reused worker; gc.collect costs 0.2 s
        if self.gpus:
            release_gpu_memory(self.ctx.backend)  # on a GPU the previous trial's buffers matter
        keras.utils.set_random_seed(trial_seed(self.ctx.seed, self.config))
        self.provenance = provenance()  # once per trial: every report and the row share it
        self.record = self.record.with_provenance(self.provenance)
        self.training = True
        t_build = time.perf_counter()
        self.model, self.progress, best_weights = self._model_and_progress()
        self.record = replace(
            self.record, params=int(self.model.count_params()), started_at=self.progress.started_at
        )
        if feasible(self.record, self.ctx.constraints) is False:  # e.g. over `constraints.params`
            self.infeasible = True
            return
        es = self.ctx.early_stopping
        if es:
            self.stopper = ResumableEarlyStopping(
                resume=self.progress.early_stopping, best_weights=best_weights, **es
            )
        self.reporter = ReportCallback(
            study=self.ctx.study,
            trial_id=self.record.trial_id,
            on_epoch=self._on_epoch,
            stop_requested=self.channel.stop_requested,
            epochs=self.progress.epochs,
            deadline=self.ctx.deadline,
            slices=self._slices(),
            on_slice=self._on_slice,
            pace=self._pace(),
        )
        # The stopper first (its state is checkpointed), the reporter last (it sees the epoch's rate).
        callbacks = [c for c in (self.stopper, *self.ctx.builder.callbacks(self.config), self.reporter) if c]
        self.t_fit = time.perf_counter()
        self.record = replace(self.record, build_s=self.t_fit - t_build)
        if self.ctx.deadline is not None and time.time() >= self.ctx.deadline:
            self.cut = True  # started (or resumed) after the budget: scored as it is, if it has epochs
            return
        data = self.data
        self.model.fit(
            data.x_train, data.y_train,
            validation_data=(data.x_val, data.y_val),
            initial_epoch=len(self.progress.epochs),
            epochs=self.ctx.max_epochs,
            batch_size=self.ctx.builder.batch_size(self.config),
            callbacks=callbacks,
            verbose=0,
        )  # fmt: skip

    def _slices(self) -> dict[int, float]:
        """Batch counts of the first epoch after which to report, and their fractions.

        Only a fresh attempt reports inside its first epoch (a resumed one has finished it), and
        a start point only where ASHA records it at those rungs (`compare_with_start_points`).
        """
        if self.progress.epochs or (self.config.get(START_POINT) and not self.ctx.start_points_compared):
            return {}
        batches = self._batches_per_epoch()
        at = {max(1, math.ceil(f * batches)): f for f in self.ctx.first_epoch_fractions}
        return {b: f for b, f in at.items() if b < batches}

    def _pace(self) -> tuple[int, float] | None:
        """(batches to the first report, seconds allowed) for a fresh sampled trial, if limited."""
        limit = self.ctx.first_report_limit_s
        if limit is None or self.progress.epochs or self.config.get(START_POINT):
            return None
        return min(self._slices(), default=self._batches_per_epoch()), limit

    def _too_slow(self) -> FinalReport:
        """Stopped by its pace before its first report: pruned, with what it would have cost."""
        record = replace(
            self._with_epochs(self.record),
            status=TrialStatus.PRUNED,
            stop_reason=StopReason.TOO_SLOW,
            epochs_run=0,
            total_time_s=time.perf_counter() - self.t0,
            finished_at=now(),
        )
        self.training = False
        return FinalReport(record=record)

    def _batches_per_epoch(self) -> int:
        return math.ceil(len(self.data.x_train) / self.ctx.builder.batch_size(self.config))

    def _on_slice(self, fraction: float) -> None:
        """Report validation after `fraction` of the first epoch: scheduler evidence, no checkpoint
        (a trial restarted before its first epoch ends starts again, and ASHA counts a rung once)."""
        from harness._trial.reporter import validate_mid_epoch

        val = validate_mid_epoch(self.model, (self.data.x_val, self.data.y_val))
        report = SliceReport(
            fraction=fraction,
            val_loss=val.get("loss"),
            val_accuracy=val.get("accuracy"),
            params=self.record.params or 0,
            started_at=self.progress.started_at,
            provenance=self.provenance,
        )
        so_far = replace(self.record, train_time_s=self._fit_s(), val_accuracy=report.val_accuracy,
                         val_loss=report.val_loss)  # fmt: skip
        units = round(fraction * self.ctx.units_per_epoch)
        values = objective_values(so_far, self.ctx.metrics)
        self.channel.report({**values, FIDELITY: units, REPORT_KEY: report})

    def _on_epoch(self, epoch: EpochRecord, metrics: dict[str, float], last: bool) -> None:
        """Report the epoch with a checkpoint; the last one waits for the trial's final record."""
        if last:
            self.last = (epoch, metrics)
            return
        so_far = replace(
            self._with_epochs(self.record),
            train_time_s=self._fit_s(),
            val_accuracy=epoch.val_accuracy,
            val_loss=epoch.val_loss,
        )
        payload = EpochReport(
            epoch=epoch,
            params=self.record.params or 0,
            started_at=self.progress.started_at,
            provenance=self.provenance,
            earlier=None if self.reported else self._epochs()[:-1],  # a resumed trial's history
        )
        self._report_epoch(epoch, {**metrics, **objective_values(so_far, self.ctx.metrics)}, payload)

    def _report_epoch(
        self, epoch: EpochRecord, metrics: dict[str, float], payload: EpochReport | FinalReport
    ) -> None:
        self.reported = True
        with tempfile.TemporaryDirectory(prefix="harness-ckpt-") as folder:
            self._checkpoint(Path(folder))
            fidelity = epoch.epoch * self.ctx.units_per_epoch
            report = {**metrics, "epoch": epoch.epoch, FIDELITY: fidelity, REPORT_KEY: payload}
            self.channel.report(report, checkpoint=Path(folder))

    def _finish(self) -> FinalReport:
        """After `fit`: the completed record, sent with the last epoch (and its checkpoint) if this
        attempt ran one; a trial resumed after its last epoch sends it alone."""
        if self.last is None:
            return self._send(self._completed())
        epoch, metrics = self.last
        final = self._completed(epoch)
        self._report_epoch(epoch, {**metrics, **objective_values(final.record, self.ctx.metrics)}, final)
        return final

    def _completed(self, epoch: EpochRecord | None = None) -> FinalReport:
        """Best weights, NaN check, test evaluation and the saved model: the completed record."""
        history = self.reporter.history() if self.reporter else {"loss": []}
        if not all(math.isfinite(v) for v in history["loss"]):
            raise TrialFailed("training loss became NaN or infinite; lower the learning rate")
        self.record = replace(self.record, train_time_s=self._fit_s())
        stopper = self.stopper
        if stopper is not None and stopper.restore_best_weights and stopper.best_weights is not None:
            self.model.set_weights(stopper.best_weights)  # what EarlyStopping's on_train_end does
        best = selected_epoch(history, stopper)
        t_eval = time.perf_counter()
        data = self.data
        test_loss, test_acc = self.model.evaluate(data.x_test, data.y_test, verbose=0, batch_size=512)
        self.training = False
        t_save = time.perf_counter()
        save_model(self.model, Location.of(self.ctx.models_dir) / f"{self.record.trial_id}.keras")
        record = replace(
            self._with_epochs(self.record),
            status=TrialStatus.COMPLETED,
            val_accuracy=float(history["val_accuracy"][best]),
            val_loss=float(history["val_loss"][best]),
            test_accuracy=float(test_acc),
            test_loss=float(test_loss),
            best_epoch=best + 1,
            stop_reason=StopReason.TIME_BUDGET if self.cut_short else None,
            model_path=stored_path(self.record.study, self.record.trial_id),  # relative: see _models
            evaluate_s=t_save - t_eval,
            save_s=time.perf_counter() - t_save,
            total_time_s=time.perf_counter() - self.t0,
            finished_at=now(),
        )
        record = replace(record, feasible=feasible(record, self.ctx.constraints))
        return FinalReport(record=record, epoch=epoch, epochs=self._epochs())

    def _epochs(self) -> tuple[EpochRecord, ...]:
        """Every epoch of the trial so far, those restored from a checkpoint included."""
        return tuple(self.reporter.epochs) if self.reporter else ()

    @property
    def too_late(self) -> bool:
        """Started after the time budget with no epoch to score."""
        return self.cut and not self._epochs()

    @property
    def cut_short(self) -> bool:
        """Its training ended at the time budget, not by its own end."""
        return self.cut or (self.reporter is not None and self.reporter.cut)

    def _not_trained(self) -> FinalReport:
        """A trial over a limit known once its model is built, or started after the time budget:
        recorded, never trained."""
        reason = StopReason.TIME_BUDGET if self.too_late else StopReason.INFEASIBLE
        record = replace(
            self.record,
            status=TrialStatus.PRUNED,
            stop_reason=reason,
            feasible=None if self.too_late else False,
            epochs_run=0,
            total_time_s=time.perf_counter() - self.t0,
            finished_at=now(),
        )
        return FinalReport(record=record)

    def _fit_s(self) -> float:
        return self.progress.train_time_s + time.perf_counter() - self.t_fit

    def _checkpoint(self, folder: Path) -> None:
        from harness._trial.checkpoint import Progress, save

        stopper = self.stopper
        progress = Progress(
            started_at=self.progress.started_at,
            train_time_s=self._fit_s(),
            epochs=list(self.reporter.epochs) if self.reporter else [],
            early_stopping=stopper.state() if stopper else None,
        )
        save(folder, self.model, progress, stopper.best_weights if stopper else None)

    def _model_and_progress(self) -> tuple[keras.Model, Progress, list[Any] | None]:
        """A new compiled model, or the one a paused or interrupted attempt checkpointed."""
        from harness._trial.checkpoint import Progress, load

        with self.channel.restored() as folder:
            if folder is not None:
                return load(folder)
        model = self.ctx.builder.build(
            self.config, self.data.input_shape, self.data.num_classes,
            epochs=self.ctx.max_epochs, steps_per_epoch=self._batches_per_epoch(),
        )  # fmt: skip
        progress = Progress(
            started_at=self.record.started_at or now(), train_time_s=0.0, epochs=[], early_stopping=None
        )
        return model, progress, None

    def _with_epochs(self, record: TrialRecord) -> TrialRecord:
        """Epoch counts and timings so far (a failed trial keeps the epochs it ran)."""
        times = self.reporter.epoch_times if self.reporter else []
        return replace(
            record,
            epochs_run=len(times),
            first_epoch_s=times[0] if times else None,
            steady_epoch_s=steady_epoch_s(times),
        )


def objective_values(record: TrialRecord, metrics: list[str]) -> dict[str, float]:
    """The values Ray's schedulers and searcher read: the record's, NaN where unknown (a failure)."""
    values = {metric: getattr(record, metric) for metric in metrics}
    return {metric: math.nan if value is None else float(value) for metric, value in values.items()}


def classify(
    exc: BaseException, *, in_training: bool, user_modules: frozenset[str] = frozenset()
) -> ErrorKind:
    """User: TrialFailed, or an error a training library (or the user's model code, in
    `user_modules`) raised while training.

    Internal: anything raised from harness' own code, or outside training (saving,
    reporting): a defect that must not pass for a bad architecture.
    """
    if isinstance(exc, TrialFailed):
        return ErrorKind.USER
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    origin = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    if in_training and origin.split(".")[0] in TRAINING_LIBRARIES | user_modules:
        return ErrorKind.USER
    return ErrorKind.INTERNAL


def selected_epoch(history: dict[str, list[float]], stopper: keras.callbacks.EarlyStopping | None) -> int:
    """0-based epoch whose weights the model holds after fit.

    EarlyStopping's own choice (it honours `min_delta`) when it restored best weights;
    otherwise the last epoch, whose weights are the ones evaluated and saved.
    """
    last = len(history["loss"]) - 1
    if stopper is None or not stopper.restore_best_weights or stopper.best_weights is None:
        return last
    return min(int(stopper.best_epoch), last)


def trial_seed(seed: int, config: dict[str, Any]) -> int:
    """Same spec seed and configuration -> same initial weights and data order."""
    return (seed * 1_000_003 + zlib.crc32(json.dumps(config, sort_keys=True).encode())) % 2**31


def save_model(model: keras.Model, path: Path | str | Location) -> str:
    """Write the `.keras` file whole or not at all (Keras needs a real path: save, then copy)."""
    with local_scratch(".keras") as scratch:
        model.save(scratch)
        return copy_file(scratch, path)
