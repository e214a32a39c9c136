"""One self-contained HTML report of a study: tables and pictures, images embedded, opens offline.

Built from what the results hold (leaderboard rows, per-epoch curves, saved specs) with
matplotlib and Optuna's own importance evaluators and plots; the best trial's per-class
view needs its dataset on this machine (the report says so where it is missing).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness._data import Data
from harness._errors import ArgumentError, HarnessError
from harness._names import check_name
from harness._results.curves import load_curves
from harness._results.query import load_leaderboard, pareto_front
from harness._results.record import TrialRecord
from harness._spec.spec import load_saved_spec
from harness._storage import Location, Results, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_COLUMNS = ["trial_id", "status", "val_accuracy", "test_accuracy", "params", "epochs_run", "train_time_s"]
SECTIONS = ("top", "anytime", "learning", "pareto", "importance", "slice", "best")
"""The report's sections, as `id`s of its HTML (tests and links use them)."""


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str  # HTML


def build_report(
    results_dir: Results = "results",
    *,
    study: str,
    compare: Sequence[str] = (),
    out: str | Path | Location | None = None,
    data_dir: str | Path | None = None,
    top: int = 10,
    data: Data | None = None,
) -> str:
    """Write `report-<study>.html` (under `out`, default `<results>/reports`); return where.

    `compare` adds studies side by side (a search and its baseline; one space on two
    backends): their best rows in one table and their anytime curves on one plot.
    `data`: the arrays a study searched from Python, for its best trial's test evaluation.
    """
    everything, every_curve = load_leaderboard(results_dir), load_curves(results_dir)  # read once
    for argument, name in [("study", study), *(("compare", c) for c in compare)]:
        if not everything["study"].eq(check_name(argument, name)).any():
            raise ArgumentError(argument, f"must name a study with rows under {results_dir}", name)
    frame = everything[everything["study"] == study].reset_index(drop=True)
    curves = every_curve[every_curve["study"] == study]
    best = frame.iloc[0]
    anytime = _figure(
        lambda ax: _anytime(ax, everything, every_curve, [study, *compare]),
        "Best validation accuracy any epoch had reached, against seconds since the run started: "
        "one line per run of each study shown; dashed grey lines are baseline studies on the "
        "same dataset.",
    )
    sections = [
        Section("top", f"Top {top} trials", _table(frame.head(top))),
        Section("anytime", "Best validation accuracy so far", anytime),
        Section(
            "learning",
            "Learning curves of the top trials",
            _figure(
                lambda ax: _learning(ax, frame, curves),
                "Validation accuracy (left) and validation loss (right) after each epoch of the "
                "top five trials.",
                panels=2,
            ),
        ),
        Section(
            "pareto",
            "Pareto fronts",
            _figure(
                lambda ax: _pareto(ax, frame),
                "Validation accuracy against parameter count (left) and training seconds (right) "
                "of the completed trials; the red steps join the trials that no other trial "
                "beats on both axes.",
                panels=2,
            ),
        ),
        *_optuna_sections(results_dir, frame),
        Section("best", f"Best trial: {best['trial_id']}", _best_trial(best, results_dir, data_dir, data)),
    ]
    if compare:
        sections.insert(1, Section("compare", "Side by side", _compare_table(everything, [study, *compare])))
    target = Location.of(out or Location.of(results_dir) / "reports") / f"report-{study}.html"
    return write_text(target, _page(study, frame, sections))


