"""Run a search: data once on the driver, Ray Tune + OptunaSearch + ASHA, rows as trials end.

Ray is imported inside functions only, so `import harness` stays fast for queries.
"""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from harness._data import Data, Dataset, for_data, load_dataset
from harness._errors import ArgumentError, InternalError
from harness._results.leaderboard import compact
from harness._results.models import orphaned_models
from harness._results.query import load_leaderboard
from harness._results.tables import ensure_format
from harness._search.cluster import init_ray
from harness._search.lock import study_lock
from harness._search.progress import LiveProgress
from harness._search.resources import Placement, place, trial_resources
from harness._spec.space import START_POINT, TRIAL_NUMBER, base_name, hyperparameters, sampled
from harness._spec.spec import SearchSpec, save_spec
from harness._storage import Location, Results, storage_env, storage_full, write_text
from harness._trial.builder import CnnBuilder, FunctionBuilder, ModelBuilder
from harness._trial.devices import choose_backend, provisional_backend, requested_backend
from harness._trial.runner import TrialContext
from harness._trial.worker import run_trial, worker_env

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness._search.mlflow import MlflowLogger

SPEC_HASH_FILE = "harness_spec_hash.txt"
BUDGET_WIND_DOWN_S = 120.0
"""Past `search.time_budget_s`, how long Ray lets running trials wind down: each stops where it is,
is validated, evaluated on the test set and saved (seconds each), so the search ends with every
scored trial usable. A trial still running after that is cut as before (a pruned row, no model)."""
MAX_DIRNAME = 120  # a folder name must stay under common filesystems' 255 bytes
KEPT_CHECKPOINTS = 2
"""Per trial. Ray forces its experiment snapshot (every trial's state, the searcher, and a copy of
the driver's files: it grows with the trial count) whenever a trial has saved this many
checkpoints since the last one. With 1, that was every epoch of every trial, and harness' driver
hooks slowed 2.5x over 300 trials waiting on it; with 2 they stay flat (benchmarks/README.md,
"Long searches"), at one more epoch's checkpoint on disk per trial."""


def run_search(
    spec: SearchSpec,
    *,
    results_dir: Results = "results",
    data_dir: str | Path | None = None,
    address: str | None = None,
    backend: str | None = None,
    resume: bool = False,
    mlflow: str | None = None,
    console: Console | None = None,
    data: Data | None = None,
    model: object | None = None,
    strict: bool = False,
) -> pd.DataFrame:
    """Run (or resume) the search `spec` describes; `harness.search` is the same one level up.

    Ray is started locally unless it is already initialised or `address` names a cluster.

    Args:
        spec: The validated spec (`load_spec`).
        results_dir: A local or shared folder, or a filesystem URI (`s3://bucket/prefix`):
            rows, models, saved specs and Ray's experiment state all go there.
        data_dir: Where the built-in datasets are (default: `HARNESS_DATA_DIR`, then Keras'
            cache).
        address: A Ray cluster to join (`auto`, `ray://...`).
        backend: `tensorflow`, `jax`, `torch` or `auto` (default: `KERAS_BACKEND`, else auto).
        resume: Continue the study's interrupted run; a different spec is refused.
        mlflow: A tracking URI: each trial is logged as an MLflow run, in an experiment named
            after the study. A resumed run keeps the setting it started with.
        console: Where progress is printed (default: the terminal).
        data: Your own arrays (`Data.from_arrays`); the spec's dataset is then `arrays`
            without a path, and a resume needs the same arrays again.
        model: Your own model: a `build(hp) -> keras.Model` function, or an object with such
            a `build` method (a KerasTuner HyperModel), instead of the spec's `space:`.
        strict: Raise `InternalError` when any trial failed inside harness' own code (the test
            suite's setting); otherwise only when every trial of the run did.

    Returns:
        The study's leaderboard, best first; `frame.attrs["run_id"]` names this run.

    Raises:
        SpecError: The spec does not fit the data, the model or the cluster.
        DataError: The dataset cannot be found or read.
        ArgumentError: An argument is out of range, or the hardware asked for is missing.
        InternalError: Trials failed inside harness itself (see `strict`).
    """
    console = console or Console(stderr=True)
    # Every other epoch of a trial forces Ray's experiment snapshot (KEPT_CHECKPOINTS): expected.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    requested = requested_backend(backend)  # an explicit backend is checked here, before Ray
    _check_sampler(spec)
    spec = for_data(spec, data)
    spec, builder = _builder(spec, model, provisional_backend(requested))
    results = Location.of(results_dir)
    run_dir = _run_dir(results, spec, resume)
    tracker = _mlflow(mlflow, spec.study, results)
    dataset = load_dataset(spec.dataset, data_dir=data_dir, seed=spec.search.seed, data=data)
    env = {
        **worker_env(provisional_backend(requested)),
        **storage_env(results),
        **_import_path(builder),
    }  # Ray logs it: no secrets
    placement = place(spec, init_ray(address, env, console))
    auto_gpus = spec.resources.gpus_per_trial == "auto"
    backend = choose_backend(requested, placement.gpus, auto=auto_gpus)  # GPU trials: probed in a worker
    with study_lock(results, spec.study, console):  # checks passed; nothing written yet
        ensure_format(results)
        save_spec(spec, results)
        write_text(run_dir / SPEC_HASH_FILE, spec.spec_hash())
        ctx = _context(spec, dataset, results, run_dir.name, backend, builder)
        with LiveProgress(spec.study, spec.search.trials, console):
            _fit(_tuner(spec, ctx, dataset, results, run_dir, resume, placement, tracker), results)
        compact(results, spec.study)
        frame = load_leaderboard(results, spec.study)
        _sweep(results, spec.study, frame, console)
        frame.attrs["run_id"] = run_dir.name
        frame.attrs["cpus_per_trial"] = placement.cpus
        _report_end(spec, frame, run_dir, console, strict=strict)
        return frame


