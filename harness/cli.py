"""The `harness` command: a thin Typer layer over the Python API."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import (
    ArgumentError,
    DryRun,
    HarnessError,
    InternalError,
    evaluate_trial,
    export_trial,
    load_leaderboard,
    load_spec,
    pareto_front,
    predict_images,
    run_search,
    run_suite,
    select_trial,
    sort_leaderboard,
)
from harness import dry_run as run_dry
from harness._data import locate, search_roots
from harness._reports.bench import load_suite, markdown
from harness._reports.evaluate import confusion_png
from harness._reports.report import build_report
from harness._results.check import check_results
from harness._results.leaderboard import compact as compact_study
from harness._results.leaderboard import studies
from harness._results.query import parse_objectives, within_params
from harness._search.progress import leaderboard_table
from harness._spec.spec import DATASETS
from harness._storage import Location

app = typer.Typer(
    help="Hyperparameter search and benchmarking for Keras CNNs (Ray Tune + Optuna).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
if not console.is_terminal:  # pipes and CI logs: no reason to fold at 80 columns
    console = Console(width=200)
err_console = Console(stderr=True)
if not err_console.is_terminal:
    err_console = Console(stderr=True, width=200)

ResultsOpt = Annotated[
    str, typer.Option("--results", help="Results folder, or a filesystem URI (s3://bucket/prefix, gs://...).")
]
StudyOpt = Annotated[str | None, typer.Option("--study", help="Study name (default: all).")]
TrialOpt = Annotated[str | None, typer.Option("--trial", help="Trial id.")]
RankOpt = Annotated[int | None, typer.Option("--rank", min=1, help="Rank in the study (1 = best; default).")]
MaxParamsOpt = Annotated[
    int | None, typer.Option("--max-params", min=1, help="Only models with at most N parameters.")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="HARNESS_DATA_DIR", help="Folder holding the datasets."),
]


class Backend(StrEnum):
    auto = "auto"
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


BackendOpt = Annotated[
    Backend | None, typer.Option(help="Keras backend (auto: TensorFlow on CPUs, JAX or torch on GPUs).")
]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


@app.command()
def search(
    space: Annotated[Path, typer.Argument(help="Search space YAML file.")],
    trials: Annotated[int | None, typer.Option(help="Override search.trials.")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override search.max_epochs.")] = None,
    study: Annotated[str | None, typer.Option(help="Override the study name.")] = None,
    results: ResultsOpt = "results",
    data_dir: DataDirOpt = None,
    cpus_per_trial: Annotated[
        str | None, typer.Option(help="CPUs per trial, or auto (the cluster's CPUs over the trials at once).")
    ] = None,
    gpus_per_trial: Annotated[
        str | None,
        typer.Option(help="GPUs per trial (0.5 = half), or auto (1/k of a GPU: the trials at once fit)."),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Most trials at once.")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Your model: module:function, a build(hp) importable here and on the workers."),
    ] = None,
    address: Annotated[str | None, typer.Option(help="Join a Ray cluster (e.g. auto).")] = None,
    backend: BackendOpt = None,
    time_budget: Annotated[float | None, typer.Option(help="Wall-clock budget, seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override search.seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the study's interrupted run.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Validate, find the data, print the first model; train nothing.")
    ] = False,
    top: Annotated[int, typer.Option(help="Rows in the final table.")] = 10,
    mlflow: Annotated[
        str | None,
        typer.Option(
            help="Log each trial as an MLflow run to this tracking URI (sqlite:///mlflow.db, http://...)."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            envvar="HARNESS_STRICT",
            help="Exit 1 when any trial failed inside harness' own code (default: only when all did).",
        ),
    ] = False,
) -> None:
    """Run a hyperparameter search (or a fixed baseline) and print its leaderboard."""

    spec = load_spec(space).with_overrides(
        **{
            "search.trials": trials,
            "search.max_epochs": max_epochs,
            "study": study,
            "resources.cpus_per_trial": cpus_per_trial,
            "resources.gpus_per_trial": gpus_per_trial,
            "search.max_concurrent": concurrency,
            "search.time_budget_s": time_budget,
            "search.seed": seed,
            "model": model,
        }
    )
    if dry_run:
        _print_dry_run(run_dry(spec, data_dir=data_dir, backend=backend.value if backend else None))
        return
    frame = run_search(
        spec,
        results_dir=results,
        data_dir=data_dir,
        address=address,
        backend=backend.value if backend else None,
        resume=resume,
        mlflow=mlflow,
        console=err_console,
        strict=strict,
    )
    console.print(leaderboard_table(frame.head(top), title=f"{spec.study}: top {top}"))
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    console.print(f"{len(frame)} trials: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _print_dry_run(result: DryRun) -> None:
    spec = result.spec
    for line in result.summary:
        console.print(line, highlight=False, markup=False)
    console.print(f"spec: valid ({spec.study}, {spec.search.trials} trials, hash {spec.spec_hash()})")
    console.print(
        f"data: {spec.dataset.label} ({result.data_location}); input {result.input_shape}, "
        f"{len(result.class_names)} classes",
        markup=False,  # class names and paths are the user's: `[cat,dog]` is not markup
    )
    console.print(f"first configuration: {result.first_config}", markup=False)
    console.print(f"total parameters: {result.params:,}. Dry run: nothing trained or written.")
    if result.feasible is False:
        console.print(
            "[yellow]The first configuration breaks `constraints:`; its trial would be recorded "
            "infeasible, untrained.[/]"
        )


@app.command()
def bench(
    suite: Annotated[Path, typer.Argument(help="Benchmark suite YAML file.")],
    results: ResultsOpt = "results",
    data_dir: DataDirOpt = None,
    address: Annotated[str | None, typer.Option(help="Join a Ray cluster (e.g. auto).")] = None,
    backend: BackendOpt = None,
) -> None:
    """Run each task's baseline and search; write one comparison table (markdown + Parquet)."""

    parsed, _ = load_suite(suite)  # validate every spec before anything runs
    table = run_suite(
        suite,
        results_dir=results,
        console=err_console,
        data_dir=data_dir,
        address=address,
        backend=backend.value if backend else None,
    )
    console.print(markdown(table), highlight=False, markup=False)
    console.print(f"written: {Location.of(results) / 'bench' / parsed.name}.md and .parquet")


