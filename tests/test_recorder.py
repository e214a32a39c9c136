"""The driver's callbacks, driven with the reports a worker sends (no Ray run needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import make_record
from rich.console import Console

from harness import InternalError, load_leaderboard
from harness._results.record import REPORT_KEY, EpochRecord, EpochReport, ErrorKind, FinalReport, Provenance
from harness._search.recorder import ERRORS_DIR, LeaderboardRecorder, SearchProgress
from harness._search.search import _report_end
from harness._spec.spec import Direction, Objective, SearchSpec
from harness._storage import Location
from harness._trial.runner import TrialContext

PROVENANCE = Provenance(backend="tensorflow", backend_version="2", keras_version="3", harness_version="0",
                        device="cpu", node="n1", gpu_ids="")  # fmt: skip


@dataclass
class Trial:
    """The attributes of Ray's Trial that the callbacks read."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=lambda: {"conv_blocks": 1, "trial_number": 0})
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None
    placement_group_factory: Any = None  # Ray's resource request; the row's `cpus` comes from it
    status: str = "TERMINATED"


def epoch(trial: Trial, n: int, val_accuracy: float) -> dict[str, Any]:
    record = EpochRecord(study="s", trial_id=trial.trial_id, epoch=n, val_accuracy=val_accuracy,
                         val_loss=1 - val_accuracy, epoch_s=float(n))  # fmt: skip
    report = EpochReport(
        epoch=record, params=42, started_at=datetime(2026, 1, 1, tzinfo=UTC), provenance=PROVENANCE
    )
    return {"val_accuracy": val_accuracy, REPORT_KEY: report}


@pytest.fixture
def recorder(tmp_path) -> LeaderboardRecorder:
    ctx = TrialContext(study="s", run_id="run-1", dataset="digits", objectives=(Objective(),),
                       spec_hash="h", models_dir="", max_epochs=3, seed=0,
                       early_stopping=None, backend="tensorflow")  # fmt: skip
    rec = LeaderboardRecorder(ctx, results_dir=str(tmp_path), run_dir=str(tmp_path / "runs" / "s" / "run-1"),
                              keep_models=1, time_budget_s=None)  # fmt: skip
    rec.setup()
    return rec


def feed(recorder: LeaderboardRecorder, trial: Trial, accuracies: list[float]) -> None:
    for n, acc in enumerate(accuracies, 1):
        result = epoch(trial, n, acc)
        trial.last_result = result
        recorder.on_trial_result(0, [], trial, result)


def test_a_pruned_trial_keeps_its_best_epoch_and_provenance(recorder, tmp_path):
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    trial = Trial("p1", placement_group_factory=PlacementGroupFactory([{"CPU": 3}]))
    feed(recorder, trial, [0.4, 0.6, 0.5])
    recorder.on_trial_complete(0, [], trial)
    row = load_leaderboard(tmp_path).iloc[0]
    assert row["status"] == "pruned" and row["stop_reason"] == "scheduler"
    assert row["val_accuracy"] == pytest.approx(0.6) and row["best_epoch"] == 2 and row["epochs_run"] == 3
    assert row["first_epoch_s"] == 1.0 and row["steady_epoch_s"] == 2.5 and row["train_time_s"] == 6.0
    assert row["params"] == 42 and row["node"] == "n1" and row["hp_conv_blocks"] == 1
    assert row["started_at"] == datetime(2026, 1, 1, tzinfo=UTC) and row["run_id"] == "run-1"
    assert row["cpus"] == 3 and pd.isna(row["feasible"])  # what Ray gave it; no constraints
    assert recorder.seen == {}  # driver memory does not grow with the study


def test_final_reports_are_written_as_sent_and_top_k_is_kept(recorder, tmp_path):
    models = tmp_path / "models" / "s"
    models.mkdir(parents=True)
    for name, acc in (("a", 0.7), ("b", 0.9)):
        (models / f"{name}.keras").write_text("x")
        trial = Trial(name, last_result={REPORT_KEY: FinalReport(
            record=make_record(trial_id=name, acc=acc, model_path=f"models/s/{name}.keras"))})  # fmt: skip
        recorder.on_trial_complete(0, [], trial)
    frame = load_leaderboard(tmp_path).set_index("trial_id")
    assert frame["model_path"].notna().to_dict() == {"b": True, "a": False}
    assert not (models / "a.keras").exists() and (models / "b.keras").exists()


