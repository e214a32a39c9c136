"""Trial helpers: which epoch's weights a trial keeps, seeds, worker environment."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from harness.trial import selected_epoch, trial_seed, worker_env  # noqa: E402


def stopper_after(values: list[float], **kwargs) -> keras.callbacks.EarlyStopping:
    """A real EarlyStopping fed these val_loss values, as fit would."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True, **kwargs)
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, value in enumerate(values):
        stopper.on_epoch_end(epoch, {"val_loss": value})
    return stopper


def test_selected_epoch_follows_early_stopping_min_delta():
    values = [1.0, 0.995, 0.99]  # improvements below min_delta do not count
    history = {"loss": values, "val_loss": values}
    assert selected_epoch(history, stopper_after(values, min_delta=0.01, patience=5)) == 0
    assert selected_epoch(history, stopper_after(values, patience=5)) == 2


def test_selected_epoch_is_the_last_without_restored_weights():
    history = {"loss": [3.0, 2.0, 1.0], "val_loss": [0.5, 0.9, 0.8]}
    assert selected_epoch(history, None) == 2
    stopper = stopper_after([0.5, 0.9, 0.8], patience=5)
    stopper.restore_best_weights = False
    assert selected_epoch(history, stopper) == 2


def test_trial_seed_is_repeatable_and_depends_on_config_and_seed():
    config = {"filters": 8, "trial_number": 0}
    assert trial_seed(0, config) == trial_seed(0, dict(config))
    assert trial_seed(0, config) != trial_seed(1, config)
    assert trial_seed(0, config) != trial_seed(0, {**config, "trial_number": 1})
    assert 0 <= trial_seed(123, config) < 2**31


def test_worker_env_sets_backend_threads_and_gpu_sharing():
    env = worker_env("jax", 2)
    assert env["KERAS_BACKEND"] == "jax" and env["OMP_NUM_THREADS"] == "2"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