@app.command()
def leaderboard(
    results: ResultsOpt = "results",
    study: StudyOpt = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show the best K rows per study.")] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Sort by a column instead, e.g. params or test_accuracy:desc."),
    ] = None,
    pareto: Annotated[
        str | None,
        typer.Option(help="Keep the non-dominated rows, e.g. val_accuracy:max,params:min."),
    ] = None,
    compact: Annotated[bool, typer.Option(help="Merge each study's row files first.")] = False,
    max_params: MaxParamsOpt = None,
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    check: Annotated[
        bool, typer.Option(help="Verify the results (files, models, curves, format); exit 1 with a list.")
    ] = False,
) -> None:
    """Print the leaderboard, best first (safe while a search is writing)."""

    if check:
        _check(results)
        return
    if compact:
        for name in [study] if study else studies(results):
            compact_study(results, name)
    frame = load_leaderboard(results, study)
    for problem in frame.attrs["unreadable"]:  # readers skip them: say so
        err_console.print(Text.assemble(("warning:", "yellow"), " ", problem), highlight=False)
    if frame.empty:
        where = f" for study {study!r}" if study else ""
        raise HarnessError(f"No leaderboard rows under {results}{where}; run `harness search` first.")
    counts = frame["status"].value_counts().to_dict()
    frame = within_params(frame, max_params)
    if pareto:
        frame = pareto_front(frame, parse_objectives(pareto))
    if sort:
        column, _, order = sort.partition(":")
        if order not in ("", "asc", "desc"):
            raise HarnessError(f"--sort: write COLUMN, COLUMN:asc or COLUMN:desc. Received: {sort!r}")
        frame = sort_leaderboard(frame, column, descending={"": None, "asc": False, "desc": True}[order])
    if top is not None:
        frame = frame.groupby("study", sort=False).head(top)
    if format is Format.table:
        console.print(leaderboard_table(frame))
        console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    elif format is Format.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif format is Format.json:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
    else:
        sys.stdout.write(frame.to_markdown(index=False) + "\n")


