"""Run a search: data once on the driver, Ray Tune + OptunaSearch + ASHA, rows as trials end."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from rich.console import Console

from harness.data import Dataset, load_dataset
from harness.errors import HarnessError
from harness.leaderboard import (
    compact,
    keep_top_models,
    make_row,
    write_row,
    written_trial_ids,
)
from harness.progress import LiveProgress
from harness.results import load_leaderboard
from harness.space import suggest
from harness.spec import save_spec
from harness.trial import TrialContext, run_trial, worker_env

if TYPE_CHECKING:
    import pandas as pd
    from ray.tune.experiment import Trial

    from harness.spec import Objective, SearchSpec

BACKENDS = ("tensorflow", "jax", "torch")
SPEC_HASH_FILE = "harness_spec_hash.txt"
ENV_KEYS = (
    "backend", "backend_version", "keras_version", "harness_version", "device", "node", "gpu_ids",
)  # fmt: skip


def run_search(
    spec: SearchSpec,
    *,
    results_dir: str | Path = "results",
    data_dir: str | Path | None = None,
    address: str | None = None,
    backend: str | None = None,
    resume: bool = False,
    console: Console | None = None,
) -> pd.DataFrame:
    """Run (or resume) the search `spec` describes; return its leaderboard, best first.

    Ray is started locally unless already initialised or `address` names a cluster.
    """
    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    _check_backend(backend)
    results = Path(results_dir).resolve()
    run_dir = _run_dir(results, spec, resume)
    data = load_dataset(spec.dataset, data_dir=data_dir, seed=spec.search.seed)
    _init_ray(address, worker_env(backend, spec.resources.cpus_per_trial))
    _check_resources(spec)
    save_spec(spec, results)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SPEC_HASH_FILE).write_text(spec.spec_hash())
    trainable = _trainable(spec, data, results, backend)
    recorder = LeaderboardRecorder(spec, str(results), run_dir.name, data.name)
    progress = SearchProgress(spec.study, spec.search.trials, spec.objective)
    tuner = _tuner(spec, trainable, run_dir, [recorder, progress], resume)
    with LiveProgress(spec.study, spec.search.trials, console):
        tuner.fit()
    compact(results, spec.study)
    frame = load_leaderboard(results, spec.study)
    frame.attrs["run_id"] = run_dir.name  # rows of this run: frame[frame.run_id == ...]
    recorded = int((frame["run_id"] == run_dir.name).sum()) if not frame.empty else 0
    if recorded < spec.search.trials and spec.search.time_budget_s is None:
        (console or Console(stderr=True)).print(
            f"[yellow]Stopped after {recorded} of {spec.search.trials} trials; continue with "
            "`harness search SPACE.yaml --resume`.[/]"
        )
    return frame


def _run_dir(results: Path, spec: SearchSpec, resume: bool) -> Path:
    """A new run folder, or with `resume` the study's latest one (same spec only)."""
    runs = results / "runs" / spec.study
    if not resume:
        return runs / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S-%f")
    from ray import tune

    previous = sorted(p for p in runs.glob("run-*") if tune.Tuner.can_restore(str(p)))
    if not previous:
        raise HarnessError(
            f"--resume: study {spec.study!r} has no interrupted run under {runs}; "
            "run without --resume to start one."
        )
    saved = previous[-1] / SPEC_HASH_FILE
    if saved.is_file() and saved.read_text().strip() != spec.spec_hash():
        raise HarnessError(
            f"--resume: the spec differs from the one {previous[-1].name} started with "
            f"(hash {saved.read_text().strip()} vs {spec.spec_hash()}); resume with the same file "
            "and options, or start a new run without --resume."
        )
    return previous[-1]


def _check_backend(backend: str) -> None:
    """A missing backend package stops here, not as N failed trials."""
    if backend not in BACKENDS:
        raise HarnessError(f"--backend must be one of {list(BACKENDS)}; got {backend!r}.")
    if importlib.util.find_spec(backend) is None:
        extra = {"tensorflow": "", "jax": "[jax]", "torch": "[torch]"}[backend]
        raise HarnessError(
            f"--backend {backend}: the {backend} package is not installed; "
            f"`pip install -e .{extra}` (or pip install {backend})."
        )


