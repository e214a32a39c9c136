"""Damaged results are reported, not hidden: `harness leaderboard` warns, `--check` lists and exits 1."""

from __future__ import annotations

import shutil

import pytest
from conftest import run_cli

from harness import EpochRecord, load_leaderboard, load_spec, run_search
from harness._results.check import check_results
from harness._results.curves import write_curves

pytestmark = pytest.mark.slow


def test_check_lists_each_kind_of_damage_and_leaderboard_names_torn_files(tmp_path, local_ray, write_spec):
    path = write_spec(search={"trials": 3, "max_epochs": 2, "scheduler": {"name": "none"}, "keep_models": 2})
    results = tmp_path / "r"
    run_search(load_spec(path), results_dir=results)
    out = run_cli("leaderboard", "--results", str(results), "--check")
    assert out.returncode == 0 and "no problems found" in out.stdout, out.stdout + out.stderr

    frame = load_leaderboard(results)
    kept = frame.dropna(subset=["model_path"])
    (results / "leaderboard" / "t" / "torn.parquet").write_bytes(b"PAR1 half a file")
    (results / "models" / "t" / kept.iloc[0]["model_path"].rsplit("/", 1)[1]).unlink()
    shutil.copy(kept.iloc[1]["model_path"], results / "models" / "t" / "stray.keras")
    short = frame.iloc[2]  # its curves rewritten with one of its two epochs
    one_epoch = [EpochRecord(study="t", trial_id=short["trial_id"], epoch=1)]
    write_curves(results, "t", short["trial_id"], short["run_id"], one_epoch)

    problems = check_results(results)
    assert any("torn.parquet: unreadable" in p for p in problems)
    assert any(f"{kept.iloc[0]['trial_id']}: its model" in p and "is missing" in p for p in problems)
    assert any("stray.keras: no row names this model (orphaned)" in p for p in problems)
    assert any(f"{short['trial_id']}: 1 curve rows for 2 epochs run" in p for p in problems)
    out = run_cli("leaderboard", "--results", str(results), "--check")
    assert out.returncode == 1 and f"{len(problems)} problem(s)" in out.stdout
    out = run_cli("leaderboard", "--results", str(results))  # readers skip the torn file, and say so
    assert out.returncode == 0 and "torn.parquet: unreadable" in out.stderr and "3 completed" in out.stdout
