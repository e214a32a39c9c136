"""Known configurations inside a space: what Optuna enqueues, and clear errors outside it."""

from __future__ import annotations

import pytest

from harness import load_spec
from harness._spec.points import distributions, point_params, probe_point, row_point
from harness._spec.space import validate_space

SPACE = validate_space({
    "conv_blocks": {"type": "int", "low": 1, "high": 3},
    "filters": {"type": "categorical", "choices": [16, 32, 64], "per_block": True},
    "kernel_size": 3,
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
})  # fmt: skip


def test_a_point_becomes_the_values_define_by_run_would_sample():
    point = {"conv_blocks": 2, "filters": [32, 64], "learning_rate": "1e-3", "dropout": 0.25}
    assert point_params(SPACE, point) == {
        "conv_blocks": 2, "filters_1": 32, "filters_2": 64, "dropout": 0.25,
        "learning_rate": 1e-3, "optimizer": "adam",
    }  # fmt: skip
    # one value for every block, and defaults for what the point leaves out
    assert point_params(SPACE, {"filters": 16, "dropout": 0.0})["filters_2"] == 16


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"filters": 48, "dropout": 0.0}, "filters: 48 is outside the space (choices [16, 32, 64])"),
        ({"dropout": 0.6}, "dropout: 0.6 is outside the space (float from 0.0 to 0.5, step 0.05)"),
        ({"dropout": 0.12}, "dropout: 0.12 is outside"),
        ({"dropout": 0.0, "kernel_size": 5}, "kernel_size: 5 differs from the space's fixed value 3"),
        ({"dropout": 0.0, "head": "global_avg"}, "head: the space has no head"),
        ({"dropout": 0.0, "filterz": 8}, "unknown parameter 'filterz'"),
        ({"dropout": 0.0, "conv_blocks": 3, "filters": [16, 32]}, "2 per-block values for conv_blocks=3"),
        ({"dropout": 0.0, "optimizer": "adamw"}, "optimizer: 'adamw' is outside"),
        ({"dropout": 0.0, "conv_blocks": True}, "conv_blocks: True is outside"),
    ],
)
def test_points_outside_the_space_name_the_parameter(point, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        point_params(SPACE, point)


def test_defaults_that_fit_and_parameters_at_their_default():
    space = validate_space({"learning_rate": {"type": "float", "low": 3e-3, "high": 1e-2}})
    with pytest.raises(ValueError, match="learning_rate: 0.001 is outside"):
        point_params(space, {})  # the default 1e-3 is not in the space
    # head at its default builds the same model: accepted; the fixed groups need no values
    assert point_params(space, {"learning_rate": 5e-3, "head": "flatten"}) == {"learning_rate": 5e-3}


def test_rows_fold_back_into_points_with_distributions():
    point = row_point({"conv_blocks": 2, "filters_1": 16, "filters_2": 64, "filters_3": None,
                       "dropout": 0.1, "learning_rate": 2e-3, "optimizer": "sgd"})  # fmt: skip
    assert point["filters"] == [16, 64] and "filters_3" not in point
    params = point_params(SPACE, point)
    dists = distributions(SPACE, params)
    assert set(dists) == set(params)
    assert dists["learning_rate"].log and dists["filters_2"].choices == (16, 32, 64)
    assert dists["dropout"].step == 0.05


def test_the_probe_is_the_space_s_cheapest_model_trained_the_default_way():
    space = validate_space({
        "conv_blocks": {"type": "int", "low": 1, "high": 3},
        "filters": {"type": "categorical", "choices": [64, 16, 32], "per_block": True},
        "kernel_size": {"type": "categorical", "choices": [5, 3], "per_block": True},
        "dense_units": {"type": "int", "low": 24, "high": 256, "step": 8},
        "dropout": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.05},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "learning_rate": {"type": "float", "low": 1e-2, "high": 1.0, "log": True},
        "batch_size": {"type": "int", "low": 32, "high": 100, "step": 32},
        "dense_layers": 1,
    })  # fmt: skip
    probe = probe_point(space)
    assert probe == {
        "conv_blocks": 1, "filters": 16, "kernel_size": 3, "dense_units": 24,  # the cheap ends
        "batch_size": 96,  # the largest batch on the grid: fewest steps per epoch
        "optimizer": "adam",  # the default, where the space has it
        "dropout": 0.3,  # the default (0) is outside the range: its middle, on the grid
        "learning_rate": pytest.approx(0.1),  # likewise, the log-middle
    }  # fmt: skip
    point_params(space, probe)  # inside the space


def test_a_cold_search_probes_first_unless_told_not_to_or_something_else_leads(write_spec):
    off = load_spec(write_spec())  # the fixture's searches say `probe: false`
    assert off.first_points == []
    probing = load_spec(write_spec(search={**off.search.model_dump(), "probe": None}))  # null: on
    lr = pytest.approx((3e-3 * 1e-2) ** 0.5)  # the default 1e-3 is outside the range: its log-middle
    assert probing.first_points == [{"conv_blocks": 1, "filters": 4, "learning_rate": lr}]
    asked = probing.with_overrides(**{"search.probe": True})
    assert asked.first_points == probing.first_points
    assert len({probing.spec_hash(), off.spec_hash(), asked.spec_hash()}) == 3  # each says what it is
    point = {"conv_blocks": 2, "filters": [8, 8], "learning_rate": 0.005}
    started = probing.with_overrides(**{"search.start_from": [point]})
    assert started.first_points == [point]  # the user's start points lead instead
