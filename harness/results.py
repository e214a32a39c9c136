"""Query the leaderboard: sorted frames and Pareto fronts (the read side of the data flow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.leaderboard import dedupe, read_table, sort_by_objective

NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
"""Integer and boolean columns keep their type when a failed or pruned row has nulls."""


def load_leaderboard(results_dir: str | Path = "results", study: str | None = None) -> pd.DataFrame:
    """Every trial (of one study), sorted by each study's objective, best first.

    Failed and unscored trials sort last. Each trial appears once, even while a
    compaction or a rewrite of its row is under way.
    """
    table = dedupe(read_table(results_dir, study))
    return sort_by_objective(table.to_pandas(types_mapper=NULLABLE.get))


def parse_objectives(text: str) -> dict[str, str]:
    """`"val_accuracy:max,params:min"` -> {"val_accuracy": "max", "params": "min"}."""
    objectives: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        column, _, mode = part.partition(":")
        if mode not in ("max", "min"):
            raise ValueError(f"--pareto: write each objective as column:max or column:min; got {part!r}")
        objectives[column] = mode
    if not objectives:
        raise ValueError("--pareto: give at least one column:max|min, e.g. val_accuracy:max,params:min")
    return objectives


def pareto_front(frame: pd.DataFrame, objectives: dict[str, str]) -> pd.DataFrame:
    """Rows no other row dominates (at least as good on every objective, better on one).

    Rows with a missing objective value are left out. Order is kept.
    """
    missing = [c for c in objectives if c not in frame.columns]
    if missing:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise ValueError(f"--pareto: unknown column(s) {missing}; numeric columns: {numeric}")
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