def _check_resources(spec: SearchSpec) -> None:
    """A trial that can never be placed would leave the search pending forever."""
    import ray

    available = ray.cluster_resources()
    for key, need, flag in (
        ("CPU", spec.resources.cpus_per_trial, "--cpus-per-trial"),
        ("GPU", spec.resources.gpus_per_trial, "--gpus-per-trial"),
    ):
        if need > 0 and need > available.get(key, 0):
            raise HarnessError(
                f"resources: {flag} {need:g} but the Ray cluster has {available.get(key, 0):g} {key}s; "
                f"lower {flag} (resources.{flag[2:].replace('-', '_')}) or join a larger cluster."
            )


def _init_ray(address: str | None, env: dict[str, str]) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        ray.init(
            address=address,
            runtime_env={"env_vars": env},
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise HarnessError(
            f"--address {address}: could not join the Ray cluster ({type(exc).__name__}: {exc}). "
            "Check the address (`ray status` on the head node) or leave --address out to run locally."
        ) from None


def _trainable(spec: SearchSpec, data: Dataset, results: Path, backend: str) -> Any:
    from ray import tune

    es = spec.training.early_stopping
    ctx = TrialContext(
        models_dir=str(results / "models" / spec.study),
        max_epochs=spec.search.max_epochs,
        seed=spec.search.seed,
        early_stopping=es.model_dump() if es else None,
        cpus=spec.resources.cpus_per_trial,
        env=worker_env(backend, spec.resources.cpus_per_trial),
    )
    resources = {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, data=data, ctx=ctx), resources)


