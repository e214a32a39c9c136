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

pytestmark = pytest.mark.slow


def _kill_worker_after(results: Path, epochs: int, timeout: float = 300, sig: int = signal.SIGKILL) -> int:
    """Signal the process of the first trial to report `epochs` epochs (Ray puts its pid in each result)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for result in results.glob("runs/t/run-*/*/result.json"):
            lines = result.read_text().splitlines()
            if len(lines) >= epochs:
                pid = int(json.loads(lines[-1])["pid"])
                os.kill(pid, sig)
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


def test_compaction_killed_at_any_moment_loses_and_duplicates_no_row(tmp_path):
    """kill -9 of a real process compacting rows and curves, at eight moments from start to end."""
    from conftest import make_record

    from harness._curves import write_curves
    from harness._leaderboard import compact, row_files, write_row
    from harness._record import EpochRecord

    for i in range(200):
        write_row(tmp_path, make_record("s", f"t{i:03d}", epochs_run=2))
        epochs = [EpochRecord(study="s", trial_id=f"t{i:03d}", epoch=e, val_accuracy=0.5) for e in (1, 2)]
        write_curves(tmp_path, "s", f"t{i:03d}", "run-x", epochs)
    code = f"from harness._leaderboard import compact; compact({str(tmp_path)!r}, 's')"
    for delay in (0.2, 0.5, 0.8, 1.1, 1.4, 1.7, 2.0, 2.5):
        process = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(delay)
        process.kill()
        process.wait()
        frame, curves = load_leaderboard(tmp_path), load_curves(tmp_path)
        assert len(frame) == 200 and frame["trial_id"].is_unique
        assert len(curves) == 400 and not curves.duplicated(["trial_id", "epoch"]).any()
        assert frame.attrs["unreadable"] == [] and curves.attrs["unreadable"] == []  # torn files hidden
        write_row(tmp_path, make_record("s", f"t{int(delay * 10):03d}", epochs_run=2))  # rows keep arriving
    compact(tmp_path, "s")
    assert len(row_files(tmp_path, "s")) == 1 and len(load_leaderboard(tmp_path)) == 200


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
    """SIGSTOP freezes the trial's process mid-fit: it sends nothing more, as a hung fit would."""
    search = {"trials": 2, "max_epochs": 30, "max_concurrent": 1, "scheduler": {"name": "none"},
              "max_retries": 1, "trial_timeout_s": 25, "sampler": "random"}  # fmt: skip
    path = write_spec(search=search, training={"early_stopping": None})
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", str(results)]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frozen = _kill_worker_after(results, epochs=2, sig=signal.SIGSTOP)
    try:
        _, err = driver.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGKILL)
    assert driver.returncode == 0, err[-3000:]
    frame = load_leaderboard(results)
    assert len(frame) == 2
    (hung,) = frame[frame["status"] == "failed"].itertuples()
    assert hung.stop_reason == "timeout" and "search.trial_timeout_s" in hung.error
    assert hung.error_kind == "user" and hung.started_at is not None and hung.finished_at is not None
    assert 2 <= hung.epochs_run < 30  # ended where it hung, not run again from its checkpoint
    assert (frame["status"] == "completed").sum() == 1  # the search went on
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
    search = {"trials": 3, "max_epochs": 2000, "max_concurrent": 1, "scheduler": {"name": "none"},
              "time_budget_s": 20}  # fmt: skip
    path = write_spec(search=search, training={"early_stopping": None})
    results = tmp_path / "r"
    out = run_cli("search", str(path), "--results", str(results))
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = load_leaderboard(results).itertuples()  # the two trials still pending get no row
    assert row.status == "pruned" and row.stop_reason == "time_budget"
    assert row.started_at is not None and row.finished_at is not None and row.finished_at > row.started_at
    assert row.epochs_run >= 1 and len(load_curves(results)) == row.epochs_run
