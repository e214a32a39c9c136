"""Known configurations placed inside a search space: start points and warm-start rows.

A point is written like a fixed space (`{"conv_blocks": 2, "filters": [32, 64]}`).
`point_params` checks that it lies inside the space and returns the values that the
define-by-run sampling (`harness._spec.space.suggest`) would have drawn to build it: what
Optuna's `study.enqueue_trial` and `optuna.trial.create_trial` take. A point outside the
space is a `ValueError` naming the parameter, caught before anything runs (Optuna would
otherwise ignore or reject it mid-search).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness._spec.space import (
    GROUP_SIZES,
    PARAMETERS,
    CategoricalDist,
    FloatDist,
    IntDist,
    Value,
    base_name,
    coerce_floats,
)

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Dist = IntDist | FloatDist | CategoricalDist


def point_params(space: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Value]:
    """The sampled values that produce `point` in `space` (fixed entries need none)."""
    point = {k: coerce_floats(v) if k in PARAMETERS and PARAMETERS[k].kind == "float" else v
             for k, v in point.items()}  # fmt: skip
    for name, value in point.items():
        if name not in PARAMETERS:
            raise ValueError(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")
        if name not in space and name not in GROUP_SIZES:
            default = PARAMETERS[name].default
            if any(v != default for v in (value if isinstance(value, list) else [value])):
                raise ValueError(
                    f"{name}: the space has no {name} (it is fixed at its default {default!r}); "
                    f"got {value!r}. Add {name} to the space or leave it out of the point."
                )
    params: dict[str, Value] = {}
    counts: dict[str, int] = {}
    for group in GROUP_SIZES:
        entry = space.get(group, PARAMETERS[group].default)
        counts[group] = int(_place(group, group, entry, point.get(group, _implied(group, entry)), params))
    for name, entry in space.items():
        if name in GROUP_SIZES:
            continue
        value = point.get(name, _implied(name, entry))
        owner = PARAMETERS[name].group
        per_block = isinstance(entry, list) or (isinstance(entry, Dist) and entry.per_block)
        if owner is None or not per_block:
            if isinstance(value, list):
                raise ValueError(f"{name}: the space samples one value for all blocks; got a list {value!r}")
            _place(name, name, entry, value, params)
            continue
        values = value if isinstance(value, list) else [value] * counts[owner]
        if len(values) < counts[owner]:
            raise ValueError(f"{name}: {len(values)} per-block values for {owner}={counts[owner]}")
        for i in range(1, counts[owner] + 1):
            block_entry = entry[i - 1] if isinstance(entry, list) else entry
            _place(name, f"{name}_{i}", block_entry, values[i - 1], params)
    return params


def probe_point(space: Mapping[str, Any]) -> dict[str, Value]:
    """The space's cheapest model, trained the default way: a cold search's first trial.

    While the sampler knows nothing, the first evidence should come fast: the cheap end of
    every size parameter (fewest blocks, filters and units, smallest kernels, largest batch),
    and the vocabulary's default (or the range's middle) for everything else, so that it
    trains sensibly (Adam at 1e-3 where the space allows). It gives the scheduler a first
    reference and the search a usable model within its first minutes.
    """
    return {name: _probe_value(name, entry) for name, entry in space.items() if isinstance(entry, Dist)}


def _probe_value(name: str, entry: Dist) -> Value:
    param = PARAMETERS[name]
    if isinstance(entry, CategoricalDist):
        numbers = [c for c in entry.choices if isinstance(c, int | float) and not isinstance(c, bool)]
        if param.cheap and len(numbers) == len(entry.choices):
            return min(numbers) if param.cheap == "low" else max(numbers)
        return param.default if param.default in entry.choices else entry.choices[0]
    if param.cheap:
        return entry.low if param.cheap == "low" else _snapped(entry, entry.high)
    if param.default is not None and _inside(entry, param.default):
        return param.default
    middle = math.sqrt(entry.low * entry.high) if entry.log else (entry.low + entry.high) / 2
    return _snapped(entry, middle)


def _snapped(entry: IntDist | FloatDist, value: float) -> Value:
    """`value` moved onto the distribution's grid (its step from `low`; integers for int ones)."""
    step = entry.step or (1 if isinstance(entry, IntDist) else None)
    if step:
        value = entry.low + math.floor((value - entry.low) / step + 1e-9) * step
    return int(round(value)) if isinstance(entry, IntDist) else round(float(value), 12)


def row_point(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """A leaderboard row's `hp_*` values as a point: `filters_1`, `filters_2` -> `filters: [..]`."""
    point: dict[str, Any] = {}
    blocks: dict[str, dict[int, Any]] = {}
    for key, value in hyperparameters.items():
        if value is None:
            continue
        name = base_name(key)
        if name == key:
            point[name] = value
        else:
            blocks.setdefault(name, {})[int(key.rpartition("_")[2])] = value
    for name, by_index in blocks.items():
        point[name] = [by_index[i] for i in sorted(by_index)]
    return point


def distributions(space: Mapping[str, Any], params: Mapping[str, Value]) -> dict[str, BaseDistribution]:
    """Optuna's distribution for each sampled value (for `optuna.trial.create_trial`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for key in params:
        entry = space[base_name(key)]
        if isinstance(entry, IntDist):
            out[key] = IntDistribution(entry.low, entry.high, log=entry.log, step=entry.step)
        elif isinstance(entry, FloatDist):
            out[key] = FloatDistribution(entry.low, entry.high, log=entry.log, step=entry.step)
        else:
            out[key] = CategoricalDistribution(entry.choices)
    return out


def _implied(name: str, entry: Any) -> Any:
    """What a point that leaves `name` out means: the space's fixed value, else the default."""
    return PARAMETERS[name].default if isinstance(entry, Dist) else entry


def _place(name: str, key: str, entry: Any, value: Any, params: dict[str, Value]) -> Any:
    """Check one value against its space entry; sampled ones are recorded under `key`."""
    if not isinstance(entry, Dist):
        if value != entry:
            raise ValueError(f"{name}: {value!r} differs from the space's fixed value {entry!r}")
        return value
    if value is None:
        raise ValueError(f"{name}: the point must give a value (the space samples it, with no default)")
    if not _inside(entry, value):
        raise ValueError(f"{name}: {value!r} is outside the space ({_describe(entry)})")
    params[key] = value
    return value


def _inside(entry: Dist, value: Any) -> bool:
    if isinstance(entry, CategoricalDist):
        return any(c == value and isinstance(c, bool) == isinstance(value, bool) for c in entry.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(entry, IntDist) and not isinstance(value, int):
        return False
    tolerance = 1e-9 * max(1.0, abs(entry.high))
    if not entry.low - tolerance <= value <= entry.high + tolerance:
        return False
    if entry.step:
        steps = (value - entry.low) / entry.step
        return math.isclose(steps, round(steps), abs_tol=1e-6)
    return True


def _describe(entry: Dist) -> str:
    if isinstance(entry, CategoricalDist):
        return f"choices {entry.choices}"
    step = f", step {entry.step}" if entry.step and entry.step != 1 else ""
    return f"{entry.type} from {entry.low} to {entry.high}{step}"
