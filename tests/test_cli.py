"""The command line: exit codes, bad input, leaderboard formats, datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import yaml

from harness import leaderboard as lb


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"study": "x", "dataset": {"name": "digits"}, "surprise": 1}, "surprise: unknown field"),
        ({"study": "x", "dataset": {"name": "imagenet"}}, "dataset.name"),
        (
            {
                "study": "x",
                "dataset": {"name": "digits"},
                "space": {"filters": {"type": "categorical", "choices": []}},
            },
            "filters",
        ),  # fmt: skip
        ({"study": "x", "dataset": {"name": "digits", "classes": ["0", "eleven"]}}, "eleven"),
        ({"study": "x", "dataset": {"name": "image_folder", "path": "no/such/folder"}}, "no/such/folder"),
    ],
)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(tmp_path, spec, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = harness("search", str(path), "--results", str(tmp_path / "r"))
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_missing_spec_file_and_unknown_option_exit_2(tmp_path):
    out = harness("search", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "no such file" in out.stderr
    assert harness("search", "x.yaml", "--trails", "3").returncode == 2


@pytest.fixture
def results(tmp_path):
    for study, accs in {"a": [0.5, 0.9, None], "b": [0.7]}.items():
        for i, acc in enumerate(accs):
            status = "failed" if acc is None else "completed"
            values = {"study": study, "trial_id": f"{study}{i}", "status": status, "val_accuracy": acc,
                      "params": 1000 * (i + 1), "objective_metric": "val_accuracy", "objective_mode": "max",
                      "started_at": datetime.now(UTC)}  # fmt: skip
            lb.write_row(tmp_path, lb.make_row(values, {"optimizer": "adam"}))
    return tmp_path


def test_leaderboard_formats_and_filters(results):
    out = harness("leaderboard", "--results", str(results), "--format", "json", "--study", "a")
    rows = json.loads(out.stdout)
    assert [r["trial_id"] for r in rows] == ["a1", "a0", "a2"]
    csv = harness("leaderboard", "--results", str(results), "--format", "csv", "--top", "1").stdout
    assert [line.split(",")[1] for line in csv.strip().splitlines()[1:]] == ["a1", "b0"]
    md = harness("leaderboard", "--results", str(results), "--format", "markdown").stdout
    assert md.count("\n") == 6 and "| a1 " in md.replace("|  ", "| ")
    table = harness("leaderboard", "--results", str(results), "--compact").stdout
    assert "3 completed, 1 failed" in table or "3 completed" in table
    assert len(list((results / "leaderboard" / "a").glob("*.parquet"))) == 1


def test_leaderboard_pareto_and_sort(results):
    out = harness("leaderboard", "--results", str(results), "--format", "json",
                  "--pareto", "val_accuracy:max,params:min")  # fmt: skip
    assert sorted(r["trial_id"] for r in json.loads(out.stdout)) == ["a1", "b0"]  # b0 dominates a0
    out = harness("leaderboard", "--results", str(results), "--format", "json", "--sort", "params:desc")
    assert json.loads(out.stdout)[0]["params"] == 3000
    bad = harness("leaderboard", "--results", str(results), "--pareto", "nope:max")
    assert bad.returncode == 2 and "unknown column" in bad.stderr


def test_leaderboard_without_rows_is_a_clear_error(tmp_path):
    out = harness("leaderboard", "--results", str(tmp_path))
    assert out.returncode == 2 and "harness search" in out.stderr


def test_datasets_lists_where_each_dataset_was_found(data_dir):
    out = harness("datasets", "--data-dir", str(data_dir))
    assert out.returncode == 0
    assert str(data_dir / "mnist") in out.stdout
    assert str(data_dir / "cifar10" / "cifar10-jpg.tar.gz") in out.stdout
    assert "bundled with scikit-learn" in out.stdout
