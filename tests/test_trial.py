"""The trial runner, without Ray (a channel that keeps its reports), and its helpers: which
epoch's weights a trial keeps, seeds, worker environment, whose fault."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import keras
import pytest

from harness import ErrorKind, TrialFailed, TrialStatus
from harness._data import load_dataset
from harness._results.record import REPORT_KEY, EpochReport, FinalReport
from harness._spec.spec import DatasetSpec, Objective
from harness._trial.runner import TrialContext, TrialRunner, classify, selected_epoch, trial_seed
from harness._trial.worker import jax_cache_dir, worker_env


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


def test_worker_env_sets_backend_threads_and_a_node_local_compile_cache(monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    env = worker_env("jax", 2)
    assert env["KERAS_BACKEND"] == "jax" and env["OMP_NUM_THREADS"] == "2"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    cache = Path(env["JAX_COMPILATION_CACHE_DIR"])
    assert cache.parent == Path(tempfile.gettempdir()) and cache.name == f"harness-jax-cache-{os.getuid()}"
    assert cache.stat().st_uid == os.getuid() and stat.S_IMODE(cache.stat().st_mode) == 0o700
    gpu = worker_env("jax", 2, 0.5)  # half a card: JAX's pool may take 0.9 of that (test_devices applies it)
    assert gpu["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45" and gpu["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in worker_env("tensorflow", 2, 0.5)  # TF's cap is an API call


def raised(fn) -> Exception:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_classify_keeps_user_failures_and_harness_defects_apart():
    keras_error = raised(lambda: keras.layers.Dense(-1))  # raised inside Keras
    assert classify(keras_error, in_training=True) is ErrorKind.USER
    assert classify(keras_error, in_training=False) is ErrorKind.INTERNAL  # e.g. while saving
    assert classify(TrialFailed("NaN"), in_training=False) is ErrorKind.USER
    own_bug = raised(lambda: {}["missing"])  # raised in harness' (here: this) code
    assert classify(own_bug, in_training=True) is ErrorKind.INTERNAL


@pytest.fixture
def context(tmp_path) -> TrialContext:
    return TrialContext(
        study="s", run_id="r", dataset="digits", objectives=(Objective(),), spec_hash="h",
        models_dir=str(tmp_path / "models"), max_epochs=1, seed=0, early_stopping=None,
        backend="tensorflow",
    )  # fmt: skip


class Kept:
    """A runner's channel that keeps every report, and a copy of each checkpoint's files."""

    def __init__(self, tmp_path: Path, restore: Path | None = None, stop_after: int | None = None) -> None:
        self.reports: list[dict] = []
        self.checkpoints: list[Path | None] = []
        self.tmp_path, self.restore, self.stop_after, self.asked = tmp_path, restore, stop_after, 0

    def report(self, metrics, checkpoint=None):
        self.reports.append(metrics)
        kept = None
        if checkpoint is not None:
            kept = self.tmp_path / f"ckpt-{len(self.reports)}"
            shutil.copytree(checkpoint, kept)
        self.checkpoints.append(kept)

    def stop_requested(self) -> bool:
        self.asked += 1
        return self.stop_after is not None and self.asked > self.stop_after

    @contextmanager
    def restored(self):
        yield self.restore

    @property
    def payloads(self) -> list:
        return [r[REPORT_KEY] for r in self.reports]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DatasetSpec(name="digits"), seed=0)


SMALL = {"conv_blocks": 1, "filters": 4, "dense_units": 8, "learning_rate": 0.01}


def test_a_run_reports_each_epoch_then_the_evaluated_trial_with_its_last_epoch(context, digits, tmp_path):
    """The last epoch's report waits for the test evaluation and the saved model, after `fit`."""
    ctx = replace(context, max_epochs=3)
    channel = Kept(tmp_path)
    final = TrialRunner(SMALL, digits, ctx, "t0", channel, cpus=1).run()
    kinds = [type(p) for p in channel.payloads]
    assert kinds == [EpochReport, EpochReport, FinalReport] and channel.payloads[-1] is final
    assert all(c is not None for c in channel.checkpoints)  # every epoch, the last included
    assert [r["epoch"] for r in channel.reports] == [1, 2, 3] and final.epoch.epoch == 3
    record = final.record
    assert record.status is TrialStatus.COMPLETED and record.epochs_run == 3 and 0 < record.test_accuracy <= 1
    assert Path(ctx.models_dir, "t0.keras").is_file() and record.evaluate_s > 0
    assert channel.reports[-1]["val_accuracy"] == record.val_accuracy  # the row's value, not the epoch's


def test_a_run_continues_from_the_checkpoint_its_channel_restores(context, digits, tmp_path):
    ctx = replace(context, max_epochs=2)
    first = Kept(tmp_path / "a")
    TrialRunner(SMALL, digits, replace(ctx, max_epochs=1), "t0", first, cpus=1).run()
    resumed = Kept(tmp_path / "b", restore=first.checkpoints[-1])
    final = TrialRunner(SMALL, digits, ctx, "t0", resumed, cpus=1).run()
    assert [r["epoch"] for r in resumed.reports] == [2]  # only the epoch it had left
    assert final.record.epochs_run == 2 and [e.epoch for e in final.epochs] == [1, 2]


def test_a_stop_request_ends_the_run_mid_epoch_with_no_final_report(context, digits, tmp_path):
    channel = Kept(tmp_path, stop_after=0)
    assert TrialRunner(SMALL, digits, replace(context, max_epochs=3), "t0", channel, cpus=1).run() is None
    assert channel.reports == [] and not Path(context.models_dir, "t0.keras").exists()


def test_a_defect_in_harness_code_is_an_internal_failure_with_traceback(context, digits, tmp_path):
    """A config no spec can produce makes harness' own model builder fail, as a bug would."""
    channel = Kept(tmp_path)
    report = TrialRunner({"conv_blocks": "two"}, digits, context, "t1", channel, cpus=1).run()
    assert channel.payloads == [report]  # sent, alone
    record = report.record
    assert record.status is TrialStatus.FAILED and record.error_kind is ErrorKind.INTERNAL
    assert "ValueError" in record.error and "harness/_trial/model.py" in report.traceback
    assert record.finished_at is not None and record.total_time_s > 0 and record.backend == "tensorflow"


def test_an_impossible_architecture_is_a_user_failure_without_traceback(context, digits, tmp_path):
    config = {"conv_blocks": 1, "padding": "valid", "kernel_size": 11}
    report = TrialRunner(config, digits, context, "t2", Kept(tmp_path), cpus=1).run()
    assert report.record.error_kind is ErrorKind.USER and report.traceback is None
    assert report.record.hyperparameters == {"conv_blocks": 1, "padding": "valid", "kernel_size": 11}


def test_a_jax_cache_others_can_write_is_never_used(tmp_path, monkeypatch):
    """Programs in the cache run as the trial: one planted at the predictable path is passed over."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"harness-jax-cache-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    chosen = Path(jax_cache_dir())
    assert chosen != planted and chosen.parent == tmp_path
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
