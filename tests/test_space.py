"""harness._spec.space: define-by-run sampling with a real Optuna study, and the vocabulary."""

from __future__ import annotations

import math

import optuna
import pytest

from harness._spec.space import (
    MAX_BLOCKS,
    MAX_DENSE,
    PARAMETERS,
    base_name,
    column_names,
    resolve,
    suggest,
    validate_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

ASKS = 50

SPACE = validate_space(
    {
        "conv_blocks": {"type": "int", "low": 1, "high": 4},
        "filters": {"type": "categorical", "choices": [8, 16, 32], "per_block": True},
        "kernel_size": [3, 5, 7, 3],  # fixed per block
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1, "per_block": True},
        "pool_size": {"type": "int", "low": 1, "high": 3, "per_block": True},
        "batch_norm": {"type": "categorical", "choices": [False, True]},
        "dense_units": {"type": "int", "low": 16, "high": 128, "step": 16},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
        "optimizer": "sgd",
        "convs_per_block": 2,
    }
)


def study() -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def sample(space, n: int = ASKS) -> list[tuple[dict, dict]]:
    """(sampled params, returned fixed values) for n asks of a fresh study."""
    s = study()
    out = []
    for _ in range(n):
        trial = s.ask()
        fixed = suggest(trial, space)
        out.append((dict(trial.params), fixed))
        s.tell(trial, 0.0)
    return out


@pytest.fixture(scope="module")
def samples():
    return sample(SPACE)


def test_per_block_keys_follow_sampled_conv_blocks(samples):
    for params, fixed in samples:
        config = {**params, **fixed}
        n = config["conv_blocks"]
        assert 1 <= n <= 4
        for name in ("filters", "dropout", "pool_size", "kernel_size"):
            assert name not in config  # per-block entries only ever use numbered keys
            assert [f"{name}_{i}" in config for i in range(1, n + 1)] == [True] * n, config
            beyond = [f"{name}_{i}" for i in range(n + 1, MAX_BLOCKS + 2)]
            assert not any(k in config for k in beyond), config


def test_conv_blocks_varies_so_conditionality_is_exercised(samples):
    assert {params["conv_blocks"] for params, _ in samples} == {1, 2, 3, 4}


def test_returns_fixed_values_only(samples):
    for params, fixed in samples:
        n = params["conv_blocks"]
        expected = {"optimizer": "sgd", "convs_per_block": 2, "dense_layers": 1}  # default count
        expected |= {f"kernel_size_{i}": [3, 5, 7, 3][i - 1] for i in range(1, n + 1)}
        assert fixed == expected
        assert not set(fixed) & set(params)  # sampled values come from the trial


def test_sampled_values_respect_bounds_steps_and_choices(samples):
    seen_filters, seen_bn = set(), set()
    for params, _ in samples:
        n = params["conv_blocks"]
        for i in range(1, n + 1):
            assert params[f"filters_{i}"] in (8, 16, 32)
            seen_filters.add(params[f"filters_{i}"])
            d = params[f"dropout_{i}"]
            assert 0.0 <= d <= 0.5
            assert math.isclose(d * 10, round(d * 10), abs_tol=1e-9), d
            assert params[f"pool_size_{i}"] in (1, 2, 3)
        assert params["batch_norm"] in (False, True)
        seen_bn.add(params["batch_norm"])
        assert 16 <= params["dense_units"] <= 128 and params["dense_units"] % 16 == 0
        assert 1e-4 <= params["learning_rate"] <= 1e-2
        assert 16 <= params["batch_size"] <= 256 and isinstance(params["batch_size"], int)
    assert seen_filters == {8, 16, 32}
    assert seen_bn == {False, True}


def test_log_scale_spreads_over_decades(samples):
    lrs = [params["learning_rate"] for params, _ in samples]
    # Log-uniform over [1e-4, 1e-2]: about half the draws fall below 1e-3 (uniform: ~9%).
    below = sum(lr < 1e-3 for lr in lrs)
    assert below >= ASKS // 4, sorted(lrs)


def test_fixed_per_block_list_expands_per_block():
    space = validate_space({"conv_blocks": 3, "filters": [4, 8, 16], "padding": ["same"] * 3})
    trial = study().ask()
    fixed = suggest(trial, space)
    assert trial.params == {}
    assert fixed == {
        "conv_blocks": 3, "dense_layers": 1,
        "filters_1": 4, "filters_2": 8, "filters_3": 16,
        "padding_1": "same", "padding_2": "same", "padding_3": "same",
    }  # fmt: skip


def test_fixed_list_longer_than_sampled_blocks_is_cut():
    space = validate_space({"conv_blocks": {"type": "categorical", "choices": [1, 2]},
                            "filters": [4, 8]})  # fmt: skip
    for params, fixed in sample(space, 20):
        n = params["conv_blocks"]
        assert {k: v for k, v in fixed.items() if k.startswith("filters")} == {
            f"filters_{i}": [4, 8][i - 1] for i in range(1, n + 1)
        }


def test_shared_distribution_of_per_block_parameter_gives_one_key():
    space = validate_space({"conv_blocks": 3, "filters": {"type": "categorical", "choices": [8]}})
    trial = study().ask()
    fixed = suggest(trial, space)
    assert trial.params == {"filters": 8}
    assert fixed == {"conv_blocks": 3, "dense_layers": 1}


def test_default_conv_blocks_when_absent():
    space = validate_space({"filters": {"type": "int", "low": 4, "high": 8, "per_block": True}})
    trial = study().ask()
    fixed = suggest(trial, space)
    default = PARAMETERS["conv_blocks"].default
    assert fixed == {"conv_blocks": default, "dense_layers": PARAMETERS["dense_layers"].default}
    assert sorted(trial.params) == [f"filters_{i}" for i in range(1, default + 1)]


def test_resolve_prefers_block_value_then_shared_then_default():
    config = {"filters_2": 64, "filters": 16}
    assert resolve(config, "filters", 2) == 64
    assert resolve(config, "filters", 1) == 16
    assert resolve({}, "filters", 1) == PARAMETERS["filters"].default
    assert resolve({}, "optimizer") == "adam"


def test_column_names():
    names = column_names()
    assert "conv_blocks" in names
    assert "filters" in names and "filters_1" in names and "filters_8" in names
    assert f"filters_{MAX_BLOCKS + 1}" not in names
    assert "optimizer" in names and "optimizer_1" not in names  # not per-block
    assert len(names) == len(set(names))
    assert names == column_names()  # stable order
    per_block = [n for n, p in PARAMETERS.items() if p.group == "conv_blocks"]
    per_dense = [n for n, p in PARAMETERS.items() if p.group == "dense_layers"]
    assert len(names) == len(PARAMETERS) + MAX_BLOCKS * len(per_block) + MAX_DENSE * len(per_dense)
    assert "dense_units_4" in names and "dense_units_5" not in names


@pytest.mark.parametrize(
    ("key", "base"),
    [
        ("filters_2", "filters"),
        ("filters_8", "filters"),
        ("filters", "filters"),
        ("kernel_size_3", "kernel_size"),
        ("conv_blocks", "conv_blocks"),
        ("dense_units", "dense_units"),
        ("filterz_2", "filterz_2"),  # not a known parameter: left alone
    ],
)
def test_base_name(key, base):
    assert base_name(key) == base
