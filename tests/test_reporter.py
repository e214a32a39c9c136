"""The Keras callback that reports epochs: real training on digits, reports collected in a list."""

from __future__ import annotations

import keras
import pytest

from harness._data import load_dataset
from harness._errors import StopRequested
from harness._spec.spec import DatasetSpec
from harness._trial.model import build_model, compile_model
from harness._trial.reporter import ReportCallback, validate_mid_epoch


def fit(stop_after_batches: int | None = None, epochs: int = 2) -> list[tuple]:
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    config = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "learning_rate": 0.01}
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    seen: list[tuple] = []
    calls = iter(range(10**6))
    callback = ReportCallback(
        study="s", trial_id="t", on_epoch=lambda *args: seen.append(args),
        stop_requested=lambda: stop_after_batches is not None and next(calls) >= stop_after_batches,
    )  # fmt: skip
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
              batch_size=64, callbacks=[callback], verbose=0)  # fmt: skip
    return seen


def test_each_epoch_is_handed_over_with_its_record_and_the_last_is_marked():
    seen = fit(epochs=3)
    assert [record.epoch for record, _, _ in seen] == [1, 2, 3]
    assert [last for _, _, last in seen] == [False, False, True]
    for record, logs, _ in seen:
        assert record.val_accuracy == pytest.approx(logs["val_accuracy"]) and record.study == "s"
        assert record.learning_rate == pytest.approx(0.01) and record.epoch_s > 0
        assert 0 <= logs["accuracy"] <= 1 and logs["loss"] > 0


def test_early_stopping_marks_its_epoch_as_the_last():
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    config = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "learning_rate": 1e-6}
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    seen: list[tuple] = []
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    reporter = ReportCallback(study="s", trial_id="t", on_epoch=lambda *a: seen.append(a),
                              stop_requested=lambda: False)  # fmt: skip
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=5,
              callbacks=[stopper, reporter], verbose=0)  # fmt: skip
    assert len(seen) == 2 and [last for *_, last in seen] == [False, True]


def test_a_stop_request_ends_the_fit_mid_epoch():
    with pytest.raises(StopRequested):
        fit(stop_after_batches=1)
    keras.backend.clear_session()


def _fit_with_slices(slices: dict[int, float]) -> tuple[list[tuple], list[tuple], list]:
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    config = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "learning_rate": 0.01}
    keras.utils.set_random_seed(7)
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    epochs: list[tuple] = []
    parts: list[tuple] = []
    validation = (data.x_val, data.y_val)
    callback = ReportCallback(
        study="s", trial_id="t", on_epoch=lambda *args: epochs.append(args), stop_requested=lambda: False,
        slices=slices, on_slice=lambda part: parts.append((part, validate_mid_epoch(model, validation))),
    )  # fmt: skip
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
              batch_size=64, callbacks=[callback], verbose=0, shuffle=False)  # fmt: skip
    return epochs, parts, model.get_weights()


def test_first_epoch_slices_are_validated_without_changing_training():
    """Validation inside the first epoch reports at the batches asked for, and leaves the epoch's
    training metrics and the trained weights exactly as a fit without it would."""
    plain_epochs, none, plain_weights = _fit_with_slices({})
    epochs, parts, weights = _fit_with_slices({2: 1 / 9, 6: 1 / 3})
    assert none == [] and [fraction for fraction, _ in parts] == [1 / 9, 1 / 3]  # the first epoch only
    for _, val in parts:
        assert 0 <= val["accuracy"] <= 1 and val["loss"] > 0
    assert parts[0][1] != parts[1][1]  # the model trained between them
    assert [logs for _, logs, _ in epochs] == [logs for _, logs, _ in plain_epochs]
    assert all((a == b).all() for a, b in zip(weights, plain_weights, strict=True))