def _sweep(results: Location, study: str, frame: pd.DataFrame, console: Console) -> None:
    """Remove model files no row names (every trial of the study has ended and we hold its lock),
    unless some row file could not be read: its model may be one a row still names."""
    for problem in frame.attrs["unreadable"]:
        console.print(Text(f"warning: {problem}", style="yellow"))
    if frame.attrs["unreadable"]:
        console.print(Text("warning: unused model files were kept: some rows could not be read", "yellow"))
        return
    for orphan in orphaned_models(results, study, frame["model_path"].dropna()):
        orphan.delete()


def _fit(tuner: Any, results: Location) -> None:
    """Ray Tune's fit; out of space anywhere (a row, a model, Ray's own files, Optuna's database)
    stops the search with one message, never as failed trials."""
    try:
        tuner.fit()
    except Exception as exc:
        full = storage_full(exc, results.uri)
        if full is None:
            raise
        raise full from None


def _mlflow(uri: str | None, study: str, results: Location) -> MlflowLogger | None:
    """The MLflow store, checked before any work (its package and reachability); a database
    store's models go under the results, never into the folder the driver started in."""
    if uri is None:
        return None
    from harness._search.mlflow import MlflowLogger

    tracker = MlflowLogger(uri, experiment=study, artifacts=results / "mlflow-artifacts")
    tracker.check()
    return tracker


def _check_sampler(spec: SearchSpec) -> None:
    """A sampler whose optional package is missing stops here, before any work."""
    from harness._search.searcher import check_sampler

    check_sampler(spec.search.sampler)


def _run_dir(results: Location, spec: SearchSpec, resume: bool) -> Location:
    """A new run folder, or with `resume` the study's latest one (same spec only)."""
    runs = results / "runs" / spec.study
    if not resume:
        return runs / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S-%f")
    from ray import tune

    previous = [
        p for p in runs.folders()
        if p.name.startswith("run-") and tune.Tuner.can_restore(**_ray_storage(p, "path"))
    ]  # fmt: skip
    if not previous:
        raise ArgumentError(
            "resume", f"needs an interrupted run, and study {spec.study!r} has no interrupted run under "
            f"{runs}; leave it out to start a new run", resume,
        )  # fmt: skip
    saved = previous[-1] / SPEC_HASH_FILE
    if saved.is_file() and saved.read_text().strip() != spec.spec_hash():
        raise ArgumentError(
            "resume", f"needs the same spec, and the spec differs from the one {previous[-1].name} "
            f"started with (hash {saved.read_text().strip()} vs {spec.spec_hash()}); resume with the "
            "same file and options, or start a new run", resume,
        )  # fmt: skip
    return previous[-1]


