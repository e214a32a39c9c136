"""Trial schedulers: ASHA, synchronous Hyperband or none, with start points kept out of their reach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, TrialScheduler

from harness._results.record import FIDELITY
from harness._spec.space import START_POINT
from harness._spec.spec import SearchSpec

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial


def make_scheduler(spec: SearchSpec) -> TrialScheduler:
    """The spec's scheduler. Hyperband counts epochs (`training_iteration`: its paused trials resume
    from an epoch's checkpoint); ASHA counts `FIDELITY` units, so its first rungs can sit inside
    the first epoch, where trials are compared seconds after they start instead of minutes.
    """
    sched = spec.search.scheduler
    metric, mode = spec.objectives[0].metric, str(spec.objectives[0].direction)  # one: checked in the spec
    max_t = spec.search.max_epochs
    units = sched.units_per_epoch
    inner: TrialScheduler
    if sched.name == "none":
        inner = FIFOScheduler()  # type: ignore[no-untyped-call]
    elif sched.name == "hyperband":
        inner = HyperBandScheduler(
            time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
            reduction_factor=sched.reduction_factor,
        )  # fmt: skip
    else:
        inner = ASHAScheduler(
            time_attr=FIDELITY, metric=metric, mode=mode, max_t=max_t * units,
            grace_period=1 if sched.sub_epoch_rungs else min(sched.grace_period, max_t),
            reduction_factor=sched.reduction_factor,
        )  # fmt: skip
    return StartPointsFirst(inner, compared=sched.seeded) if spec.first_points else inner


def is_start_point(trial: Trial) -> bool:
    return bool(trial.config.get(START_POINT))


class StartPointsFirst(TrialScheduler):
    """Runs start points first and to completion; by default the wrapped scheduler never sees them.

    Hiding them (rather than vetoing its decisions) keeps a synchronous scheduler's
    brackets whole: Hyperband waits for every member of a rung. With `compared` (ASHA only)
    the wrapped scheduler records their reports at its rungs, and its decisions on them are
    ignored: the first sampled trials then meet the start points' scores at every rung.
    """

    def __init__(self, inner: TrialScheduler, *, compared: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.inner, self.compared = inner, compared

    def _hidden(self, trial: Trial) -> bool:
        return is_start_point(trial) and not self.compared

    @property
    def metric(self) -> Any:
        return self.inner.metric

    @property
    def supports_buffered_results(self) -> bool:
        return bool(self.inner.supports_buffered_results)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return bool(self.inner.set_search_properties(metric, mode, **spec))

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        if not self._hidden(trial):
            self.inner.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if not self._hidden(trial):
            self.inner.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]) -> str:
        if self._hidden(trial):
            return TrialScheduler.CONTINUE
        decision = str(self.inner.on_trial_result(tune_controller, trial, result))  # recorded at its rungs
        return TrialScheduler.CONTINUE if is_start_point(trial) else decision

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        if not self._hidden(trial):
            self.inner.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        if not self._hidden(trial):
            self.inner.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        trials: list[Trial] = tune_controller.get_trials()  # type: ignore[no-untyped-call]
        for trial in trials:
            if is_start_point(trial) and trial.status in ("PENDING", "PAUSED"):
                return trial
        return self.inner.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return f"Start points first, then: {self.inner.debug_string()}"
