"""Schedulers: Hyperband pauses and resumes trials from their per-epoch checkpoints."""

from __future__ import annotations

import json

import pytest

from harness import load_spec, run_search


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
