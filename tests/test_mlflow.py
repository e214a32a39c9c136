"""MLflow: each trial one run (params, per-epoch and final metrics, kept model), read back through
MLflow's own client from a real SQLite tracking store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import SMALL_SPACE, run_cli

from harness import load_curves, load_leaderboard
from harness._search.mlflow import TRIAL_TAG, MlflowLogger

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e .[mlflow])")
pytestmark = pytest.mark.slow


def _runs(uri: str, experiment: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return client.search_runs([found.experiment_id])


def test_each_trial_is_one_mlflow_run_with_its_params_curves_metrics_and_kept_model(tmp_path, write_spec):
    space = {
        **SMALL_SPACE,
        "conv_blocks": 1,
        "padding": "valid",
        "kernel_size": {"type": "categorical", "choices": [3, 11]},
    }  # 11 does not fit 8x8: fails
    path = write_spec(space=space, search={"trials": 4, "max_epochs": 2, "sampler": "random", "seed": 3,
                                           "scheduler": {"name": "none"}, "keep_models": 1})  # fmt: skip
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_cli("search", str(path), "--results", str(tmp_path / "r"), "--mlflow", uri, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    frame, curves = load_leaderboard(tmp_path / "r"), load_curves(tmp_path / "r")
    assert set(frame["status"]) >= {"completed", "failed"}
    runs = {run.data.tags[TRIAL_TAG]: run for run in _runs(uri, "t")}
    assert set(runs) == set(frame["trial_id"])  # one run per row, none extra
    client = mlflow.MlflowClient(tracking_uri=uri)
    for row in frame.itertuples():
        run = runs[row.trial_id]
        assert run.data.params["kernel_size"] == str(row.hp_kernel_size)
        assert run.info.status == {"completed": "FINISHED", "failed": "FAILED"}[row.status]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        want = curves[curves.trial_id == row.trial_id].sort_values("epoch")["val_accuracy"].tolist()
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(want)
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
        if isinstance(row.model_path, str):  # keep-top-k kept it
            assert run.data.metrics["test_accuracy"] == pytest.approx(row.test_accuracy)
            assert artifacts == [f"model/{row.trial_id}.keras"]
        else:
            assert artifacts == []
    assert frame["model_path"].notna().sum() == 1
    assert not (tmp_path / "mlruns").exists()  # nothing lands in the folder the search ran from
    assert list((tmp_path / "r" / "mlflow-artifacts").rglob("*.keras"))  # but under the results


def test_a_rewritten_trial_replaces_its_run(tmp_path, record):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MlflowLogger(uri, experiment="s")
    logger.check()
    first = record(trial_id="a", val_accuracy=0.5)
    logger.log(first, ())
    logger.log(replace(first, val_accuracy=0.75), ())  # a resumed trial's newer row
    (run,) = _runs(uri, "s")
    assert run.data.metrics["best_val_accuracy"] == 0.75


def test_an_unreachable_store_stops_the_search_before_any_work(tmp_path, write_spec):
    (tmp_path / "a_file").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'a_file' / 'mlflow.db'}"
    out = run_cli("search", str(write_spec()), "--results", str(tmp_path / "r"), "--mlflow", uri)
    assert out.returncode == 2
    assert "--mlflow must be an MLflow tracking URI" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()
