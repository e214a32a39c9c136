"""The dry run: every check of a search, and the first model, with nothing trained or written."""

from __future__ import annotations

import pytest

from harness import ArgumentError, dry_run, load_spec


def test_dry_run_builds_the_first_model(write_spec, tmp_path):
    result = dry_run(load_spec(write_spec()))
    assert result.input_shape == (8, 8, 1) and result.class_names == [str(i) for i in range(10)]
    assert result.first_config["conv_blocks"] == 1 and result.first_config["filters_1"] == 4
    assert result.params > 0 and any("Total params" in line for line in result.summary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]


def test_dry_run_checks_the_backend(write_spec):
    with pytest.raises(ArgumentError, match="Received: backend='theano'"):
        dry_run(load_spec(write_spec()), backend="theano")


def test_dry_run_shows_the_first_start_point(write_spec):
    search = {"start_from": [{"conv_blocks": 2, "filters": [8, 4], "learning_rate": 0.005}]}
    result = dry_run(load_spec(write_spec(search=search)))
    assert result.first_config["conv_blocks"] == 2
    assert (result.first_config["filters_1"], result.first_config["filters_2"]) == (8, 4)
    assert result.first_config["learning_rate"] == 0.005


def test_dry_run_says_when_the_first_model_breaks_a_parameter_limit(write_spec):
    assert dry_run(load_spec(write_spec())).feasible is None  # no constraints
    result = dry_run(load_spec(write_spec(constraints={"params": {"max": 10}})))
    assert result.feasible is False and result.params > 10
    assert dry_run(load_spec(write_spec(constraints={"params": {"max": 10**6}}))).feasible is True
