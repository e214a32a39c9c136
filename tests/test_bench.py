"""Benchmark suites: validation up front, and a tiny real suite writing its comparison."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from harness._errors import SpecError
from harness._reports.bench import load_suite, run_suite

BASELINE = {
    "study": "b", "dataset": {"name": "digits"},
    "search": {"trials": 1, "max_epochs": 5, "scheduler": {"name": "none"}},
    "space": {"conv_blocks": 1, "filters": 4, "dense_units": 8, "batch_size": 64},
}  # fmt: skip
SEARCH = {
    "study": "s", "dataset": {"name": "digits"},
    "search": {"trials": 9, "max_epochs": 5, "seed": 1, "probe": False, "scheduler": {"name": "none"}},
    "space": {"conv_blocks": 1, "dense_units": 16,
              "filters": {"type": "categorical", "choices": [8, 16]},
              "learning_rate": {"type": "float", "low": 2e-3, "high": 1e-2, "log": True}},
}  # fmt: skip


def write_suite(tmp_path, tasks) -> object:
    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "specs" / "base.yaml").write_text(yaml.safe_dump(BASELINE))
    (tmp_path / "specs" / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "overrides": {"search.max_epochs": 2}, "tasks": tasks}))
    return path


def test_suite_overrides_apply_and_studies_are_named_per_task(tmp_path):
    path = write_suite(tmp_path, [{"name": "digits", "baseline": "specs/base.yaml",
                                   "search": "specs/search.yaml",
                                   "search_overrides": {"search.trials": 3}}])  # fmt: skip
    suite, specs = load_suite(path)
    assert specs["digits"]["search"].search.trials == 3
    assert specs["digits"]["baseline"].search.trials == 1
    assert specs["digits"]["search"].search.max_epochs == 2
    assert specs["digits"]["baseline"].study == "tiny.digits.baseline"


def test_bad_suite_fails_before_running_anything(tmp_path):
    bad = write_suite(tmp_path, [{"name": "x", "search": "specs/missing.yaml"}])
    with pytest.raises(SpecError, match="missing.yaml"):
        load_suite(bad)
    bad = write_suite(tmp_path, [{"name": "x", "search": "specs/search.yaml",
                                  "overrides": {"search.trials": "many"}}])  # fmt: skip
    with pytest.raises(SpecError, match="search.trials"):
        load_suite(bad)


@pytest.mark.slow
def test_tiny_suite_writes_the_comparison(tmp_path, local_ray):
    path = write_suite(tmp_path, [{"name": "digits", "baseline": "specs/base.yaml",
                                   "search": "specs/search.yaml",
                                   "search_overrides": {"search.trials": 3}}])  # fmt: skip
    table = run_suite(path, results_dir=tmp_path / "r")
    row = table.iloc[0]
    assert row["baseline_trials"] == 1 and row["search_trials"] == 3
    assert 0 < row["baseline_test_accuracy"] <= 1 and 0 < row["search_test_accuracy"] <= 1
    assert row["baseline_params"] == 4 * 10 + (4 * 4 * 4 * 8 + 8) + (8 * 10 + 10)
    assert row["search_cpu_s"] > 0 and row["search_gpu_s"] == 0
    md = (tmp_path / "r" / "bench" / "tiny.md").read_text()
    assert "baseline test acc" in md and "| digits" in md and " pt" in md
    assert pd.read_parquet(tmp_path / "r" / "bench" / "tiny.parquet").equals(table)
