"""Model files: rows name them relative to the results folder; deletions stay inside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from conftest import make_record
from rich.console import Console

from harness import load_leaderboard
from harness._results.check import check_results
from harness._results.keeper import ModelKeeper
from harness._results.leaderboard import write_row
from harness._results.models import model_file, orphaned_models, stored_path
from harness._search.search import _sweep
from harness._storage import Location


def saved(results: Path, trial: str, acc: float, *, stored: str | None = None) -> None:
    """A completed trial with its model file; `stored` is what its row says (default: relative)."""
    model = results / "models" / "s" / f"{trial}.keras"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_text(trial)
    write_row(results, make_record(trial_id=trial, acc=acc, model_path=stored or stored_path("s", trial)))


def test_rows_store_paths_relative_to_the_results_folder(tmp_path):
    saved(tmp_path / "a", "t1", 0.9)
    raw = pd.read_parquet(tmp_path / "a" / "leaderboard")
    assert raw["model_path"].tolist() == ["models/s/t1.keras"]
    shutil.move(tmp_path / "a", tmp_path / "moved")  # a moved folder still finds its models
    frame = load_leaderboard(tmp_path / "moved")
    assert Path(frame.loc[0, "model_path"]).read_text() == "t1"
    assert check_results(tmp_path / "moved") == []


def test_a_copied_folder_never_deletes_the_original_s_models(tmp_path):
    original, copy = tmp_path / "a", tmp_path / "b"
    for trial, acc in [("t1", 0.9), ("t2", 0.8)]:  # rows as older harness wrote them: absolute paths
        saved(original, trial, acc, stored=str(original / "models" / "s" / f"{trial}.keras"))
    shutil.copytree(original, copy)
    keeper = ModelKeeper.for_study(copy, "s", keep=1)  # one more search in the copy drops t2
    assert keeper.kept == ["t1"]
    assert (original / "models/s/t2.keras").is_file()  # the original is untouched
    assert not (copy / "models/s/t2.keras").exists()  # the copy dropped its own file
    frame = load_leaderboard(copy).set_index("trial_id")
    assert frame.loc["t1", "model_path"] == str(copy / "models/s/t1.keras")  # resolved in the copy
    assert orphaned_models(copy, "s", frame["model_path"].dropna()) == []
    assert check_results(original) == [] and check_results(copy) == []


def test_a_row_naming_a_file_elsewhere_resolves_inside_its_study_s_models(tmp_path):
    outside = tmp_path / "precious.keras"
    outside.write_text("not harness'")
    saved(tmp_path / "r", "t1", 0.5, stored=str(outside))
    saved(tmp_path / "r", "t2", 0.9)
    ModelKeeper.for_study(tmp_path / "r", "s", keep=1)  # drops t1, whose row names `outside`
    assert outside.read_text() == "not harness'"
    escaping = model_file(tmp_path / "r", "s", "../../x.keras")
    assert escaping is not None and escaping.path == str(tmp_path / "r" / "models" / "s" / "x.keras")
    assert model_file(tmp_path / "r", "s", "models/s/..") is None


def test_the_end_of_search_sweep_keeps_models_when_a_row_file_is_unreadable(tmp_path):
    saved(tmp_path, "t1", 0.9)
    saved(tmp_path, "t2", 0.8)
    (tmp_path / "leaderboard" / "s" / "t2.parquet").write_bytes(b"torn")  # a transient read error
    frame = load_leaderboard(tmp_path, "s")
    assert frame["trial_id"].tolist() == ["t1"]
    console = Console(record=True, width=200)
    _sweep(Location.of(tmp_path), "s", frame, console)
    assert (tmp_path / "models/s/t2.keras").is_file()  # its row could not be read: not an orphan
    assert "t2.parquet: unreadable" in console.export_text()
    (tmp_path / "leaderboard" / "s" / "t2.parquet").unlink()  # now truly gone: swept
    _sweep(Location.of(tmp_path), "s", load_leaderboard(tmp_path, "s"), console)
    assert not (tmp_path / "models/s/t2.keras").exists()
