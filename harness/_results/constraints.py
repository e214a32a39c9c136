"""`constraints:`: which limits a trial breaks, as Optuna's constraint values (> 0: infeasible)."""

from __future__ import annotations

from collections.abc import Mapping

from harness._results.record import TrialRecord
from harness._spec.spec import Bound


def violations(record: TrialRecord, constraints: Mapping[str, Bound]) -> dict[str, float]:
    """Each known limit's relative excess, `<metric>_max` or `<metric>_min` (<= 0: within it).

    Relative, so a 10% excess weighs the same on parameters and on seconds when Optuna
    sums them. A value not known yet (a time before training) is left out.
    """
    out: dict[str, float] = {}
    for metric, bound in constraints.items():
        value = getattr(record, metric)
        if value is None:
            continue
        if bound.max is not None:
            out[f"{metric}_max"] = (float(value) - bound.max) / max(abs(bound.max), 1e-12)
        if bound.min is not None:
            out[f"{metric}_min"] = (bound.min - float(value)) / max(abs(bound.min), 1e-12)
    return out


def feasible(record: TrialRecord, constraints: Mapping[str, Bound]) -> bool | None:
    """The record's `feasible` column: null without constraints, else whether every known limit holds."""
    if not constraints:
        return None
    return all(excess <= 0 for excess in violations(record, constraints).values())
