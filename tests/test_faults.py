"""Faults injected for real: a trial's worker killed with -9 mid-search."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import run_cli

from harness import load_curves, load_leaderboard
from harness._search.search import BUDGET_WIND_DOWN_S

pytestmark = pytest.mark.slow


def _trial_pid_after(results: Path, epochs: int, timeout: float = 300) -> int:
    """The process of the first trial to report `epochs` epochs (Ray puts its pid in each result)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for result in results.glob("runs/t/run-*/*/result.json"):
            lines = result.read_text().splitlines()
            if len(lines) >= epochs:
                return int(json.loads(lines[-1])["pid"])
        time.sleep(0.1)
    raise AssertionError("no trial reported in time")


def _kill_worker_after(results: Path, epochs: int, timeout: float = 300, sig: int = signal.SIGKILL) -> int:
    """Signal the process of the first trial to report `epochs` epochs."""
    pid = _trial_pid_after(results, epochs, timeout)
    os.kill(pid, sig)
    return pid


JUMPING_DRIVER = """
import sys, time
from datetime import timedelta
from pathlib import Path

import ray.tune.stopper.timeout as tune_budget
import harness._search.recorder as recorder

trigger, jump = Path(sys.argv[1]), float(sys.argv[2])
ahead = lambda: jump if trigger.exists() else 0.0
assert tune_budget.time is time and callable(recorder.now), "the driver's clocks moved: update this test"
real_now = recorder.now
recorder.now = lambda: real_now() + timedelta(seconds=ahead())  # trial timeouts, the budget's cut


class Clock:  # Ray Tune's time budget (its TimeoutStopper reads time.time())
    def __getattr__(self, name):
        return getattr(time, name)

    def time(self):
        return time.time() + ahead()


tune_budget.time = Clock()
sys.argv = ["harness", *sys.argv[3:]]
from harness.cli import main

main()
"""
"""`harness ARGS` whose driver clocks jump `jump` seconds ahead once `trigger` exists: a timeout
or budget then runs out at an event the test chooses, not at a moment that depends on how fast
this machine trains (only the driver's clocks move; trials run in their own processes)."""


