"""Schedulers: Hyperband pauses and resumes trials from their per-epoch checkpoints."""

from __future__ import annotations

import json

import pytest

from harness import load_curves, load_spec, run_search


@pytest.mark.slow
def test_hyperband_search_pauses_resumes_and_records_one_row_per_trial(tmp_path, local_ray, write_spec):
    path = write_spec(search={"trials": 9, "max_epochs": 4, "seed": 0,
                              "scheduler": {"name": "hyperband", "reduction_factor": 2}})  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path)
    assert len(frame) == 9 and frame["trial_id"].is_unique
    assert set(frame["status"]) == {"completed", "pruned"}
    assert frame.loc[frame.status == "completed", "epochs_run"].eq(4).all()
    assert frame.loc[frame.status == "pruned", "epochs_run"].lt(4).all()
    resumed = 0
    for result_file in (tmp_path / "runs" / "t").glob("run-*/*/result.json"):
        results = [json.loads(line) for line in result_file.read_text().splitlines()]
        # epochs carry on across a pause: Ray's iteration count and the trial's epoch agree
        assert [r["epoch"] for r in results] == [r["training_iteration"] for r in results]
        for before, after in zip(results, results[1:], strict=False):
            if after["iterations_since_restore"] == 1:  # first epoch after a resume
                resumed += 1
                assert after["epoch"] == before["epoch"] + 1
                assert after["loss"] < results[0]["loss"]  # the weights carried on too
    assert resumed >= 1


def _fidelities(results) -> dict[str, list[int]]:
    """Each trial's reports, in order, as the scheduler's units (Ray's result.json per trial)."""
    seen: dict[str, list[int]] = {}
    for result_file in results.glob("runs/t/run-*/*/result.json"):
        for line in result_file.read_text().splitlines():
            result = json.loads(line)
            if "fidelity" in result:  # a final report without an epoch (a failure, a stop) has none
                seen.setdefault(result["trial_id"], []).append(result["fidelity"])
    return seen


@pytest.mark.slow
def test_asha_compares_trials_inside_their_first_epoch(tmp_path, local_ray, write_spec):
    """A hopeless learning rate is stopped after 1/9 of an epoch, not after an epoch: its row says
    how far it got, and the trials that went on report at 1/9, 1/3 and each epoch once."""
    space = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_units": 16, "batch_size": 8,
             "learning_rate": {"type": "categorical", "choices": [0.01, 1.0e-7]}}  # fmt: skip
    # The random sampler's seed 0 draws 1e-7, 0.01, 1e-7: the third meets both at the first rung.
    search = {"trials": 3, "max_epochs": 2, "sampler": "random", "seed": 0, "max_concurrent": 1,
              "scheduler": {"name": "asha", "reduction_factor": 3}}  # fmt: skip
    frame = run_search(load_spec(write_spec(space=space, search=search)), results_dir=tmp_path)
    frame = frame.sort_values("started_at")
    assert frame["hp_learning_rate"].tolist() == [1e-7, 0.01, 1e-7]  # in start order
    first, good, stopped = frame.itertuples()
    assert (first.status, good.status) == ("completed", "completed")
    assert stopped.status == "pruned" and stopped.stop_reason == "scheduler" and stopped.epochs_run == 0
    assert stopped.val_accuracy < good.val_accuracy  # its score after 1/9 of an epoch, kept in its row
    fidelities = _fidelities(tmp_path)
    assert fidelities[stopped.trial_id] == [1]  # 9 units an epoch: stopped at its first report
    assert fidelities[first.trial_id] == fidelities[good.trial_id] == [1, 3, 9, 18]
    curves = load_curves(tmp_path, study="t")
    assert sorted(curves.groupby("trial_id").size().items()) == sorted(
        [(first.trial_id, 2), (good.trial_id, 2)]
    )  # curves stay one row per epoch: the first epoch's parts are the scheduler's


@pytest.mark.slow
@pytest.mark.parametrize("compared", [False, True], ids=["start-point-hidden", "start-point-compared"])
def test_the_first_sampled_trial_meets_the_start_point_at_asha_s_rungs_only_when_compared(
    tmp_path, local_ray, write_spec, compared
):
    """A start point is never stopped; with `compare_with_start_points` ASHA records its reports, so
    the first sampled trial (a hopeless learning rate) is stopped at its first rung instead of
    running unopposed to the end."""
    space = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_units": 16, "batch_size": 8,
             "learning_rate": {"type": "categorical", "choices": [0.01, 1.0e-7]}}  # fmt: skip
    scheduler = {"name": "asha", "reduction_factor": 3, "compare_with_start_points": compared}
    search = {"trials": 2, "max_epochs": 2, "sampler": "random", "seed": 0, "max_concurrent": 1,
              "start_from": [{"learning_rate": 0.01}], "scheduler": scheduler}  # fmt: skip
    frame = run_search(load_spec(write_spec(space=space, search=search)), results_dir=tmp_path)
    start, sampled = frame.sort_values("started_at").itertuples()
    assert start.hp_learning_rate == 0.01 and start.status == "completed"
    assert sampled.hp_learning_rate == 1e-7
    fidelities = _fidelities(tmp_path)
    if compared:
        assert fidelities[start.trial_id] == [1, 3, 9, 18]  # it reports at the rungs inside its first epoch
        assert (sampled.status, sampled.stop_reason, sampled.epochs_run) == ("pruned", "scheduler", 0)
        assert fidelities[sampled.trial_id] == [1]
    else:
        assert fidelities[start.trial_id] == [9, 18]  # whole epochs only: nobody compares it
        assert sampled.status == "completed" and fidelities[sampled.trial_id] == [1, 3, 9, 18]


@pytest.mark.slow
def test_a_sampled_trial_too_slow_to_its_first_report_is_stopped_and_a_start_point_is_not(
    tmp_path, local_ray, write_spec
):
    """`first_report_s`: a trial whose first batches project its first report past the limit stops
    after those batches (pruned, too_slow); start points run on, whatever their pace."""
    space = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_units": 16, "batch_size": 8,
             "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2}}  # fmt: skip
    search = {"trials": 3, "max_epochs": 2, "seed": 0, "max_concurrent": 1, "first_report_s": 1e-4,
              "start_from": [{"learning_rate": 0.005}]}  # fmt: skip
    frame = run_search(load_spec(write_spec(space=space, search=search)), results_dir=tmp_path)
    start, *sampled = frame.sort_values("started_at").itertuples()
    assert start.status == "completed" and start.epochs_run == 2
    assert [(t.status, t.stop_reason, t.epochs_run) for t in sampled] == [("pruned", "too_slow", 0)] * 2
    assert all(t.params > 0 and t.total_time_s < start.total_time_s for t in sampled)
    assert not _fidelities(tmp_path).get(sampled[0].trial_id)  # stopped before any report
