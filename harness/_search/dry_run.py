"""A search's checks without training: spec, data, backend and the first model (`--dry-run`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness._data import Data, describe, for_data
from harness._results.constraints import feasible
from harness._results.record import TrialRecord, TrialStatus
from harness._spec.space import Value, hyperparameters
from harness._spec.spec import SearchSpec
from harness._trial.builder import make_builder
from harness._trial.devices import provisional_backend, requested_backend


@dataclass(frozen=True, kw_only=True)
class DryRun:
    """What a search would start from; nothing was trained or written."""

    spec: SearchSpec
    data_location: str
    input_shape: tuple[int, ...]
    class_names: list[str]
    first_config: dict[str, Value]
    params: int
    feasible: bool | None  # under `constraints.params`; null without constraints
    summary: list[str]  # the first model's Keras summary, line by line


def dry_run(
    spec: SearchSpec,
    *,
    data_dir: str | Path | None = None,
    backend: str | None = None,
    data: Data | None = None,
    model: object | None = None,
) -> DryRun:
    """Check a spec without training: validate it, find the data, build the first model.

    The first model is the first start point's, the probe's, or (for a model function) the
    one its hyperparameters' defaults build.

    Args:
        spec: The validated spec.
        data_dir: Where the built-in datasets are.
        backend: The backend to build with.
        data: Your own arrays, as `run_search` takes them.
        model: Your own model function, as `run_search` takes it.

    Returns:
        What was found: the dataset's shapes and classes, and the model's summary.

    Raises:
        DataError: The dataset cannot be found or read.
        SpecError: The model cannot be built.
    """
    backend = provisional_backend(requested_backend(backend))  # GPUs are probed by the search itself
    spec = for_data(spec, data)
    where, shape, classes = describe(spec.dataset, data_dir=data_dir, data=data)
    os.environ.setdefault("KERAS_BACKEND", backend)
    builder = make_builder(spec.space, model if model is not None else spec.model)
    start = builder.start_params(spec.first_points[0]) if spec.first_points else None
    config = builder.first_values(start)  # the first start point is what trains first
    built = builder.build(
        config, tuple(shape), len(classes), epochs=spec.search.max_epochs, steps_per_epoch=1
    )
    params = int(built.count_params())
    first = TrialRecord(study=spec.study, trial_id="dry-run", status=TrialStatus.COMPLETED, params=params)
    lines: list[str] = []
    built.summary(print_fn=lambda line, **_: lines.append(line))
    return DryRun(
        spec=spec,
        data_location=where,
        input_shape=tuple(shape),
        class_names=list(classes),
        first_config=hyperparameters(config),
        params=params,
        feasible=feasible(first, spec.limits),
        summary=lines,
    )
