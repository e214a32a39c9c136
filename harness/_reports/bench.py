"""Benchmark suites: run each task's fixed baseline and its search, compare in one table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from harness._errors import SpecError
from harness._search.search import run_search
from harness._spec.spec import OverrideError, SearchSpec, describe_error, load_spec
from harness._storage import Location, Results, atomic_write, write_text


class BenchTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    baseline: Path | None = None
    search: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)  # for both, dotted keys
    baseline_overrides: dict[str, Any] = Field(default_factory=dict)
    search_overrides: dict[str, Any] = Field(default_factory=dict)


class BenchSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    overrides: dict[str, Any] = Field(default_factory=dict)  # for every spec of the suite
    tasks: list[BenchTask] = Field(min_length=1)


def load_suite(path: str | Path) -> tuple[BenchSuite, dict[str, dict[str, SearchSpec]]]:
    """Validate the suite and every spec it names (paths relative to the suite file)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file. Pass the path of a benchmark suite YAML file.")
    try:
        suite = BenchSuite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise SpecError(f"{path}: " + "; ".join(describe_error(e) for e in exc.errors())) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not a readable YAML file ({exc}).") from None
    specs: dict[str, dict[str, SearchSpec]] = {}
    for task in suite.tasks:
        specs[task.name] = {}
        for kind in ("baseline", "search"):
            file = getattr(task, kind)
            if file is None:
                continue
            overrides = {**suite.overrides, **task.overrides, **getattr(task, f"{kind}_overrides")}
            if kind == "baseline":
                overrides.pop("search.trials", None)  # a baseline is one fixed trial
            try:
                spec = load_spec(path.parent / file).with_overrides(**overrides)
                specs[task.name][kind] = spec.with_overrides(study=f"{suite.name}.{task.name}.{kind}")
            except OverrideError as exc:  # a value of the suite file, not of a command-line flag
                raise SpecError(f"{path}: task {task.name}, {kind} overrides: {exc}") from None
    return suite, specs


def run_suite(
    path: str | Path,
    *,
    results_dir: Results = "results",
    data_dir: str | Path | None = None,
    address: str | None = None,
    backend: str | None = None,
    console: Console | None = None,
) -> pd.DataFrame:
    """Run a benchmark suite: each task's baseline, then its search, side by side.

    Args:
        path: The suite's YAML file.
        results_dir: The results folder or URI.
        data_dir: Where the built-in datasets are.
        address: A Ray cluster to join.
        backend: The backend every task uses.
        console: Where progress is printed.

    Returns:
        One row per task: the baseline's and the best searched trial's test accuracy, trials,
        wall, CPU and GPU seconds; also written to `<results>/bench/<suite>.md` and `.parquet`.
    """
    suite, specs = load_suite(path)
    rows = []
    for task in suite.tasks:
        row: dict[str, Any] = {"task": task.name}
        for kind, spec in specs[task.name].items():
            t0 = time.perf_counter()
            frame = run_search(spec, results_dir=results_dir, data_dir=data_dir, address=address,
                               backend=backend, console=console)  # fmt: skip
            row.update(summarize(kind, spec, frame, time.perf_counter() - t0))
        rows.append(row)
    table = pd.DataFrame(rows)
    write_table(table, Location.of(results_dir) / "bench", suite.name)
    return table


def summarize(kind: str, spec: SearchSpec, frame: pd.DataFrame, wall_s: float) -> dict[str, Any]:
    """One side of a comparison row, from this run's leaderboard rows only."""
    rows = frame[frame["run_id"] == frame.attrs.get("run_id")] if "run_id" in frame.attrs else frame
    done = rows[rows["status"] == "completed"]
    best = done.iloc[0] if not done.empty else None  # rows come sorted by the objective
    return {
        "dataset": spec.dataset.label,
        f"{kind}_test_accuracy": None if best is None else float(best["test_accuracy"]),
        f"{kind}_val_accuracy": None if best is None else float(best["val_accuracy"]),
        f"{kind}_params": None if best is None else int(best["params"]),
        f"{kind}_trials": len(rows),
        f"{kind}_wall_s": round(wall_s, 1),
        f"{kind}_cpu_s": round(float((rows["total_time_s"].fillna(0) * rows["cpus"].fillna(0)).sum()), 1),
        f"{kind}_gpu_s": round(float((rows["total_time_s"].fillna(0) * rows["gpus"].fillna(0)).sum()), 1),
        f"{kind}_trial": None if best is None else best["trial_id"],
    }


def write_table(table: pd.DataFrame, folder: Location, name: str) -> tuple[Location, Location]:
    """Markdown for people, Parquet for pandas; both written atomically."""
    md, pq = folder / f"{name}.md", folder / f"{name}.parquet"
    write_text(md, markdown(table))
    atomic_write(pq, lambda stream: table.to_parquet(stream, index=False))
    return md, pq


def markdown(table: pd.DataFrame) -> str:
    """The comparison: baseline vs best searched test accuracy per task, with costs."""
    shown = pd.DataFrame({"task": table["task"], "dataset": table.get("dataset")})
    for kind in ("baseline", "search"):
        if f"{kind}_test_accuracy" in table:
            shown[f"{kind} test acc"] = table[f"{kind}_test_accuracy"].map(_pct)
            shown[f"{kind} params"] = table[f"{kind}_params"]
            shown[f"{kind} trials"] = table[f"{kind}_trials"]
            shown[f"{kind} wall s"] = table[f"{kind}_wall_s"]
            shown[f"{kind} CPU s"] = table[f"{kind}_cpu_s"]
            shown[f"{kind} GPU s"] = table[f"{kind}_gpu_s"]
    if {"baseline_test_accuracy", "search_test_accuracy"} <= set(table):
        gain = (table["search_test_accuracy"] - table["baseline_test_accuracy"]) * 100
        shown["search - baseline"] = gain.map(lambda g: "" if pd.isna(g) else f"{g:+.2f} pt")
    return str(shown.to_markdown(index=False)) + "\n"


def _pct(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2%}"
