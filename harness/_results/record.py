"""The typed records that cross from a Ray worker to the driver and into Parquet.

In the spirit of Optuna's `FrozenTrial` / `TrialState`: a trial's result is a frozen
`TrialRecord`, never a free-form dict. The leaderboard's Arrow schema is generated from
its fields (`harness._results.leaderboard.SCHEMA`), so a new column is one line here; building a
record with an unknown field is a `TypeError`, and an unknown hyperparameter a
`ValueError`, instead of a silently null column.

Workers send `SliceReport`s (inside the first epoch, for the scheduler), `EpochReport`s (one
per epoch) and one `FinalReport` through `tune.report` under `REPORT_KEY`; the driver's
recorder turns them into rows.
"""

from __future__ import annotations

import enum
import json
import math
import statistics
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from harness._spec.space import Value, column_names

REPORT_KEY = "harness_report"
"""The `tune.report` key whose value is a `SliceReport`, an `EpochReport` or a `FinalReport`."""
FIDELITY = "fidelity"
"""The `tune.report` key counting training so far in the scheduler's units (`units_per_epoch`)."""


class TrialStatus(enum.StrEnum):
    """How a trial ended (the leaderboard's `status`)."""

    COMPLETED = "completed"
    PRUNED = "pruned"  # stopped early: by the scheduler, the time budget or an interruption
    FAILED = "failed"


class StopReason(enum.StrEnum):
    """Why a trial ended before its own end (`stop_reason`; null when it ran to its end)."""

    SCHEDULER = "scheduler"
    TIME_BUDGET = "time_budget"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"
    INFEASIBLE = "infeasible"  # over a limit known before training (`constraints.params`): not trained
    TOO_SLOW = "too_slow"  # its first report would have come after `search.first_report_s`


class ErrorKind(enum.StrEnum):
    """Whose fault a failure is (`error_kind`; null unless failed)."""

    USER = "user"  # the configuration or its training: a bad architecture, NaN loss, a Keras error
    INTERNAL = "internal"  # a defect of harness itself


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """What produced a result: backend and versions, device, Ray node and GPU ids."""

    backend: str
    backend_version: str
    keras_version: str
    harness_version: str
    device: str
    node: str
    gpu_ids: str


class _Scored:
    """A report's metric by name, None where unknown or NaN (a diverged or failed value)."""

    def metric(self, name: str) -> float | None:
        value = getattr(self, name, None)
        return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True, kw_only=True)