def _ray_storage(location: Location, key: str = "storage_path") -> dict[str, Any]:
    """How Ray reaches a location: a local path as is; elsewhere, the path on our filesystem
    (so Ray's workers use the same store, endpoint and credentials as harness)."""
    where: dict[str, Any] = {key: location.path}
    if not location.local:
        where["storage_filesystem"] = location.fs
    return where


def _builder(spec: SearchSpec, model: object | None, backend: str) -> tuple[SearchSpec, ModelBuilder]:
    """What the trials build; a model function is named in the spec (its hash, a resume's check)
    and built once with its defaults here, so a build that cannot run stops before any work."""
    if model is None and spec.model is None:
        return spec, CnnBuilder(spec.space)
    os.environ.setdefault("KERAS_BACKEND", backend)  # the driver builds to sample: never on a GPU's memory
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    builder = FunctionBuilder.of(model if model is not None else spec.model)
    if spec.model is not None and builder.label != spec.model:
        raise ArgumentError("model", f"must be the spec's model: {spec.model}", builder.label)
    if spec.space:
        raise ArgumentError("model", "replaces the spec's space: (harness' CNN); remove space: from the spec",
                            builder.label)  # fmt: skip
    builder.check()
    return spec.with_overrides(model=builder.label), builder


def _import_path(builder: ModelBuilder) -> dict[str, str]:
    """Workers import a model function's module by name: its folder joins their PYTHONPATH."""
    folder = builder.import_path() if isinstance(builder, FunctionBuilder) else None
    if folder is None:
        return {}
    return {"PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))}


def _context(
    spec: SearchSpec, data: Dataset, results: Location, run_id: str, backend: str, builder: ModelBuilder
) -> TrialContext:
    es = spec.training.early_stopping
    return TrialContext(
        study=spec.study,
        run_id=run_id,
        dataset=data.name,
        objectives=tuple(spec.objectives),
        spec_hash=spec.spec_hash(),
        models_dir=(results / "models" / spec.study).uri,
        max_epochs=spec.search.max_epochs,
        seed=spec.search.seed,
        early_stopping=es.model_dump() if es else None,
        backend=backend,
        constraints=spec.limits,
        deadline=None if spec.search.time_budget_s is None else time.time() + spec.search.time_budget_s,
        units_per_epoch=spec.search.scheduler.units_per_epoch,
        first_epoch_fractions=spec.search.scheduler.first_epoch_fractions(),
        start_points_compared=spec.search.scheduler.seeded,
        first_report_limit_s=spec.search.first_report_limit_s,
        builder=builder,
    )


def _tuner(
    spec: SearchSpec,
    ctx: TrialContext,
    data: Dataset,
    results: Location,
    run_dir: Location,
    resume: bool,
    placement: Placement,
    tracker: MlflowLogger | None = None,
) -> Any:
    from ray import tune

    from harness._search.recorder import LeaderboardRecorder, SearchProgress
    from harness._search.scheduler import make_scheduler

    resources = functools.partial(trial_resources, placement=placement)
    trainable = tune.with_resources(tune.with_parameters(run_trial, data=data, ctx=ctx), resources)
    if resume:
        # Errored trials (a worker that kept dying, a timeout) already have their failed rows.
        return tune.Tuner.restore(
            trainable=trainable, resume_unfinished=True, resume_errored=False, **_ray_storage(run_dir, "path")
        )
    s = spec.search
    recorder = LeaderboardRecorder(
        ctx, results_dir=results.uri, run_dir=run_dir.uri,
        keep_models=s.keep_models, time_budget_s=s.time_budget_s, max_retries=s.max_retries,
        trial_timeout_s=s.trial_timeout_s, mlflow=tracker,
    )  # fmt: skip
    tune_config = tune.TuneConfig(
        trial_dirname_creator=functools.partial(trial_dirname, varied=_varied(spec)),
        search_alg=_searcher(spec, ctx.builder, results, ctx.dataset, run_dir.name),
        scheduler=make_scheduler(spec),
        num_samples=s.trials,
        max_concurrent_trials=s.max_concurrent,
        time_budget_s=None if s.time_budget_s is None else s.time_budget_s + BUDGET_WIND_DOWN_S,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=run_dir.name,
        **_ray_storage(run_dir.parent),
        callbacks=[recorder, SearchProgress(ctx.objective_metric, ctx.direction)],
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=KEPT_CHECKPOINTS),
        failure_config=tune.FailureConfig(max_failures=s.max_retries),  # from the last epoch's checkpoint
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _varied(spec: SearchSpec) -> frozenset[str] | None:
    """The names a trial's run name shows: the CNN space's sampled ones; a model function's, all."""
    return None if spec.model is not None else sampled(spec.space)


def trial_dirname(trial: Any, varied: frozenset[str] | None) -> str:
    """`<trial id>-<sampled values>`: the run name TensorBoard shows (Ray's default is cut at 130
    characters mid-value and ends in a date); per-block values join with `+`."""
    values: dict[str, list[str]] = {}
    for key, value in hyperparameters(trial.config).items():
        if varied is None or base_name(key) in varied:
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            values.setdefault(base_name(key), []).append(shown)
    text = ",".join(f"{name}={'+'.join(v)}" for name, v in values.items())
    return f"{trial.trial_id}-{text}"[:MAX_DIRNAME] if text else str(trial.trial_id)


def _searcher(spec: SearchSpec, builder: ModelBuilder, results: Location, dataset: str, run_id: str) -> Any:
    import optuna

    from harness._results.leaderboard import study_records
    from harness._search.searcher import (
        HarnessSearch,
        earlier_trials,
        make_sampler,
        optuna_storage,
        start_points,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return HarnessSearch(
        storage=optuna_storage(results)[0],
        space=functools.partial(_define_by_run, builder=builder),
        sampler=make_sampler(spec.search.sampler, spec.search.seed),
        objectives=tuple(spec.objectives),
        constraints=spec.limits,
        study_name=f"{spec.study}-{run_id}",
        start_points=start_points(spec, builder),
        earlier_trials=earlier_trials(spec, builder, results, dataset),
        trials=spec.search.trials,
        time_budget_s=spec.search.time_budget_s,
        recorded=functools.partial(study_records, results.uri, spec.study, run_id=run_id),
    )


def _define_by_run(trial: optuna.Trial, builder: ModelBuilder) -> dict[str, Any]:
    """The sampled values, the trial number (repeats of a fixed spec differ in seed), start points."""
    start_point = bool(trial.user_attrs.get(START_POINT))  # enqueued from `search.start_from`
    return {**builder.sample(trial), TRIAL_NUMBER: trial.number, START_POINT: start_point}


def _report_end(
    spec: SearchSpec, frame: pd.DataFrame, run_dir: Location, console: Console, *, strict: bool = False
) -> None:
    """Say what is unfinished, and surface harness' own failures: a run whose every trial failed
    inside harness says nothing about its space, so it raises InternalError (the CLI's exit 1);
    with `strict` (the tests) any such failure raises, with every traceback."""
    from harness._search.recorder import ERRORS_DIR

    rows = frame[frame["run_id"] == run_dir.name] if not frame.empty else frame
    if len(rows) < spec.search.trials and spec.search.time_budget_s is None:
        console.print(
            f"[yellow]Stopped after {len(rows)} of {spec.search.trials} trials; continue with "
            "`harness search SPACE.yaml --resume`.[/]"
        )
    errors = run_dir / ERRORS_DIR
    internal = errors.files(".txt")
    if internal and strict:
        raise InternalError("\n\n".join(f"{p.name.removesuffix('.txt')}:\n{p.read_text()}" for p in internal))
    if not rows.empty and (rows["error_kind"] == "internal").all():
        raise InternalError(_all_internal(rows, errors))
    if internal:
        console.print(
            Text.assemble(("warning:", "bold yellow"), f" {len(internal)} trial(s) failed inside harness "
            f"itself (error_kind internal), not because of their configuration; tracebacks: {errors}. "
            "Please report them.")
        )  # fmt: skip


def _all_internal(rows: pd.DataFrame, errors: Location) -> str:
    """The message of a run whose every trial failed inside harness: how many, and the first
    one's exception (its traceback's last line, else its row's error)."""
    first = rows.sort_values("started_at").iloc[0]
    traceback = errors / f"{first['trial_id']}.txt"
    text = traceback.read_text() if traceback.is_file() else str(first["error"])
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "no error recorded")
    return (
        f"all {len(rows)} trial(s) of run {first['run_id']} failed inside harness itself (error_kind "
        f"internal), not because of their configuration; the first ({first['trial_id']}): {last.strip()}. "
        f"Their rows are kept in the leaderboard; tracebacks: {errors}. Please report them."
    )