def _jumping_driver(trigger: Path, jump: float, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:  # a file, not a pipe: a driver that writes much cannot block on it
        return subprocess.Popen([sys.executable, "-c", JUMPING_DRIVER, str(trigger), str(jump), *args],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def _wait(driver: subprocess.Popen[bytes], timeout: float = 600) -> int:
    """The driver's exit code; one still running after `timeout` is killed (the test fails)."""
    try:
        return driver.wait(timeout=timeout)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


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


def test_a_worker_killed_inside_its_first_epoch_restarts_the_trial_with_one_report_per_rung(
    tmp_path, write_spec
):
    """No checkpoint holds part of an epoch: the retry starts again, reports its first rungs again,
    and the row, the curves and Optuna's intermediate values each count every report once."""
    # A first epoch of 1,150 single-image steps through 2x2 convs of 128 filters: seconds after its
    # first report (1/9 of it) for the kill to land inside it, even on a loaded machine.
    space = {"conv_blocks": 2, "convs_per_block": 2, "filters": 128, "kernel_size": 3, "dense_units": 256,
             "batch_size": 1, "learning_rate": 1e-3}  # fmt: skip
    search = {"trials": 1, "max_epochs": 2, "max_retries": 1, "scheduler": {"name": "asha"}}
    path = write_spec(space=space, search=search, training={"early_stopping": None})
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_worker_after(results, epochs=1)  # its first report: 1/9 of the first epoch
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    (row,) = load_leaderboard(results).itertuples()
    assert row.status == "completed" and row.epochs_run == 2
    curves = load_curves(results)
    assert curves["epoch"].tolist() == [1, 2]
    (result_file,) = results.glob("runs/t/run-*/*/result.json")
    fidelities = [json.loads(line)["fidelity"] for line in result_file.read_text().splitlines()]
    killed, retried = fidelities[:-4], fidelities[-4:]
    assert retried == [1, 3, 9, 18] and killed and 9 not in killed  # killed before its first epoch ended
    storage = f"sqlite:///{results / 'optuna.db'}"
    (trial,) = optuna.load_study(study_name=f"t-{row.run_id}", storage=storage).trials
    assert sorted(trial.intermediate_values) == [1, 3, 9, 18]


SNAPSHOT = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")
"""Ray's experiment snapshot: trial states, the generator's trial count, the searcher."""


def _first_snapshot(run_dirs: Path, timeout: float = 300) -> dict[Path, bytes]:
    """Ray's first snapshot of the run, taken before any trial reported."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for run in run_dirs.glob("run-*"):
            files = [f for pattern in SNAPSHOT for f in run.glob(pattern)]
            if len(files) == len(SNAPSHOT):
                return {f: f.read_bytes() for f in files}
        time.sleep(0.02)
    raise AssertionError("Ray wrote no experiment snapshot in time")


def test_a_driver_killed_after_trials_its_snapshot_missed_resumes_to_exactly_the_asked_trials(
    tmp_path, write_spec
):
    """The race behind 11 rows for 10 trials, made certain: the driver dies with rows on disk
    that Ray's last snapshot never saw (its first one, put back before resuming)."""
    path = write_spec(search={"trials": 6, "max_epochs": 2, "seed": 4, "scheduler": {"name": "none"},
                              "keep_models": 2})  # fmt: skip
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    snapshot = _first_snapshot(results / "runs" / "t")
    deadline = time.time() + 300
    while time.time() < deadline and len(load_leaderboard(results)) < 3:
        time.sleep(0.2)
    driver.kill()  # SIGKILL: no handler runs, nothing is flushed
    driver.wait(timeout=60)
    before = load_leaderboard(results)
    assert 3 <= len(before) < 6
    for file, data in snapshot.items():
        file.write_bytes(data)  # Ray's view as of its first snapshot: these rows are news to it

    out = run_cli(*cmd[3:], "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    after = load_leaderboard(results)
    assert len(after) == 6 and after["trial_id"].is_unique and after["run_id"].nunique() == 1
    assert set(before["trial_id"]) <= set(after["trial_id"])  # nothing lost
    storage = f"sqlite:///{results}/optuna.db"
    study = optuna.load_study(study_name=f"t-{after['run_id'].iloc[0]}", storage=storage)
    assert not [t for t in study.trials if not t.state.is_finished()]  # no trial left RUNNING
    told = {t.user_attrs.get("trial_id"): t for t in study.trials}
    assert set(after["trial_id"]) <= set(told)  # the sampler heard of every row, unsnapshotted ones too
    for row in after.itertuples():
        want = {"completed": "COMPLETE", "pruned": "PRUNED"}.get(row.status, "FAIL")
        assert told[row.trial_id].state.name == want
    check = run_cli("leaderboard", "--results", str(results), "--check")
    assert check.returncode == 0, check.stdout  # curves match rows; no missing or orphaned model
    assert not [p for p in results.rglob("*.tmp") if not p.name.startswith(".")]


PAUSED_COMPACTION = """
import os, sys, time
from harness._results.leaderboard import compact
from harness._storage import Location

results, folder, at = sys.argv[1], sys.argv[2], sys.argv[3]
deleted = 0


def pause():
    print("paused", flush=True)
    time.sleep(600)  # killed here


def delete(self, real=Location.delete):  # pause before deleting source number `at` of `folder`
    global deleted
    if f"/{folder}/" in self.path:
        if str(deleted) == at:
            pause()
        deleted += 1
    real(self)


def replace(src, dst, real=os.replace):  # "rename": the merged file written whole, not yet in place
    if at == "rename" and f"/{folder}/" in str(dst) and os.path.basename(dst).startswith("compacted-"):
        pause()
    real(src, dst)


Location.delete, os.replace = delete, replace
compact(results, "s")
print("finished", flush=True)
"""
"""A real compaction in its own process that stops (to be killed) at a known point: in the child only."""

COMPACTION_POINTS = [
    ("curves", "0"),  # the merged curves file in place, no source deleted yet
    ("curves", "100"),  # half the curves files deleted
    ("leaderboard", "0"),  # curves done; the merged row file in place, no row file deleted
    ("leaderboard", "100"),  # half the row files deleted
    ("leaderboard", "rename"),  # the merged row file written to its temporary, not yet renamed
]


def test_compaction_killed_at_any_point_loses_and_duplicates_no_row(tmp_path):
    """kill -9 of a real process compacting rows and curves, at each point of interest in turn,
    while rows keep arriving (a trial rewritten between kills: its newest row and curves win)."""
    from conftest import make_record

    from harness._results.curves import write_curves
    from harness._results.leaderboard import compact, row_files, write_row
    from harness._results.record import EpochRecord

    def write(i: int, acc: float) -> None:
        trial = f"t{i:03d}"
        write_row(tmp_path, make_record("s", trial, acc=acc, epochs_run=2))
        epochs = [EpochRecord(study="s", trial_id=trial, epoch=e, val_accuracy=acc) for e in (1, 2)]
        write_curves(tmp_path, "s", trial, "run-x", epochs)

    for i in range(200):
        write(i, 0.5)
    newest = {}
    for k, (folder, at) in enumerate(COMPACTION_POINTS):
        child = subprocess.Popen([sys.executable, "-c", PAUSED_COMPACTION, str(tmp_path), folder, at],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        marker = child.stdout.readline()  # blocks until the child reaches the point (or ends)
        child.kill()
        _, err = child.communicate()
        assert marker == "paused\n", f"the compaction never reached {folder} {at}: {marker!r} {err[-3000:]}"
        frame, curves = load_leaderboard(tmp_path), load_curves(tmp_path)
        assert len(frame) == 200 and frame["trial_id"].is_unique, (folder, at)
        assert len(curves) == 400 and not curves.duplicated(["trial_id", "epoch"]).any(), (folder, at)
        assert frame.attrs["unreadable"] == [] and curves.attrs["unreadable"] == []  # torn files hidden
        accuracy = frame.set_index("trial_id")["val_accuracy"]
        by_epoch = curves.set_index(["trial_id", "epoch"])["val_accuracy"]
        for trial, acc in newest.items():
            assert accuracy[trial] == acc and (by_epoch[trial] == acc).all(), (folder, at, trial)
        newest[f"t{k:03d}"] = 0.6 + k / 100
        write(k, newest[f"t{k:03d}"])  # rows keep arriving: a trial rewritten
    compact(tmp_path, "s")  # a later compaction completes
    assert len(row_files(tmp_path, "s")) == 1
    frame, curves = load_leaderboard(tmp_path), load_curves(tmp_path)
    assert len(frame) == 200 and len(curves) == 400
    accuracy = frame.set_index("trial_id")["val_accuracy"]
    assert all(accuracy[trial] == acc for trial, acc in newest.items())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 MiB filesystem (tmpfs), for a disk that fills; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounting = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)]
    made = subprocess.run(mounting, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of the filesystem."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 10):
            with contextlib.suppress(OSError):
                while out.write(b"\0" * chunk):
                    pass
    return filler


def test_a_full_disk_stops_the_search_with_its_path_and_resume_loses_nothing(small_disk, write_spec):
    path = write_spec(search={"trials": 4, "max_epochs": 6, "seed": 5, "scheduler": {"name": "none"}},
                      training={"early_stopping": None})  # fmt: skip
    results = small_disk / "r"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(load_leaderboard(results)) < 1:
        time.sleep(0.2)
    filler = _fill(small_disk)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 2, err[-3000:]
    assert f"no space left on the device holding {results}" in err and "--resume" in err
    assert "Traceback" not in err
    before = load_leaderboard(results)
    assert 1 <= len(before) < 4 and before.attrs["unreadable"] == []  # written rows intact and readable
    assert not before["status"].eq("failed").any()  # the full disk is not any trial's failure

    filler.unlink()
    out = run_cli(*cmd[3:], "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    after = load_leaderboard(results)
    assert len(after) == 4 and after["trial_id"].is_unique and after["status"].eq("completed").all()
    assert set(before["trial_id"]) <= set(after["trial_id"])
    check = run_cli("leaderboard", "--results", str(results), "--check")
    assert check.returncode == 0, check.stdout


def test_a_hung_trial_ends_as_a_failed_timeout_row_not_retried(tmp_path, write_spec):
    """SIGSTOP freezes the trial's process mid-fit: it sends nothing more, as a hung fit would.
    Then the driver's clock jumps past the hour's trial timeout: the timeout fires because the
    trial hung, whatever this machine's speed; the next trial, started after the jump, has its hour."""
    search = {"trials": 2, "max_epochs": 30, "max_concurrent": 1, "scheduler": {"name": "none"},
              "max_retries": 1, "trial_timeout_s": 3600, "sampler": "random"}  # fmt: skip
    path = write_spec(search=search, training={"early_stopping": None})
    results, trigger, log = tmp_path / "r", tmp_path / "jump", tmp_path / "driver.log"
    driver = _jumping_driver(trigger, 3601, log, "search", str(path), "--results", str(results))
    frozen = _kill_worker_after(results, epochs=2, sig=signal.SIGSTOP)
    trigger.touch()
    try:
        code = _wait(driver)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGKILL)
    assert code == 0, log.read_text()[-3000:]
    frame = load_leaderboard(results)
    assert len(frame) == 2
    (hung,) = frame[frame["status"] == "failed"].itertuples()
    assert hung.stop_reason == "timeout"
    assert "still running after 3600 s (search.trial_timeout_s)" in hung.error
    assert hung.error_kind == "user" and hung.started_at is not None and hung.finished_at is not None
    assert 2 <= hung.epochs_run < 30  # ended where it hung, not run again from its checkpoint
    (done,) = frame[frame["status"] == "completed"].itertuples()  # the search went on
    assert done.epochs_run == 30
    assert run_cli("leaderboard", "--results", str(results), "--check").returncode == 0


def test_a_model_no_row_names_is_removed_when_a_search_of_its_study_ends(tmp_path, write_spec):
    """What a driver killed between a model and its row (or mid keep-top-k) leaves behind."""
    results = tmp_path / "r"
    stray = results / "models" / "t" / "deadbeef.keras"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a model saved just before the driver died")
    path = write_spec(search={"trials": 1, "max_epochs": 1, "scheduler": {"name": "none"}})
    out = run_cli("search", str(path), "--results", str(results))
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = load_leaderboard(results).itertuples()
    assert not stray.exists() and Path(row.model_path).is_file()


def test_a_time_budget_leaves_rows_only_for_trials_that_ran_each_with_its_times_and_reason(
    tmp_path, write_spec
):
    """Ray's hard cut (the hour's budget and its wind-down) comes when the first trial has reported two
    epochs (the driver's clocks jump; the trial's own do not, so it never winds down itself): a pruned
    row for it, none for the two trials still pending, whatever this machine's speed. (Trials that
    wind down at the budget: tests/test_search.py.)"""
    search = {"trials": 3, "max_epochs": 2000, "max_concurrent": 1, "scheduler": {"name": "none"},
              "time_budget_s": 3600}  # fmt: skip
    path = write_spec(search=search, training={"early_stopping": None})
    results, trigger, log = tmp_path / "r", tmp_path / "jump", tmp_path / "driver.log"
    jump = 3600 + BUDGET_WIND_DOWN_S
    driver = _jumping_driver(trigger, jump, log, "search", str(path), "--results", str(results))
    _trial_pid_after(results, epochs=2)
    trigger.touch()
    assert _wait(driver) == 0, log.read_text()[-3000:]
    (row,) = load_leaderboard(results).itertuples()  # the two trials still pending get no row
    assert row.status == "pruned" and row.stop_reason == "time_budget"
    assert row.started_at is not None and row.finished_at is not None and row.finished_at > row.started_at
    assert 2 <= row.epochs_run < 2000 and len(load_curves(results)) == row.epochs_run
