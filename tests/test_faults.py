"""Faults injected for real: a trial's worker killed with -9 mid-search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from harness import load_curves, load_leaderboard

pytestmark = pytest.mark.slow


def _kill_worker_after(results: Path, epochs: int, timeout: float = 300) -> int:
    """Kill -9 the process of the first trial to report `epochs` epochs (Ray puts its pid in each result)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for result in results.glob("runs/t/run-*/*/result.json"):
            lines = result.read_text().splitlines()
            if len(lines) >= epochs:
                pid = int(json.loads(lines[-1])["pid"])
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.1)
    raise AssertionError("no trial reported in time")


@pytest.mark.parametrize(("retries", "status"), [(1, "completed"), (0, "failed")])
def test_a_killed_worker_is_retried_from_its_last_epoch_or_fails_once(tmp_path, write_spec, retries, status):
    search = {"trials": 1, "max_epochs": 40, "scheduler": {"name": "none"}, "max_retries": retries}
    path = write_spec(search=search, training={"early_stopping": None})
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_worker_after(results, epochs=2)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    (row,) = load_leaderboard(results).itertuples()
    assert row.status == status
    curves = load_curves(results)
    assert len(curves) == row.epochs_run and not curves.duplicated(["trial_id", "epoch"]).any()
    if status == "completed":
        assert row.epochs_run == 40  # resumed from its checkpoint: no epoch lost, none repeated
    else:
        assert row.error_kind == "user" and row.error.startswith("the trial's worker died")
    assert run_cli("leaderboard", "--results", str(results), "--check").returncode == 0