def _page(study: str, frame: pd.DataFrame, sections: list[Section]) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().items())
    row = frame.iloc[0]
    nav = " · ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>\n{s.body}</section>' for s in sections
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>harness report: {html.escape(study)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;font-size:0.9em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
img{{max-width:100%}}section{{margin-bottom:2.5em}}</style></head>
<body><h1>Study {html.escape(study)}</h1>
<p>{len(frame)} trials ({counts}) on {html.escape(str(row["dataset"]))}; objective
{html.escape(str(row["objective_metric"]))} ({html.escape(str(row["objective_mode"]))}).</p>
<nav>{nav}</nav>
{body}
</body></html>
"""


def _table(frame: pd.DataFrame, columns: Sequence[str] = TOP_COLUMNS) -> str:
    shown = frame[[c for c in columns if c in frame.columns]]
    return str(shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0))


def _figure(draw: Callable[[Any], None], caption: str, panels: int = 1) -> str:
    """Run `draw` on fresh axes and embed the figure as a base64 PNG. A `Figure` of its own, not
    pyplot's: the caller's backend and open figures (a notebook's) are left alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * panels, 4))
    axes = fig.subplots(1, panels, squeeze=False)
    draw(axes[0] if panels > 1 else axes[0][0])
    return _embed(fig, caption)


def _embed(fig: Figure, caption: str) -> str:
    """The figure as an inline PNG whose `alt` and caption say what it shows: a reader (or a
    screen reader) never has to guess what a heatmap is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # slice axes: "not compatible with tight_layout"
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = html.escape(caption)
    return (
        f'<figure><img alt="{text}" src="data:image/png;base64,{data}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def _anytime(ax: Any, everything: pd.DataFrame, curves: pd.DataFrame, studies: Sequence[str]) -> None:
    """Best validation accuracy so far against seconds since each run started; baselines as lines."""
    points = curves[curves["study"].isin(studies)].dropna(subset=["val_accuracy", "search_s"])
    points = points.sort_values(["study", "run_id", "search_s"])
    for (name, run_id), run in points.groupby(["study", "run_id"], sort=False):
        ax.step(run["search_s"], run["val_accuracy"].cummax(), where="post", label=f"{name} ({run_id})")
    dataset = everything.loc[everything["study"] == studies[0], "dataset"].iloc[0]
    for name, best in _baselines(everything, dataset, exclude=studies).items():
        ax.axhline(best, linestyle="--", color="grey")
        ax.text(0.01, best, f" baseline {name}: {best:.4f}", transform=ax.get_yaxis_transform(), va="bottom")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("best val_accuracy of any epoch so far")  # the leaderboard ranks kept epochs
    ax.legend(fontsize="small")


def _baselines(everything: pd.DataFrame, dataset: str, exclude: Sequence[str]) -> dict[str, float]:
    """Studies named as baselines on the same dataset: their best validation accuracy."""
    rows = everything[
        (everything["dataset"] == dataset)
        & everything["study"].str.contains("baseline")
        & ~everything["study"].isin(exclude)
        & (everything["status"] == "completed")
    ]
    return {str(k): float(v) for k, v in rows.groupby("study")["val_accuracy"].max().items()}


def _learning(axes: Any, frame: pd.DataFrame, curves: pd.DataFrame, top: int = 5) -> None:
    for trial_id in frame.head(top)["trial_id"]:
        trial = curves[curves["trial_id"] == trial_id]
        axes[0].plot(trial["epoch"], trial["val_accuracy"], marker=".", label=trial_id)
        axes[1].plot(trial["epoch"], trial["val_loss"], marker=".", label=trial_id)
    for ax, name in zip(axes, ("val_accuracy", "val_loss"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
    axes[0].legend(fontsize="small")


def _pareto(axes: Any, frame: pd.DataFrame) -> None:
    done = frame[frame["status"] == "completed"]
    for ax, cost in zip(axes, ("params", "train_time_s"), strict=True):
        ax.scatter(done[cost], done["val_accuracy"], alpha=0.5, label="completed trials")
        front = pareto_front(done, {"val_accuracy": "max", cost: "min"}).sort_values(cost)
        ax.step(front[cost], front["val_accuracy"], where="post", color="C3", marker="o", label="front")
        ax.set_xscale("log" if cost == "params" and len(done) and done[cost].min() > 0 else "linear")
        ax.set_xlabel(cost)
        ax.set_ylabel("val_accuracy")
        ax.legend(fontsize="small")


def _optuna_sections(results_dir: Results, frame: pd.DataFrame) -> list[Section]:
    """Optuna's importance evaluator and slice plot over the study's latest spec and its rows."""
    import matplotlib.pyplot as plt
    import optuna

    from harness._search.searcher import as_study
    from harness._trial.builder import make_builder

    newest = frame.sort_values("started_at").iloc[-1]
    spec = load_saved_spec(results_dir, newest["spec_hash"])
    records = [TrialRecord.from_row(r) for r in frame.to_dict("records")]
    try:
        builder = make_builder(spec.space, spec.model)  # a model function: imported to read its space
    except HarnessError as exc:
        why = f"<p>Not drawn here: {html.escape(str(exc))}</p>"
        return [Section("importance", "Hyperparameter importances", why), Section("slice", "Slices", why)]
    study = as_study(spec, builder, records)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    varied = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    if len(done) < 2 or not varied:
        why = "<p>Needs at least two completed trials whose sampled parameters differ.</p>"
        return [Section("importance", "Hyperparameter importances", why), Section("slice", "Slices", why)]
    target = None if not spec.multi_objective else (lambda t: t.values[0])
    importances = optuna.importance.get_param_importances(study, target=target)
    table = pd.DataFrame({"parameter": list(importances), "importance": list(importances.values())})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_slice(study, params=sorted(varied)[:6], target=target)
    first = ax.flat[0] if isinstance(ax, np.ndarray) else ax
    figure = first.get_figure(root=True)
    assert figure is not None  # axes drawn by Optuna belong to a figure
    slices = _embed(
        figure,
        "The objective of each completed trial against each sampled parameter that varied "
        "(Optuna's slice plot; the colour is the trial's number).",
    )
    plt.close(figure)  # Optuna draws through pyplot: close what it opened, nothing else
    return [
        Section("importance", "Hyperparameter importances (Optuna, fANOVA)", _table(table, table.columns)),
        Section("slice", "Objective against each sampled parameter", slices),
    ]


def _best_trial(row: pd.Series, results_dir: Results, data_dir: str | Path | None, data: Data | None) -> str:
    """Per-class table, confusion matrix and misclassified test images of the best trial."""
    from harness._reports.evaluate import confusion_figure, evaluate_trial, misclassified_figure

    if pd.isna(row.get("model_path")):
        return "<p>The best trial has no kept model (raise search.keep_models).</p>"
    try:
        evaluation = evaluate_trial(row, results_dir=results_dir, data_dir=data_dir, data=data)
    except HarnessError as exc:
        return f"<p>Not evaluated here: {html.escape(str(exc))}</p>"
    title = f"{row['study']} / {row['trial_id']}: test accuracy {evaluation.accuracy:.4f}"
    mistakes = evaluation.misclassified
    confusion = _embed(
        confusion_figure(evaluation.confusion, title),
        f"Confusion matrix of {row['trial_id']} on the test set: rows are the true classes, "
        "columns the predicted ones, so the diagonal counts the correct predictions.",
    )
    page = (
        "<h3>Per-class precision, recall and F1 on the test set</h3>"
        + _table(evaluation.per_class, evaluation.per_class.columns)
        + "<h3>Confusion matrix</h3>"
        + confusion
    )
    if mistakes is None or not len(mistakes.images):
        return page
    grid = _embed(
        misclassified_figure(mistakes),
        "Test images the best trial got wrong, each titled with its predicted and true class.",
    )
    return page + "<h3>Misclassified test images</h3>" + grid


def _compare_table(everything: pd.DataFrame, studies: Sequence[str]) -> str:
    rows = []
    for name in studies:
        frame = everything[everything["study"] == name]
        best = frame.iloc[0]  # rows come sorted by each study's objective
        wall = (frame["finished_at"].max() - frame["started_at"].min()).total_seconds()
        rows.append({"study": name, "trials": len(frame), "best trial": best["trial_id"],
                     "val_accuracy": best["val_accuracy"], "test_accuracy": best["test_accuracy"],
                     "params": best["params"], "backend": best["backend"], "wall_s": wall})  # fmt: skip
    table = pd.DataFrame(rows)
    return _table(table, table.columns)
