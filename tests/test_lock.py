"""One search per study and results folder: a second is refused naming the holder; a dead holder's
lock is free (a kernel lock), and two starters never both hold it."""

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


@pytest.mark.slow
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
    assert lock.read_text() == ""  # released at the end: no holder named (the file stays)
    assert len(load_leaderboard(results)) >= 1


CONTENDER = """
import sys
from rich.console import Console
from harness._search.lock import study_lock
from harness._storage import Location
from harness._errors import HarnessError
for line in sys.stdin:  # one round per line: try to take the lock, hold it until the next line
    try:
        with study_lock(Location.of(sys.argv[1]), "s", Console(stderr=True)):
            print("HELD", flush=True)
            sys.stdin.readline()
    except HarnessError as exc:
        print("REFUSED", str(exc).replace(chr(10), " "), flush=True)
        sys.stdin.readline()
"""


def test_two_starters_never_both_hold_a_dead_holder_s_lock(tmp_path):
    """20 rounds after a dead holder (its JSON left behind, or an empty file from a starter killed
    before writing it): two processes race for the lock; exactly one holds it each round."""
    lock = tmp_path / "locks" / "s.lock"
    lock.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    racers = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(tmp_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    try:
        for round in range(20):
            stale = json.dumps({"host": socket.gethostname(), "pid": int(dead), "started_at": "then"})
            lock.write_text(stale if round % 2 else "")
            for racer in racers:
                racer.stdin.write("go\n")
                racer.stdin.flush()
            answers = [racer.stdout.readline().split()[0] for racer in racers]
            assert sorted(answers) == ["HELD", "REFUSED"], f"round {round}: {answers}"
            for racer in racers:  # release
                racer.stdin.write("done\n")
                racer.stdin.flush()
    finally:
        for racer in racers:
            racer.stdin.close()
            racer.wait(timeout=60)


def test_a_live_starter_s_lock_is_not_taken_before_it_names_itself(tmp_path):
    """A starter holds the kernel lock before it writes who it is: its empty file is not stale."""
    lock = tmp_path / "locks" / "s.lock"
    lock.parent.mkdir(parents=True)
    starter = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()", str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert starter.stdout.readline().strip() == "locked" and lock.read_text() == ""
        contender = subprocess.Popen([sys.executable, "-c", CONTENDER, str(tmp_path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        out, _ = contender.communicate("go\n", timeout=120)
        assert out.startswith("REFUSED") and "a search that is starting" in out
        assert lock.read_text() == ""  # untouched
    finally:
        starter.communicate("", timeout=60)
    contender = subprocess.run([sys.executable, "-c", CONTENDER, str(tmp_path)], input="go\n",
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert contender.stdout.startswith("HELD")  # the starter ended: its lock ended with it
