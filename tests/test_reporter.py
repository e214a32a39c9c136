"""The Keras callback that reports epochs: real training on digits, reports collected in a list."""

from __future__ import annotations

from datetime import UTC, datetime

import keras
import pytest

from harness._data import load_dataset
from harness._model import build_model, compile_model
from harness._record import REPORT_KEY, EpochReport, Provenance
from harness._reporter import ReportCallback
from harness._spec import DatasetSpec

PROVENANCE = Provenance(backend="tensorflow", backend_version="2", keras_version="3", harness_version="0",
                        device="cpu", node="n", gpu_ids="")  # fmt: skip


def fit(stop_after_batches: int | None = None) -> list[dict]:
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    config = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "learning_rate": 0.01}
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    reports: list[dict] = []
    calls = iter(range(10**6))
    callback = ReportCallback(
        study="s", trial_id="t", params=model.count_params(), provenance=PROVENANCE,
        started_at=datetime.now(UTC), report=reports.append,
        stop_requested=lambda: stop_after_batches is not None and next(calls) >= stop_after_batches,
    )  # fmt: skip
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
              batch_size=64, callbacks=[callback], verbose=0)  # fmt: skip
    return reports


def test_each_epoch_is_reported_with_its_record():
    reports = fit()
    assert [r["epoch"] for r in reports] == [1, 2]
    for r in reports:
        report = r[REPORT_KEY]
        assert isinstance(report, EpochReport) and report.provenance == PROVENANCE and report.params > 0
        assert report.epoch.val_accuracy == pytest.approx(r["val_accuracy"])
        assert report.epoch.learning_rate == pytest.approx(0.01) and report.epoch.epoch_s > 0
        assert 0 <= r["accuracy"] <= 1 and r["loss"] > 0


def test_a_stop_request_ends_the_fit_mid_epoch():
    with pytest.raises(SystemExit):
        fit(stop_after_batches=1)
    keras.backend.clear_session()
