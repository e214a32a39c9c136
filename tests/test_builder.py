"""Model builders: harness' CNN and a user's build(hp), behind one seam (real Optuna, real Keras)."""

from __future__ import annotations

import optuna
import pytest
import user_models

from harness import SpecError, TrialFailed
from harness._spec.space import BUILD_ERROR, validate_space
from harness._trial.builder import CnnBuilder, FunctionBuilder, make_builder

SHAPE, CLASSES = (8, 8, 1), 10


def sampled(builder, seed=0, n=12):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append((builder.sample(trial), dict(trial.params)))
        study.tell(trial, 0.5)
    return configs


def test_a_build_function_is_sampled_on_the_driver_and_rebuilt_alike_in_the_worker():
    builder = FunctionBuilder.of(user_models.residual_cnn)
    assert builder.label == "user_models:residual_cnn" and builder.record_label == builder.label
    for config, params in sampled(builder):
        assert config == params  # every value read was sampled (no fixed ones here)
        assert ("momentum" in config) == (config["optimizer"] == "sgd")  # conditional: absent otherwise
        model = builder.build(config, SHAPE, CLASSES, epochs=1, steps_per_epoch=1)
        assert len([la for la in model.layers if la.name.endswith("_a")]) == config["blocks"]
        assert model.optimizer.__class__.__name__.lower() == config["optimizer"]
    assert builder.batch_size({}) == 32 and builder.batch_size({"batch_size": 8}) == 8


def test_an_uncompiled_model_is_compiled_with_adam_and_sparse_labels():
    model = FunctionBuilder.of("user_models:uncompiled").build(
        {"units": 8}, SHAPE, CLASSES, epochs=1, steps_per_epoch=1
    )
    assert model.compiled and model.optimizer.__class__.__name__ == "Adam"
    assert model.loss == "sparse_categorical_crossentropy"


def test_a_hypermodel_object_builds_through_its_build_method():
    builder = make_builder({}, user_models.HyperModelLike())
    assert builder.label == "user_models:HyperModelLike"
    assert builder.build({"units": 9}, SHAPE, CLASSES, epochs=1, steps_per_epoch=1).count_params() > 0


def test_a_build_that_fails_for_some_values_fails_those_trials_as_the_user_s_error():
    builder = FunctionBuilder.of(user_models.wide_fails)
    configs = [config for config, _ in sampled(builder, n=10)]
    failed = [c for c in configs if BUILD_ERROR in c]
    assert failed and all(c["width"] == 1024 for c in failed)  # the values it failed with stay recorded
    assert "ValueError: 1024 units are too many" in failed[0][BUILD_ERROR]
    assert "user_models.py:" in failed[0][BUILD_ERROR] and "in wide_fails" in failed[0][BUILD_ERROR]
    with pytest.raises(TrialFailed, match="1024 units are too many"):  # the worker fails it, with its row
        builder.build(failed[0], SHAPE, CLASSES, epochs=1, steps_per_epoch=1)


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        (
            "user_models:always_fails",
            r"failed with its hyperparameters' defaults: RuntimeError: the user's build",
        ),
        ("user_models:not_a_model", r"must return a keras.Model; it returned str"),
        ("user_models:missing", r"cannot be imported \(AttributeError"),
        (
            "no_such_module:build",
            r"cannot be imported \(ModuleNotFoundError.*importable here and on every Ray",
        ),
    ],
)
def test_a_build_that_cannot_run_at_all_stops_before_the_search(reference, says):
    with pytest.raises(SpecError, match=says):
        FunctionBuilder.of(reference).check()


def test_earlier_values_replay_into_the_build_s_own_distributions():
    builder = FunctionBuilder.of(user_models.residual_cnn)
    values = {"width": 16, "blocks": 2, "learning_rate": 0.01, "optimizer": "sgd", "momentum": 0.9}
    params, dists = builder.trial_params(values)
    assert params == values and set(dists) == set(values)
    assert dists["blocks"] == optuna.distributions.IntDistribution(1, 3)
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-3, 3e-2, log=True)
    with pytest.raises(ValueError, match="do not build"):
        builder.trial_params({"width": 16})  # from another model: not this space


def test_the_cnn_builder_is_the_yaml_space_behind_the_same_seam():
    builder = CnnBuilder(validate_space({"conv_blocks": 1, "filters": {"type": "int", "low": 4, "high": 8}}))
    assert builder.record_label is None and builder.first_values()["filters"] == 4
    model = builder.build({"conv_blocks": 1, "filters": 8, "dense_units": 16}, SHAPE, CLASSES, epochs=1,
                          steps_per_epoch=1)  # fmt: skip
    assert model.compiled and builder.batch_size({}) == 64
