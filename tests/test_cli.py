"""The command line: exit codes, bad input, leaderboard formats, datasets."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from conftest import make_record, run_cli

from harness._results import leaderboard as lb


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
    out = run_cli("search", str(path), "--results", str(tmp_path / "r"))
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_missing_spec_file_and_unknown_option_exit_2(tmp_path):
    out = run_cli("search", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "no such file" in out.stderr
    spec = tmp_path / "ok.yaml"
    spec.write_text(yaml.safe_dump({"study": "x", "dataset": {"name": "digits"}}))
    out = run_cli("search", str(spec), "--trails", "3")  # an existing file: only the option is wrong
    assert out.returncode == 2 and "No such option: --trails" in out.stderr


def test_api_errors_are_shown_with_the_cli_flag(tmp_path):
    out = run_cli("search", "search_spaces/digits.yaml", "--backend", "tensorflow", "--resume",
                  "--results", str(tmp_path / "r"))  # fmt: skip
    assert out.returncode == 2
    assert "--resume needs an interrupted run" in out.stderr and "`resume`" not in out.stderr


@pytest.fixture
def results(tmp_path):
    for study, accs in {"a": [0.5, 0.9, None], "b": [0.7]}.items():
        for i, acc in enumerate(accs):
            status = "failed" if acc is None else "completed"
            record = make_record(study, f"{study}{i}", status, acc, params=1000 * (i + 1),
                                 hyperparameters={"optimizer": "adam"})  # fmt: skip
            lb.write_row(tmp_path, record)
    return tmp_path


def test_leaderboard_formats_and_filters(results):
    out = run_cli("leaderboard", "--results", str(results), "--format", "json", "--study", "a")
    rows = json.loads(out.stdout)
    assert [r["trial_id"] for r in rows] == ["a1", "a0", "a2"]
    csv = run_cli("leaderboard", "--results", str(results), "--format", "csv", "--top", "1").stdout
    assert [line.split(",")[1] for line in csv.strip().splitlines()[1:]] == ["a1", "b0"]
    md = run_cli("leaderboard", "--results", str(results), "--format", "markdown").stdout
    assert md.count("\n") == 6 and "| a1 " in md.replace("|  ", "| ")
    table = run_cli("leaderboard", "--results", str(results), "--compact").stdout
    assert "3 completed, 1 failed" in table
    assert len(list((results / "leaderboard" / "a").glob("*.parquet"))) == 1


def test_leaderboard_pareto_and_sort(results):
    out = run_cli("leaderboard", "--results", str(results), "--format", "json",
                  "--pareto", "val_accuracy:max,params:min")  # fmt: skip
    assert sorted(r["trial_id"] for r in json.loads(out.stdout)) == ["a1", "b0"]  # b0 dominates a0
    out = run_cli("leaderboard", "--results", str(results), "--format", "json", "--sort", "params:desc")
    assert json.loads(out.stdout)[0]["params"] == 3000
    bad = run_cli("leaderboard", "--results", str(results), "--pareto", "nope:max")
    assert bad.returncode == 2 and "--pareto must name numeric columns" in bad.stderr
    bad = run_cli("leaderboard", "--results", str(results), "--sort", "nope")
    assert bad.returncode == 2 and "--sort must be a leaderboard column" in bad.stderr


def test_leaderboard_without_rows_is_a_clear_error(tmp_path):
    out = run_cli("leaderboard", "--results", str(tmp_path))
    assert out.returncode == 2 and "harness search" in out.stderr


def test_datasets_lists_where_each_dataset_was_found(data_dir):
    out = run_cli("datasets", "--data-dir", str(data_dir))
    assert out.returncode == 0
    assert str(data_dir / "mnist") in out.stdout
    assert str(data_dir / "cifar10" / "cifar10-jpg.tar.gz") in out.stdout
    assert "bundled with scikit-learn" in out.stdout


@pytest.mark.skipif(not importlib.util.find_spec("optuna_dashboard"), reason="pip install -e '.[dashboard]'")
def test_dashboard_serves_the_results_optuna_studies(tmp_path):
    import optuna

    (tmp_path / "r").mkdir()
    study = optuna.create_study(study_name="t-run-1", storage=f"sqlite:///{tmp_path / 'r' / 'optuna.db'}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "harness", "dashboard", "--results", str(tmp_path / "r"), f"--port={port}"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, body = time.time() + 60, ""
        while time.time() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as reply:
                    body = reply.read().decode()
            except OSError:
                time.sleep(0.5)
        assert '"study_name": "t-run-1"' in body or '"study_name":"t-run-1"' in body
    finally:
        server.terminate()
        server.wait(timeout=30)
