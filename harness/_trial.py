"""One trial, as run by a Ray Tune worker: build, fit with per-epoch reports, evaluate, save.

Every outcome the worker sees ends in one `FinalReport`: a completed trial with its test
metrics, or a failed one with its error and whose fault it was (`ErrorKind`). A trial
stopped by the scheduler never reaches it, which is how the driver tells "pruned". A trial
over a limit known once its model is built (`constraints.params`) is recorded untrained.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._builder import CnnBuilder, ModelBuilder
from harness._constraints import feasible
from harness._devices import GpuMemory, out_of_memory, release_gpu_memory
from harness._errors import TooSlow, TrialFailed
from harness._models import stored_path
from harness._provenance import provenance
from harness._record import (
    FIDELITY,
    REPORT_KEY,
    Direction,
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
from harness._resources import trial_cpus, trial_gpus
from harness._space import START_POINT, hyperparameters
from harness._storage import Location, copy_file, local_scratch, storage_full

if TYPE_CHECKING:
    import keras

    from harness._checkpoint import Progress, ResumableEarlyStopping
    from harness._data import Dataset
    from harness._reporter import ReportCallback
    from harness._spec import Bound, Objective

_configured = False
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
    start_points_compared: bool = False  # ASHA records start points at its rungs: they report slices too
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


def run_trial(config: dict[str, Any], *, data: Dataset, ctx: TrialContext) -> None:
    """The Ray Tune trainable (wrapped with `tune.with_parameters`)."""
    from ray import tune

    context = tune.get_context()
    resources = context.get_trial_resources()
    cpus, gpus = trial_cpus(resources) or 1.0, trial_gpus(resources) or 0.0
    if "keras" not in sys.modules:  # the worker's first trial: threads and GPU memory before Keras
        os.environ.update(worker_env(ctx.backend, cpus, gpus))
    final = _Attempt(config, data, ctx, context.get_trial_id(), cpus=cpus, gpus=gpus).run()
    if final is not None:  # a failure; a completed trial's record went with its last epoch
        tune.report({**objective_values(final.record, ctx.metrics), REPORT_KEY: final})


class _Attempt:
    """One run of a trial's configuration (or its continuation from a checkpoint).

    A completed trial's `FinalReport` travels with its last epoch's report; `run` returns
    the `FinalReport` of a failure (every exception becomes one) for the caller to send.
    """

    def __init__(
        self,
        config: dict[str, Any],
        data: Dataset,
        ctx: TrialContext,
        trial_id: str,
        *,
        cpus: float,
        gpus: float = 0.0,
    ) -> None:
        self.config, self.data, self.ctx, self.cpus, self.gpus = config, data, ctx, cpus, gpus
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
        self.finished = False
        self.infeasible = False
        self.cut = False  # training ended (or never began) at the search's time budget
        self.reported = False  # the first report of an attempt carries the epochs before it

    def run(self) -> FinalReport | None:
        try:
            self._train()
            if self.infeasible or self.too_late:
                return self._not_trained()
            return None if self.finished else self._finish(None)  # resumed after its last epoch
        except TooSlow:
            return self._too_slow()
        except Exception as exc:  # a bad trial must not end the search; whose fault it is, is kept
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

    def _train(self) -> None:
        configure_worker(self.cpus, self.gpus)
        import keras
        from ray import tune

        from harness._checkpoint import ResumableEarlyStopping
        from harness._reporter import ReportCallback

        keras.backend.clear_session(free_memory=False)  # reused worker; gc.collect costs 0.2 s
        if self.gpus:
            release_gpu_memory(self.ctx.backend)  # on a GPU the previous trial's buffers matter
        keras.utils.set_random_seed(trial_seed(self.ctx.seed, self.config))
        self.provenance = provenance()  # once per trial: every report and the row share it
        self.record = self.record.with_provenance(self.provenance)
        self.training = True
        t_build = time.perf_counter()
        self.model, self.progress, best_weights = self._model_and_progress(tune.get_checkpoint())
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
            stop_requested=_stop_requested,
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
        a start point only where ASHA records it at its rungs (`compare_with_start_points`).
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
        from ray import tune

        from harness._reporter import validate_mid_epoch

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
        tune.report({**objective_values(so_far, self.ctx.metrics), FIDELITY: units, REPORT_KEY: report})

    def _on_epoch(self, epoch: EpochRecord, metrics: dict[str, float], last: bool) -> None:
        """Report the epoch with a checkpoint; after the last one, with the trial's final record."""
        from ray import tune

        payload: EpochReport | FinalReport
        if last:
            payload = self._finish(epoch)
            metrics = {**metrics, **objective_values(payload.record, self.ctx.metrics)}
        else:
            so_far = replace(
                self._with_epochs(self.record),
                train_time_s=self._fit_s(),
                val_accuracy=epoch.val_accuracy,
                val_loss=epoch.val_loss,
            )
            metrics = {**metrics, **objective_values(so_far, self.ctx.metrics)}
            payload = EpochReport(
                epoch=epoch,
                params=self.record.params or 0,
                started_at=self.progress.started_at,
                provenance=self.provenance,
                earlier=None if self.reported else self._epochs()[:-1],  # a resumed trial's history
            )
        self.reported = True
        with tempfile.TemporaryDirectory(prefix="harness-ckpt-") as folder:
            self._checkpoint(Path(folder))
            checkpoint = tune.Checkpoint.from_directory(folder)
            fidelity = epoch.epoch * self.ctx.units_per_epoch
            report = {**metrics, "epoch": epoch.epoch, FIDELITY: fidelity, REPORT_KEY: payload}
            tune.report(report, checkpoint=checkpoint)

    def _finish(self, epoch: EpochRecord | None) -> FinalReport:
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
        self.finished = True
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
        from harness._checkpoint import Progress, save

        stopper = self.stopper
        progress = Progress(
            started_at=self.progress.started_at,
            train_time_s=self._fit_s(),
            epochs=list(self.reporter.epochs) if self.reporter else [],
            early_stopping=stopper.state() if stopper else None,
        )
        save(folder, self.model, progress, stopper.best_weights if stopper else None)

    def _model_and_progress(self, checkpoint: Any) -> tuple[keras.Model, Progress, list[Any] | None]:
        """A new compiled model, or the one a paused or interrupted attempt checkpointed."""
        from harness._checkpoint import Progress, load

        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                return load(Path(folder))
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