def _tuner(spec: SearchSpec, trainable: Any, run_dir: Path, callbacks: list, resume: bool) -> Any:
    from ray import tune

    if resume:
        return tune.Tuner.restore(str(run_dir), trainable, resume_unfinished=True, resume_errored=True)
    s = spec.search
    tune_config = tune.TuneConfig(
        search_alg=_searcher(spec, run_dir.name),
        scheduler=_scheduler(spec),
        num_samples=s.trials,
        max_concurrent_trials=s.max_concurrent,
        time_budget_s=s.time_budget_s,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=run_dir.name,
        storage_path=str(run_dir.parent),
        callbacks=callbacks,
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _searcher(spec: SearchSpec, run_id: str) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    seed = spec.search.seed
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if spec.search.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(
        space=functools.partial(_define_by_run, space=spec.space),
        sampler=sampler,
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        study_name=f"{spec.study}-{run_id}",
    )


def _define_by_run(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """The sampled space plus the trial number, so repeats of a fixed spec differ in seed."""
    return {**suggest(trial, space), "trial_number": trial.number}


def _scheduler(spec: SearchSpec) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    sched = spec.search.scheduler
    if sched.name == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        time_attr="training_iteration",
        max_t=spec.search.max_epochs + 1,  # +1: the final report after the last epoch
        grace_period=min(sched.grace_period, spec.search.max_epochs),
        reduction_factor=sched.reduction_factor,
    )


class SearchProgress(Callback):
    """A Ray Tune callback counting running/done/pruned/failed trials and the best so far.

    It holds only counts, so Ray can pickle it with the experiment and a resumed run
    carries on counting; the drawing is `LiveProgress.current`'s.
    """

    def __init__(self, study: str, total: int, objective: Objective):
        self.study, self.total = study, total
        self.metric, self.mode = objective.metric, objective.mode
        self.counts = {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
        self.best: float | None = None

    def _refresh(self) -> None:
        live = LiveProgress.current
        if live is None:
            return
        done = self.counts["completed"] + self.counts["pruned"] + self.counts["failed"]
        best = "-" if self.best is None else f"{self.best:.4f}"
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        live.show(done, f"{counts} | best {self.metric} {best}")

    def setup(self, **info: Any) -> None:
        self.counts["running"] = 0  # a resumed run restarts its unfinished trials

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.counts["running"] += 1
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        status = last.get("status", "pruned") if last.get("final") else "pruned"
        self._finish(status, last.get(self.metric))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish("failed", None)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._consider(result.get(self.metric))
        self._refresh()

    def _finish(self, status: str, value: float | None) -> None:
        self.counts["running"] = max(0, self.counts["running"] - 1)
        self.counts[status] = self.counts.get(status, 0) + 1
        self._consider(value)
        self._refresh()

    def _consider(self, value: float | None) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = float(value)


class LeaderboardRecorder(Callback):
    """Driver-side Tune callback: one atomic leaderboard row per finished trial.

    Picklable (Ray stores it with the experiment), so a resumed run records too.
    """

    def __init__(self, spec: SearchSpec, results_dir: str, run_id: str, dataset: str) -> None:
        self.results_dir = results_dir
        self.keep_models = spec.search.keep_models
        self.time_budget_s = spec.search.time_budget_s
        self.common = {
            "study": spec.study,
            "dataset": dataset,
            "objective_metric": spec.objective.metric,
            "objective_mode": spec.objective.mode,
            "spec_hash": spec.spec_hash(),
            "run_id": run_id,
        }
        self.best: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.env: dict[str, dict[str, Any]] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self.started.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info: Any) -> None:  # noqa: E501
        """Keep the best epoch seen: all a pruned trial leaves behind."""
        if result.get("final"):
            return
        if "backend" in result:
            self.env[trial.trial_id] = {k: result[k] for k in ENV_KEYS if k in result}
        metric, mode = self.common["objective_metric"], self.common["objective_mode"]
        value, best = result.get(metric), self.best.get(trial.trial_id)
        better = best is None or (value > best[metric] if mode == "max" else value < best[metric])
        if value is not None and better:
            self.best[trial.trial_id] = dict(result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._record(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._record(trial, error=_trial_error(trial))

    def setup(self, **info: Any) -> None:
        self.setup_time = time.time()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Trials cut by the time budget end without a completion event: record them too.

        Trials still running after Ctrl-C are left alone: `--resume` restarts them.
        """
        elapsed = time.time() - getattr(self, "setup_time", time.time())
        if self.time_budget_s is None or elapsed < self.time_budget_s - 1.0:
            return
        done = written_trial_ids(self.results_dir, self.common["study"])
        for trial in trials:
            if trial.trial_id not in done and (trial.last_result or trial.status == "ERROR"):
                self._record(trial, error=_trial_error(trial) if trial.status == "ERROR" else None)

    def _record(self, trial: Trial, error: str | None = None) -> None:
        last = trial.last_result or {}
        values: dict[str, Any] = {"trial_id": trial.trial_id}
        values.update(self.env.get(trial.trial_id, {}))
        if last.get("final"):
            values.update(last)
        else:
            best = self.best.get(trial.trial_id, last)
            values.update({k: best.get(k) for k in ("val_accuracy", "val_loss", "params")})
            epochs = last.get("epoch")
            values.update(status="pruned", epochs_run=epochs, best_epoch=best.get("epoch"))
            values["total_time_s"] = last.get("time_total_s")
        if error is not None:
            values.update(status="failed", error=error)
        started = self.started.get(trial.trial_id)
        if started and not values.get("started_at"):
            values["started_at"] = datetime.fromtimestamp(started, UTC)
            values["finished_at"] = datetime.now(UTC)
        values.update(self.common)
        write_row(self.results_dir, make_row(values, trial.config))
        if self.keep_models is not None and values.get("model_path"):
            keep_top_models(self.results_dir, self.common["study"], self.keep_models)


def _trial_error(trial: Trial) -> str:
    """The exception a crashed trial (not a caught failure) left behind, in one line."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        return (lines[-1] if lines else "unknown error")[:2000]
    return "trial crashed (no error file)"
