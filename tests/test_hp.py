"""harness' `hp`: KerasTuner's declarations, sampled by a real Optuna study, replayed, defaulted."""

from __future__ import annotations

import optuna
import pytest

from harness._spec.hp import HyperParameterError, default_hp, replaying_hp, sampling_hp


def declare(hp):
    """A build's declarations, KerasTuner style: a conditional depth, per-layer widths, a scope."""
    layers = hp.Int("layers", 1, 3)
    widths = [hp.Int(f"units_{i}", 8, 64, step=8) for i in range(layers)]
    kind = hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", "sgd"):
        momentum = hp.Float("momentum", 0.5, 0.99)
    lr = hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Fixed("activation", "relu")
    bn = hp.Boolean("batch_norm")
    return layers, widths, kind, momentum, lr, bn


def test_an_optuna_study_samples_only_the_active_hyperparameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(30):
        trial = study.ask()
        hp = sampling_hp(trial)
        layers, widths, kind, momentum, lr, bn = declare(hp)
        seen.append((layers, kind))
        assert set(trial.params) == {"layers", *(f"units_{i}" for i in range(layers)), "optimizer", "lr",
                                     "batch_norm", *(["momentum"] if kind == "sgd" else [])}  # fmt: skip
        assert (momentum is None) == (kind == "adam") and all(w % 8 == 0 and 8 <= w <= 64 for w in widths)
        assert 1e-4 <= lr <= 1e-1 and isinstance(bn, bool)
        assert hp.values == {**trial.params, "activation": "relu"}  # fixed values recorded, not sampled
        study.tell(trial, 0.5)
    assert {layers for layers, _ in seen} == {1, 2, 3} and {kind for _, kind in seen} == {"adam", "sgd"}


def test_the_worker_replays_the_driver_s_values_and_defaults_give_the_first_model():
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask()
    driver = sampling_hp(trial)
    sampled = declare(driver)
    worker = replaying_hp(driver.values)
    assert declare(worker) == sampled and worker.values == driver.values
    assert declare(default_hp()) == (1, [8], "adam", None, 1e-4, False)


def test_a_build_that_asks_for_something_else_in_the_worker_fails_naming_it():
    hp = replaying_hp({"layers": 2})
    with pytest.raises(HyperParameterError, match=r"read hp 'units', which the search did not sample"):
        hp.Int("units", 8, 64)


@pytest.mark.parametrize(
    ("declaration", "says"),
    [
        (lambda hp: hp.Int("n", 5, 1), "min_value must be <= max_value"),
        (lambda hp: hp.Int("n", 1.5, 3), "min_value must be an integer"),
        (lambda hp: hp.Float("lr", 0.0, 1.0, sampling="log"), "log sampling needs min_value > 0"),
        (lambda hp: hp.Float("lr", 1e-3, 1.0, sampling="reverse_log"), "sampling must be 'linear' or 'log'"),
        (lambda hp: hp.Float("x", 0.0, float("inf")), "max_value must be a finite number"),
        (lambda hp: hp.Choice("c", []), "values must be a non-empty list"),
        (lambda hp: hp.Choice("c", ["a", "a"]), "values must be distinct"),
        (lambda hp: hp.Choice("c", ["a"], default="b"), "default 'b' is not among"),
        (lambda hp: (hp.Int("n", 1, 3), hp.Int("n", 1, 4)), "'n' is declared twice, differently"),
        (lambda hp: hp.Int("hp name", 1, 3), "use a letter, then up to 63 letters"),
        (lambda hp: hp.Int("trial_number", 1, 3), "are the search's own"),
        (lambda hp: hp.Int("n", 1, 3, parent_name="missing", parent_values=[1]), "parent 'missing' must be"),
        (lambda hp: hp.get("nothing"), "no active hyperparameter of that name"),
    ],
)
def test_bad_declarations_are_the_user_s_errors_naming_the_hyperparameter(declaration, says):
    with pytest.raises(HyperParameterError, match=says):
        declaration(default_hp())


def test_a_name_declared_again_alike_reads_the_same_value():
    hp = sampling_hp(optuna.create_study().ask())
    assert hp.Int("n", 1, 100) == hp.Int("n", 1, 100) and hp["n"] == hp.get("n") and "n" in hp