def configure_worker(cpus: float, gpus: float) -> None:
    """Match the backend's thread pools to the trial's CPU share and cap its GPU memory, once per worker.

    Ray reuses a worker only for trials asking the same resources, so the first trial's
    settings hold for every later one.
    """
    global _configured
    if _configured:
        return
    _configured = True
    threads = max(1, int(cpus))
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TF already initialised in this process
            pass
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    if gpus:
        GpuMemory.for_share(backend, gpus).apply()


# How long a reused worker waits for its previous trial's thread to end before Ray gives up
# on the next trial ("Could not re-use actor", the trial lost). The wait ends with the
# thread; 10 s was too short once on 2 CPUs shared with another search.
WIND_DOWN_S = 300


def worker_env(backend: str, cpus: float | None = None, gpus: float = 0.0) -> dict[str, str]:
    """Environment for Ray workers: backend, quiet logs; threads, GPU memory and caches once known.

    Ray is started before the cluster's resources (and so `auto` shares) are known; these
    settings reach each worker with its first trial, before Keras is imported (Ray reuses a
    worker only for trials asking the same resources). JAX compiles into a cache on the
    node's local disk, shared by its workers: start points, warm starts, repeats and the same
    architecture with other training settings reuse programs instead of compiling again.
    """
    env = {
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": str(WIND_DOWN_S),
    }
    if cpus is not None:
        threads = str(max(1, int(cpus)))
        env["OMP_NUM_THREADS"] = threads
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false" if threads == "1" else ""
        env["JAX_COMPILATION_CACHE_DIR"] = os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax_cache_dir()
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = os.environ.get(
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0"
        )
    if gpus:
        env.update(GpuMemory.for_share(backend, gpus).env())
    return env


def jax_cache_dir() -> str:
    """The node's JAX compile cache for this user: `$TMPDIR/harness-jax-cache-<uid>`, made 0700.

    Programs loaded from it run as the trial, so a cache others can write is code they can
    run as us: one that someone else owns or opened up (planted at the predictable path) is
    not used; this process then compiles into a private folder of its own instead.
    """
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"harness-jax-cache-{uid}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077:
        return str(path)
    return tempfile.mkdtemp(prefix=f"harness-jax-cache-{uid}-")


def _stop_requested() -> bool:
    """Whether Ray asked this trial to stop between reports (private API, read defensively)."""
    try:
        from ray.train._internal.session import get_session

        event = getattr(get_session(), "stop_event", None)
        if event is not None and event.is_set():
            event.clear()
            return True
    except Exception:  # private API: if it moves, trials just stop at the next report
        pass
    return False