def _check(results: str) -> None:
    problems = check_results(results)
    if problems:
        for problem in problems:
            console.print(f"- {problem}", highlight=False, markup=False)
        console.print(f"{len(problems)} problem(s) in {results}")
        raise typer.Exit(1)
    console.print(f"{results}: no problems found (files, trial ids, models, curves, format).")


@app.command()
def export(
    out: Annotated[str, typer.Option("--out", help="Folder or URI to write (must be new or empty).")],
    results: ResultsOpt = "results",
    study: StudyOpt = None,
    trial: TrialOpt = None,
    rank: RankOpt = None,
    max_params: MaxParamsOpt = None,
    format: Annotated[
        list[str] | None, typer.Option("--format", help="keras (always), savedmodel, onnx.")
    ] = None,
    data_dir: DataDirOpt = None,
    verify: Annotated[
        bool, typer.Option(help="Re-evaluate the reloaded model on the test set (needs the dataset here).")
    ] = True,
) -> None:
    """Export a trial's model with a model card, verified on the test set."""

    row = select_trial(results, study=study, trial=trial, rank=rank, max_params=max_params)
    formats = tuple(format or ("keras",))
    card = export_trial(row, out, results_dir=results, formats=formats, data_dir=data_dir, verify=verify)
    checked = (
        f"test accuracy {card['verified_test_accuracy']:.4f}, verified"
        if card["verified"]
        else "not re-evaluated: --no-verify"
    )
    console.print(
        f"Exported {card['study']}/{card['trial_id']} to {out}: {', '.join(card['files'])} + "
        f"model_card.json ({checked})."
    )