class EpochRecord(_Scored):
    """One epoch of one trial (a row of the per-epoch curves)."""

    study: str
    trial_id: str
    epoch: int  # 1-based
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    epoch_s: float | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One trial: one leaderboard row (`hyperparameters` become the `hp_*` columns)."""

    study: str
    trial_id: str
    status: TrialStatus
    run_id: str | None = None
    dataset: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_time_s: float | None = None
    total_time_s: float | None = None
    first_epoch_s: float | None = None  # includes compilation
    steady_epoch_s: float | None = None  # median epoch time after the first
    build_s: float | None = None
    evaluate_s: float | None = None
    save_s: float | None = None
    params: int | None = None
    cpus: float | None = None  # CPUs the trial was given (resolved from `cpus_per_trial: auto`)
    gpus: float | None = None  # its share of GPUs (resolved from `gpus_per_trial: auto`)
    feasible: bool | None = None  # null: the study has no constraints
    stop_reason: StopReason | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    backend: str | None = None
    device: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    model_path: str | None = None
    objective_metric: str | None = None
    objective_mode: str | None = None
    objectives: str | None = None  # several objectives: "val_accuracy:max,params:min" (ranked by Pareto)
    spec_hash: str | None = None
    harness_version: str | None = None
    keras_version: str | None = None
    backend_version: str | None = None
    node: str | None = None
    gpu_ids: str | None = None
    written_at: datetime | None = None
    builder: str | None = None  # a user's model function ("module:function"); null: harness' CNN
    hyperparameters: Mapping[str, Value] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TrialStatus(self.status))
        unknown = sorted(set(self.hyperparameters) - _HP_KEYS)
        if unknown and self.builder is None:
            raise ValueError(f"hyperparameters has unknown keys {unknown}; allowed: the `space:` vocabulary")

    def with_provenance(self, provenance: Provenance | None) -> TrialRecord:
        if provenance is None:
            return self
        return replace(self, **{f.name: getattr(provenance, f.name) for f in fields(Provenance)})

    def to_row(self) -> dict[str, Any]:
        """The flat Parquet row: every column, `hp_<key>` for each hyperparameter."""
        row = {name: getattr(self, name) for name in ROW_FIELDS}
        for name in ("status", "stop_reason", "error_kind"):
            if row[name] is not None:
                row[name] = str(row[name])
        if self.builder is None:
            row.update({f"hp_{key}": value for key, value in self.hyperparameters.items()})
        else:  # a user's names: a JSON column, typed `hp_*` columns when read (`load_leaderboard`)
            row[USER_HYPERPARAMETERS] = json.dumps(dict(self.hyperparameters), sort_keys=True)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrialRecord:
        """Inverse of `to_row`, from a row as pyarrow reads it back (`Table.to_pylist`)."""
        values = {name: _plain(row.get(name)) for name in ROW_FIELDS}
        if values["builder"] is not None:
            return cls(**values, hyperparameters=json.loads(row.get(USER_HYPERPARAMETERS) or "{}"))
        hps = {key: _plain(row[f"hp_{key}"]) for key in _HP_KEYS if _plain(row.get(f"hp_{key}")) is not None}
        for name, kind in (("stop_reason", StopReason), ("error_kind", ErrorKind)):
            if values[name] is not None:
                values[name] = kind(values[name])
        return cls(**values, hyperparameters=hps)


@dataclass(frozen=True, kw_only=True)
class EpochReport:
    """What a worker sends after each epoch."""

    epoch: EpochRecord
    params: int
    started_at: datetime
    provenance: Provenance
    earlier: tuple[EpochRecord, ...] | None = None  # with an attempt's first report: the epochs before it


@dataclass(frozen=True, kw_only=True)
class SliceReport(_Scored):
    """What a worker sends at a rung inside its first epoch: validation after part of the data."""

    fraction: float  # of the first epoch's training batches
    val_loss: float | None
    val_accuracy: float | None
    params: int
    started_at: datetime
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class FinalReport:
    """What a worker sends once: with its last epoch when completed, alone when failed."""

    record: TrialRecord
    traceback: str | None = None  # set for internal errors: saved beside the run
    epoch: EpochRecord | None = None  # the last epoch, when the final record travels with it
    epochs: tuple[EpochRecord, ...] = ()  # every epoch the trial ran (empty: the driver's own view holds)
    storage_full: str | None = None  # where no space was left to write: the search stops, no row


_HP_KEYS = frozenset(column_names())
USER_HYPERPARAMETERS = "user_hyperparameters"
"""The column of a user model's hyperparameters, as a JSON object (names are the user's)."""
ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TrialRecord) if f.name != "hyperparameters")


def field_types(record_type: type) -> dict[str, type]:
    """Each field's value type with `None` removed (`float | None` -> float)."""
    hints = typing.get_type_hints(record_type)
    out: dict[str, type] = {}
    for f in fields(record_type):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[f.name] = hint
    return out


def steady_epoch_s(epoch_times: Sequence[float]) -> float | None:
    """Median epoch time after the first (which pays compilation)."""
    return statistics.median(epoch_times[1:]) if len(epoch_times) > 1 else None


def now() -> datetime:
    return datetime.now(UTC)


def _plain(value: Any) -> Any:
    """NaN (as older rows stored for failed trials) -> None."""
    return None if isinstance(value, float) and math.isnan(value) else value
