"""Study and trial names: one rule everywhere, so no name reaches outside its results folder."""

from __future__ import annotations

import pytest
from conftest import make_record, run_cli

from harness import ArgumentError, load_curves, load_leaderboard, select_trial
from harness._reports.report import build_report
from harness._results.leaderboard import compact, write_row
from harness._storage import Location

HOSTILE = ["../../elsewhere", "/etc", "a/b", "..", "", ".hidden", "x" * 101]


@pytest.fixture
def results(tmp_path):
    """A results folder with one row, and a study folder beside it that must never be touched."""
    write_row(tmp_path / "r", make_record(study="s", trial_id="t1"))
    write_row(tmp_path / "elsewhere", make_record(study="s", trial_id="t2"))
    write_row(tmp_path / "elsewhere", make_record(study="s", trial_id="t3"))
    return tmp_path / "r"


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", HOSTILE)
def test_every_api_entry_point_refuses_a_name_that_is_not_a_plain_name(results, name):
    before = snapshot(results.parent)
    calls = [
        lambda: load_leaderboard(results, name),
        lambda: load_curves(results, name),
        lambda: compact(results, name),
        lambda: select_trial(results, study="s", trial=name),
        lambda: build_report(results, study=name),
        lambda: write_row(results, make_record(study=name)),
        lambda: write_row(results, make_record(trial_id=name)),
    ]
    for call in calls:
        with pytest.raises(ArgumentError, match="must be a name of 1-100 letters"):
            call()
    assert snapshot(results.parent) == before  # nothing written or rewritten anywhere


def test_the_cli_s_compaction_of_a_hostile_study_exits_2_and_writes_nothing(results):
    before = snapshot(results.parent)
    out = run_cli("leaderboard", "--results", str(results), "--study", "../elsewhere/..", "--compact")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--study must be a name" in out.stderr and "../elsewhere/.." in out.stderr
    assert snapshot(results.parent) == before


@pytest.mark.parametrize("part", ["../x", "/etc/passwd", "a/../../b", "", "a//b"])
def test_the_storage_layer_refuses_joins_that_leave_the_folder(tmp_path, part):
    with pytest.raises(ArgumentError, match="relative path inside its folder"):
        Location.of(tmp_path) / part
    assert (Location.of(tmp_path) / "a/b.parquet").path == f"{tmp_path}/a/b.parquet"
