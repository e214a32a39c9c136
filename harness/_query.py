"""Queries over the leaderboard: sorted frames, custom sorts and Pareto fronts (the read side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from harness._errors import ArgumentError
from harness._leaderboard import dedupe, read_table

_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
"""Integer and boolean columns keep their type when a failed or pruned row has nulls."""
_TIERS = {"completed": 0, "pruned": 1}


def load_leaderboard(results_dir: str | Path = "results", study: str | None = None) -> pd.DataFrame:
    """Every trial (of one study), sorted by each study's objective, best first.

    Completed trials come first, then pruned, then failed. Each trial appears once,
    even while a compaction or a rewrite of its row is under way.
    """
    table = dedupe(read_table(results_dir, study))
    return sort_by_objective(table.to_pandas(types_mapper=_NULLABLE.get))


def sort_by_objective(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed trials first, then pruned, then failed; within each, best objective first.

    A pruned trial's best partial epoch is not comparable with a finished trial's
    selected epoch, so it never outranks one.
    """
    if frame.empty:
        return frame
    metric = frame["objective_metric"].fillna("val_accuracy")
    values = pd.Series(np.nan, index=frame.index)
    for name in metric.unique():
        rows = metric == name
        if name in frame.columns:
            values[rows] = pd.to_numeric(frame.loc[rows, name], errors="coerce")
    sign = frame["objective_mode"].map({"max": -1.0, "min": 1.0}).fillna(-1.0)
    tier = frame["status"].map(_TIERS).fillna(2)
    frame = frame.assign(_tier=tier, _key=values * sign)
    frame = frame.sort_values(["study", "_tier", "_key"], na_position="last", kind="stable")
    return frame.drop(columns=["_tier", "_key"]).reset_index(drop=True)


def sort_leaderboard(frame: pd.DataFrame, column: str, *, descending: bool | None = None) -> pd.DataFrame:
    """Sort by any column; by default accuracies descend and everything else ascends."""
    if column not in frame.columns:
        raise ArgumentError("column", f"must be a leaderboard column ({', '.join(frame.columns)})", column)
    if descending is None:
        descending = "accuracy" in column
    return frame.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def parse_objectives(text: str) -> dict[str, str]:
    """`"val_accuracy:max,params:min"` -> {"val_accuracy": "max", "params": "min"}."""
    objectives: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        column, _, mode = part.partition(":")
        if mode not in ("max", "min"):
            raise ArgumentError("objectives", "must list column:max or column:min, comma-separated", text)
        objectives[column] = mode
    if not objectives:
        raise ArgumentError("objectives", "must name at least one column:max|min", text)
    return objectives


def pareto_front(frame: pd.DataFrame, objectives: dict[str, str]) -> pd.DataFrame:
    """Rows no other row dominates (at least as good on every objective, better on one).

    Rows with a missing objective value are left out. Order is kept.
    """
    missing = [c for c in objectives if c not in frame.columns]
    if missing:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise ArgumentError("objectives", f"must name numeric columns ({', '.join(numeric)})", missing)
    bad = {c: m for c, m in objectives.items() if m not in ("max", "min")}
    if bad:
        raise ArgumentError("objectives", "must map each column to 'max' or 'min'", bad)
    scored = frame.dropna(subset=list(objectives))
    # Turn every objective into "smaller is better".
    points = np.column_stack(
        [scored[c].to_numpy(float) * (-1.0 if m == "max" else 1.0) for c, m in objectives.items()]
    )
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        dominated = np.all(points <= p, axis=1) & np.any(points < p, axis=1)
        keep[i] = not dominated.any()
    return scored[keep]
