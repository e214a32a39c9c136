"""A trial's resumable state: the model with its optimizer, the epochs and EarlyStopping's counters."""

from __future__ import annotations

from datetime import UTC, datetime

import keras
import numpy as np

from harness._data import load_dataset
from harness._results.record import EpochRecord
from harness._spec.spec import DatasetSpec
from harness._trial.checkpoint import Progress, ResumableEarlyStopping, load, save
from harness._trial.model import build_model, compile_model


def test_save_and_load_round_trip_continues_training(tmp_path):
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    config = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "augment_shift": 0.1}
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    stopper = ResumableEarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
              callbacks=[stopper], verbose=0)  # fmt: skip
    epochs = [EpochRecord(study="s", trial_id="t", epoch=i, loss=1.0 / i, val_loss=float("nan"),
                          finished_at=datetime.now(UTC)) for i in (1, 2)]  # fmt: skip
    progress = Progress(started_at=datetime(2026, 1, 1, tzinfo=UTC), train_time_s=3.5, epochs=epochs,
                        early_stopping=stopper.state())  # fmt: skip
    save(tmp_path, model, progress, stopper.best_weights)
    restored, back, weights = load(tmp_path)
    assert back.started_at == progress.started_at and back.train_time_s == 3.5
    assert [e.epoch for e in back.epochs] == [1, 2] and back.epochs[0].val_loss is None  # NaN as null
    assert back.early_stopping == stopper.state()
    assert all(np.array_equal(a, b) for a, b in zip(weights, stopper.best_weights, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(restored.get_weights(), model.get_weights(), strict=True))
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) > 0
    resumed = ResumableEarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True,
                                     resume=back.early_stopping, best_weights=weights)  # fmt: skip
    restored.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), initial_epoch=2,
                 epochs=3, callbacks=[resumed], verbose=0)  # fmt: skip
    assert resumed.best_epoch >= stopper.best_epoch  # counts on from the first fit, not from zero
    assert resumed.best is not None and resumed.best <= stopper.best
    keras.backend.clear_session()