@app.command()
def evaluate(
    results: ResultsOpt = "results",
    study: StudyOpt = None,
    trial: TrialOpt = None,
    rank: RankOpt = None,
    max_params: MaxParamsOpt = None,
    png: Annotated[Path | None, typer.Option(help="Confusion matrix PNG (default: in results).")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Per-class precision/recall/F1 and a confusion matrix on the test set."""

    row = select_trial(results, study=study, trial=trial, rank=rank, max_params=max_params)
    report = evaluate_trial(row, results_dir=results, data_dir=data_dir)
    table = Table(title=f"{row['study']}/{row['trial_id']}: per class, worst F1 first")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for rec in report.per_class.to_dict("records"):
        table.add_row(
            rec["class"], *(f"{rec[c]:.3f}" for c in ("precision", "recall", "f1")), str(rec["support"])
        )
    console.print(table)
    console.print(f"accuracy: {report.accuracy:.4f} on {int(report.per_class['support'].sum())} test images")
    console.print("confusion matrix (rows: true, columns: predicted):")
    console.print(report.confusion.to_string(), highlight=False, markup=False)
    target = png or Location.of(results) / "evaluations" / f"{row['study']}_{row['trial_id']}_confusion.png"
    console.print(
        f"confusion matrix PNG: {confusion_png(report.confusion, target, f'{row.study} / {row.trial_id}')}"
    )


@app.command()
def report(
    study: Annotated[str, typer.Option("--study", help="The study to report on.")],
    results: ResultsOpt = "results",
    compare: Annotated[
        list[str] | None, typer.Option("--compare", help="Studies to put side by side (repeatable).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Folder for the HTML (default: results/reports).")
    ] = (None),
    data_dir: DataDirOpt = None,
) -> None:
    """Write one self-contained HTML report of a study: tables, curves, fronts, importances."""

    path = build_report(results, study=study, compare=compare or (), out=out, data_dir=data_dir)
    console.print(f"report: {path}")


@app.command()
def dashboard(
    results: ResultsOpt = "results",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve optuna-dashboard over the results' Optuna studies (one per run; live during a search)."""

    from harness._search.searcher import optuna_storage

    if not Location.of(results).is_dir():
        raise HarnessError(f"No results under {results}; run `harness search` first.")
    storage, where = optuna_storage(Location.of(results))
    try:
        import optuna_dashboard
    except ImportError:
        raise HarnessError(
            f"harness dashboard needs optuna-dashboard: `pip install -e '.[dashboard]'`, or run "
            f"`optuna-dashboard {where}` where it is installed."
        ) from None
    console.print(f"optuna-dashboard on http://{host}:{port} over {where} (Ctrl-C stops it)")
    optuna_dashboard.run_server(storage, host=host, port=port)


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify.")],
    model: Annotated[str, typer.Option("--model", help="A `harness export` folder (or its URI).")],
    top: Annotated[int, typer.Option(help="Classes to show per image.")] = 3,
) -> None:
    """Classify image files with an exported model."""

    for result in predict_images(model, images, top=top):
        ranked = ", ".join(f"{name} {p:.1%}" for name, p in result.top)
        console.print(f"{result.image}: {ranked}", highlight=False, markup=False)


@app.command()
def datasets(data_dir: DataDirOpt = None) -> None:
    """List the known datasets and where each was found."""

    table = Table(title="Datasets")
    table.add_column("name")
    table.add_column("found at")
    own = {
        "image_folder": "your folder (dataset.path): <class>/*, or train/<class>/* and test/<class>/*",
        "arrays": "your .npz file (dataset.path), or arrays from Python (harness.Data)",
    }
    for name in DATASETS:
        where = own.get(name) or locate(name, data_dir)
        table.add_row(name, where or "[red]not found[/] (a Keras download will be tried)")
    console.print(table)
    console.print("Searched: " + ", ".join(str(r) for r in search_roots(data_dir)))


def main() -> None:
    """Entry point: bad input exits 2 with one paragraph, never a traceback."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before any TensorFlow import
    try:
        app()  # Typer reports usage errors itself, with exit code 2
    except HarnessError as exc:
        _print_error(_in_cli_words(exc))
        sys.exit(2)
    except InternalError as exc:  # every trial failed inside harness: its rows are kept
        _print_error(str(exc))
        sys.exit(1)


def _print_error(message: str) -> None:
    """`error: MESSAGE`, the message as written: it quotes user input, which may look like markup."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


FLAGS = {
    "backend": "--backend",
    "address": "--address",
    "resume": "--resume",
    "mlflow": "--mlflow",
    "results_dir": "--results",
    "results": "--results",
    "compare": "--compare",
    "spec.resources.cpus_per_trial": "--cpus-per-trial",
    "spec.resources.gpus_per_trial": "--gpus-per-trial",
    "spec.search.trials": "--trials",
    "spec.search.max_epochs": "--max-epochs",
    "spec.study": "--study",
    "spec.search.max_concurrent": "--concurrency",
    "spec.search.time_budget_s": "--time-budget",
    "spec.search.seed": "--seed",
    "study": "--study",
    "trial": "--trial",
    "rank": "--rank",
    "max_params": "--max-params",
    "out": "--out",
    "formats": "--format",
    "column": "--sort",
    "objectives": "--pareto",
}
"""API argument -> the flag that sets it, so errors speak the caller's language."""


def _in_cli_words(exc: HarnessError) -> str:
    if isinstance(exc, ArgumentError) and exc.argument in FLAGS:
        return exc.render(FLAGS[exc.argument])
    return str(exc)