def test_internal_failures_leave_a_traceback_and_fail_strict_runs(recorder, tmp_path):
    record = make_record(trial_id="bug", status="failed", acc=None, error="KeyError: 'x'",
                         error_kind=ErrorKind.INTERNAL, run_id="run-1")  # fmt: skip
    trial = Trial("bug", last_result={REPORT_KEY: FinalReport(record=record, traceback="Traceback ...")})
    recorder.on_trial_complete(0, [], trial)
    run_dir = Path(recorder.run_dir)
    assert (run_dir / ERRORS_DIR / "bug.txt").read_text() == "Traceback ..."
    spec = SearchSpec.model_validate({"study": "s", "dataset": {"name": "digits"}, "search": {"trials": 1}})
    frame = load_leaderboard(tmp_path)
    with pytest.raises(InternalError, match="bug:\nTraceback"):
        _report_end(spec, frame, Location.of(run_dir), console=_quiet(), strict=True)
    with pytest.raises(InternalError, match=r"all 1 trial\(s\) of run run-1 failed inside harness itself"):
        _report_end(spec, frame, Location.of(run_dir), console=_quiet())  # every trial of the run did
    done = Trial(
        "done", last_result={REPORT_KEY: FinalReport(record=make_record(trial_id="done", run_id="run-1"))}
    )
    recorder.on_trial_complete(0, [], done)
    _report_end(spec, load_leaderboard(tmp_path), Location.of(run_dir), console=_quiet())  # warns only


def test_a_crashed_worker_becomes_one_failed_row(recorder, tmp_path):
    error = tmp_path / "error.txt"
    error.write_text("Traceback...\nray.exceptions.ActorDiedError: The actor died unexpectedly")
    trial = Trial("dead", error_file=str(error))
    feed(recorder, trial, [0.5])
    recorder.on_trial_error(0, [], trial)
    row = load_leaderboard(tmp_path).iloc[0]
    assert row["status"] == "failed" and row["error_kind"] == "user" and row["epochs_run"] == 1
    assert "ActorDiedError" in row["error"]


def test_a_trial_ray_errored_without_an_event_gets_one_failed_row_and_recorded_ones_keep_theirs(
    recorder, tmp_path
):
    # Ray ends a trial it cannot start on a reused worker as ERROR, with no error event.
    lost, failed = Trial("lost", status="ERROR"), Trial("failed", status="ERROR")
    recorder.on_trial_error(0, [], failed)  # an error event: its row is written now
    recorder.on_experiment_end([lost, failed, Trial("done")])
    rows = load_leaderboard(tmp_path).set_index("trial_id")
    assert sorted(rows.index) == ["failed", "lost"]
    assert rows.loc["lost", "status"] == "failed" and rows.loc["lost", "error_kind"] == "internal"
    assert "reused worker" in rows.loc["lost", "error"] and rows.loc["lost", "epochs_run"] == 0


def test_progress_counts_and_shows_the_best_the_leaderboard_ranks_first():
    progress = SearchProgress("val_accuracy", Direction.MAX)
    trial = Trial("a")
    progress.on_trial_start(0, [], trial)
    progress.on_trial_result(0, [], trial, epoch(trial, 1, 0.8))
    progress.on_trial_complete(0, [], trial)  # no final report: pruned
    done = Trial("b", last_result={REPORT_KEY: FinalReport(record=make_record(trial_id="b", acc=0.7))})
    progress.on_trial_start(0, [], done)
    progress.on_trial_complete(0, [], done)
    progress.on_trial_error(0, [], Trial("c"))
    assert progress.counts == {"completed": 1, "pruned": 1, "failed": 1} and not progress.running
    # the leaderboard's rank 1 (completed b, 0.7), not the pruned trial's passing epoch (0.8)
    assert progress.best == pytest.approx(0.7)
    infeasible = make_record(trial_id="d", acc=0.95, feasible=False)
    progress.on_trial_complete(0, [], Trial("d", last_result={REPORT_KEY: FinalReport(record=infeasible)}))
    assert progress.best == pytest.approx(0.7)  # ranked after every feasible trial


def _quiet() -> Console:
    return Console(quiet=True)


def test_a_budget_cut_trial_that_never_reported_keeps_its_start_and_a_pending_one_gets_no_row(
    recorder, tmp_path
):
    recorder.time_budget_s, recorder.setup_time = 10.0, 0.0  # the budget ran out long ago
    running, pending = Trial("r1"), Trial("p1")
    recorder.on_trial_start(0, [], running)  # started, cut before its first epoch
    recorder.on_experiment_end([running, pending])
    (row,) = load_leaderboard(tmp_path).itertuples()
    assert row.trial_id == "r1" and row.status == "pruned" and row.stop_reason == "time_budget"
    assert row.epochs_run == 0 and row.started_at is not None and row.finished_at >= row.started_at
    assert recorder.started == {}
