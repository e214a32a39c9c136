"""What "better" means for trials: the one ranking the leaderboard, the model keeper and a
study's best trial all use.

Feasible before infeasible; then completed, pruned, failed (a pruned trial's best partial
epoch is not comparable with a finished trial's selected epoch); then a multi-objective
study's Pareto rank; then the objective, best first. Unscored trials come last in their tier.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness._spec.spec import Direction

RankKey = tuple[int, int, float, float]
"""Smaller is better, element by element."""

_TIERS = {"completed": 0, "pruned": 1}


def rank_key(status: Any, feasible: Any, value: Any, mode: Any, pareto_rank: Any = 0.0) -> RankKey:
    """The sort key of one trial, from a record's fields or a leaderboard row's values: `value`
    is its objective metric, `mode` that metric's direction (rows without one count as max),
    `pareto_rank` its multi-objective study's rank (0 elsewhere; unranked: last)."""
    infeasible = int(_known(feasible) and not bool(feasible))
    tier = _TIERS.get(str(status), 2)
    return infeasible, tier, _number(pareto_rank, math.inf), badness(value, mode)


def badness(value: Any, mode: Any) -> float:
    """The objective as "smaller is better"; a missing value is worst."""
    number = _number(value, math.nan)
    return math.inf if math.isnan(number) else Direction.of(mode).badness(number)


def _known(value: Any) -> bool:
    return value is not None and not (pd.api.types.is_scalar(value) and pd.isna(value))


def _number(value: Any, default: float) -> float:
    """A float from a record's or a frame's value; `default` for None, NA, NaN or a non-number."""
    if not _known(value):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
