"""Damaged results are reported, not hidden: unreadable files, missing or orphaned models,
curves that disagree with rows, an unknown format (`harness leaderboard --check`)."""

from __future__ import annotations

import pandas as pd

from harness._errors import HarnessError
from harness._results.curves import load_curves
from harness._results.leaderboard import studies
from harness._results.models import orphaned_models
from harness._results.query import load_leaderboard
from harness._results.tables import check_format
from harness._storage import Location, Results


def check_results(results_dir: Results) -> list[str]:
    """Every problem found in a results folder (empty when it is sound)."""
    try:
        check_format(results_dir)
    except HarnessError as exc:
        return [str(exc)]
    frame, curves = load_leaderboard(results_dir), load_curves(results_dir)
    problems: list[str] = frame.attrs["unreadable"] + curves.attrs["unreadable"]
    if frame.empty:
        return problems
    return (
        problems
        + _trial_id_problems(frame)
        + _model_problems(results_dir, frame)
        + _curve_problems(frame, curves)
    )


def _trial_id_problems(frame: pd.DataFrame) -> list[str]:
    """Trial ids are Ray's unique ids: one in two studies means rows were copied between them."""
    copies = frame[frame["trial_id"].duplicated(keep=False)]
    return [
        f"trial {t} has rows in several studies: {sorted(g['study'])}" for t, g in copies.groupby("trial_id")
    ]


def _model_problems(results_dir: Results, frame: pd.DataFrame) -> list[str]:
    """Every model a row names exists; every model file is named by a row."""
    named = frame.dropna(subset=["model_path"])
    problems = [
        f"{row.study}/{row.trial_id}: its model {row.model_path} is missing"
        for row in named.itertuples()
        if not Location.of(str(row.model_path)).is_file()
    ]
    for study in studies(results_dir):
        orphans = orphaned_models(results_dir, study, named.loc[named["study"] == study, "model_path"])
        problems += [f"{f.uri}: no row names this model (orphaned)" for f in orphans]
    return problems


def _curve_problems(frame: pd.DataFrame, curves: pd.DataFrame) -> list[str]:
    """Each row's curves hold exactly its `epochs_run` epochs (studies from before curves: skipped)."""
    counts = curves.groupby(["study", "trial_id"]).size()
    problems = []
    for row in frame[frame["study"].isin(set(curves["study"]))].itertuples():
        have = int(counts.get((row.study, row.trial_id), 0))
        want = 0 if pd.isna(row.epochs_run) else int(row.epochs_run)
        if have != want:
            problems.append(f"{row.study}/{row.trial_id}: {have} curve rows for {want} epochs run")
    return problems
