"""Queries over the leaderboard: sorted frames, custom sorts and Pareto fronts (the read side)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from harness._errors import ArgumentError
from harness._results.leaderboard import LEADERBOARD, dedupe
from harness._results.models import model_file
from harness._results.ranking import rank_key
from harness._results.record import USER_HYPERPARAMETERS
from harness._spec.spec import Direction
from harness._storage import Location, Results

_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
"""Integer and boolean columns keep their type when a failed or pruned row has nulls."""


def load_leaderboard(results_dir: Results = "results", study: str | None = None) -> pd.DataFrame:
    """Every trial (of one study), sorted by each study's objective, best first.

    Completed trials come first, then pruned, then failed; infeasible trials after feasible
    ones. Each trial appears once, even while a compaction or a rewrite of its row is under
    way. A user model's hyperparameters become typed `hp_<name>` columns.

    Args:
        results_dir: A local folder or a filesystem URI (`s3://bucket/prefix`).
        study: One study's rows only.

    Returns:
        One row per trial, nullable integer columns (`Int64`). `model_path` is where the
        trial's kept model is (a path or URI); `frame.attrs["unreadable"]` names any file
        that could not be read and was skipped.
    """
    results = Location.of(results_dir)
    table, unreadable = LEADERBOARD.read_checked(results, study)
    frame = sort_by_objective(_user_columns(dedupe(table).to_pandas(types_mapper=_NULLABLE.get)))
    frame["model_path"] = _model_uris(results, frame)
    frame.attrs["unreadable"] = unreadable
    return frame


def _user_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A user model's hyperparameters (JSON) as `hp_*` columns, typed by their values (pandas'
    inference: integers, floats, booleans or strings); the JSON column stays for other tools."""
    if frame.empty or frame[USER_HYPERPARAMETERS].isna().all():
        return frame
    values = pd.DataFrame.from_records(
        [{} if pd.isna(text) else json.loads(text) for text in frame[USER_HYPERPARAMETERS]], index=frame.index
    )
    values = values.add_prefix("hp_").convert_dtypes(convert_string=False)
    clashing = [c for c in values.columns if c in frame.columns]
    for column in clashing:  # a vocabulary name used by a user model: one column, both filled, retyped
        both = frame[column].astype(object).where(frame[column].notna(), values.pop(column))
        frame[column] = both.infer_objects().convert_dtypes(convert_string=False)
    return pd.concat([frame, values], axis=1)


def _model_uris(results: Location, frame: pd.DataFrame) -> list[str | None]:
    """Each row's model in this results folder, as a path or URI to open (rows store it relative)."""

    def where(study: str, stored: object) -> str | None:
        found = None if pd.isna(stored) else model_file(results, study, str(stored))
        return None if found is None else found.uri

    return [where(study, stored) for study, stored in zip(frame["study"], frame["model_path"], strict=True)]


def sort_by_objective(frame: pd.DataFrame) -> pd.DataFrame:
    """Each study's rows best first, by `rank_key` (harness._results.ranking): feasible before
    infeasible; then completed, pruned, failed; then a multi-objective study's Pareto rank
    (the front first); then the objective."""
    if frame.empty:
        return frame
    metric = frame["objective_metric"].fillna("val_accuracy")
    values = pd.Series(np.nan, index=frame.index)
    for name in metric.unique():
        rows = metric == name
        if name in frame.columns:
            values[rows] = pd.to_numeric(frame.loc[rows, name], errors="coerce")
    feasible = frame["feasible"] if "feasible" in frame.columns else pd.Series(None, index=frame.index)
    columns = (frame["status"], feasible, values, frame["objective_mode"], _study_ranks(frame))
    keys = [rank_key(*row) for row in zip(*columns, strict=True)]
    studies = frame["study"].tolist()
    order = sorted(range(len(frame)), key=lambda i: (studies[i], keys[i]))
    return frame.iloc[order].reset_index(drop=True)


def _infeasible(frame: pd.DataFrame) -> pd.Series:
    """Rows marked infeasible (older results have no `feasible` column: none are)."""
    if "feasible" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["feasible"].eq(False).fillna(False).astype(bool)


def _study_ranks(frame: pd.DataFrame) -> pd.Series:
    """Pareto rank of each multi-objective study's completed, feasible rows (0 elsewhere)."""
    ranks = pd.Series(0.0, index=frame.index)
    if "objectives" not in frame.columns:
        return ranks
    eligible = frame["status"].eq("completed") & ~_infeasible(frame) & frame["objectives"].notna()
    for _, rows in frame[eligible].groupby("study"):
        objectives = parse_objectives(str(rows["objectives"].iloc[0]))
        ranks[rows.index] = pareto_ranks(rows, objectives)  # NaN (a value missing): last
    return ranks


def within_params(frame: pd.DataFrame, max_params: int | None) -> pd.DataFrame:
    """Rows whose model has at most `max_params` parameters (all rows when None); order kept."""
    if max_params is None:
        return frame
    if max_params < 1:
        raise ArgumentError("max_params", "must be a positive number of parameters", max_params)
    return frame[frame["params"].le(max_params).fillna(False)]


def sort_leaderboard(frame: pd.DataFrame, column: str, *, descending: bool | None = None) -> pd.DataFrame:
    """Sort leaderboard rows by any column.

    Args:
        frame: Leaderboard rows.
        column: The column to sort by.
        descending: Default: accuracies descend, everything else ascends.

    Returns:
        The rows in that order.

    Raises:
        ArgumentError: No such column.
    """
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
    """The rows no other row dominates (at least as good on every objective, better on one).

    Args:
        frame: Leaderboard rows.
        objectives: Column to `"max"` or `"min"`, such as `{"val_accuracy": "max", "params": "min"}`.

    Returns:
        The non-dominated rows, in their order; rows missing an objective's value are left out.

    Raises:
        ArgumentError: An unknown column or direction.
    """
    ranks = pareto_ranks(frame, objectives)
    return frame[ranks.eq(0)]


def pareto_ranks(frame: pd.DataFrame, objectives: dict[str, str]) -> pd.Series:
    """0 for the front, 1 for the front once it is removed, and so on; NaN where a value is missing."""
    missing = [c for c in objectives if c not in frame.columns]
    if missing:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise ArgumentError("objectives", f"must name numeric columns ({', '.join(numeric)})", missing)
    bad = {c: m for c, m in objectives.items() if m not in ("max", "min")}
    if bad:
        raise ArgumentError("objectives", "must map each column to 'max' or 'min'", bad)
    scored = frame.dropna(subset=list(objectives))
    # Turn every objective into "smaller is better".
    points = np.column_stack([Direction(m).badness(scored[c].to_numpy(float)) for c, m in objectives.items()])
    rank = np.full(len(points), -1)
    level = 0
    while (rank < 0).any():
        left = np.flatnonzero(rank < 0)
        others = points[left]
        for i in left:
            dominated = np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1)
            if not dominated.any():
                rank[i] = level
        level += 1
    ranks = pd.Series(np.nan, index=frame.index)
    ranks[scored.index] = rank.astype(float)
    return ranks
