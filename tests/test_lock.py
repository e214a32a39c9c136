"""One search per study and results folder: a second is refused naming the holder; stale locks are taken."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import run_cli

from harness import load_leaderboard

pytestmark = pytest.mark.slow


def test_a_second_search_is_refused_and_a_killed_search_s_lock_is_taken_over(tmp_path, write_spec):
    path = write_spec(search={"trials": 2, "max_epochs": 30, "scheduler": {"name": "none"}})
    results = tmp_path / "r"
    lock = results / "locks" / "t.lock"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not lock.is_file():
            time.sleep(0.2)
        holder = json.loads(lock.read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        second = run_cli("search", str(path), "--results", str(results), "--trials", "1", "--max-epochs", "1")
        assert second.returncode == 2
        assert f"is being searched by pid {first.pid} on {socket.gethostname()} since" in second.stderr
        assert "--study" in second.stderr  # names a way out
    finally:
        first.send_signal(signal.SIGKILL)  # dies holding the lock
        first.wait(timeout=60)
    assert lock.is_file()
    third = run_cli("search", str(path), "--results", str(results), "--trials", "1", "--max-epochs", "1")
    assert third.returncode == 0, third.stderr[-3000:]
    assert not lock.exists()  # released at the end
    assert len(load_leaderboard(results)) >= 1
