"""End-to-end searches: real Ray, real Optuna, real Keras on scikit-learn's digits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SPACE, needs_jax, run_cli
from PIL import Image

from harness import ArgumentError, InternalError, load_curves, load_leaderboard, load_spec, run_search
from harness._storage import Location

pytestmark = pytest.mark.slow


def test_search_writes_one_row_per_trial_with_per_block_columns(tmp_path, local_ray, write_spec):
    spec = load_spec(
        write_spec(
            search={
                "trials": 5,
                "max_epochs": 3,
                "seed": 1,
                "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
            },
        )
    )
    frame = run_search(spec, results_dir=tmp_path / "results")
    assert len(frame) == 5
    assert frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    pruned = frame[frame.status == "pruned"]
    assert pruned["stop_reason"].eq("scheduler").all() and pruned["started_at"].notna().all()
    done = frame[frame.status == "completed"]
    assert len(done) >= 1
    assert done["test_accuracy"].between(0, 1).all() and done["params"].gt(0).all()
    assert all(Path(p).is_file() for p in done["model_path"])
    for _, row in frame.iterrows():  # per-block values exist exactly for the blocks built
        blocks = row["hp_conv_blocks"]
        assert all(pd.notna(row[f"hp_filters_{i}"]) for i in range(1, blocks + 1))
        assert pd.isna(row[f"hp_filters_{blocks + 1}"])
    # sorted by the objective, best first, and readable with one pandas call
    assert frame["status"].map({"completed": 0, "pruned": 1}).is_monotonic_increasing
    for _, tier in frame.groupby("status"):
        assert tier["val_accuracy"].is_monotonic_decreasing
    assert len(pd.read_parquet(tmp_path / "results" / "leaderboard")) == 5


def test_failing_trial_becomes_failed_row_and_search_goes_on(tmp_path, local_ray, write_spec):
    space = {
        "conv_blocks": 1,
        "padding": "valid",
        "dense_units": 8,
        "batch_size": 128,
        "kernel_size": {"type": "categorical", "choices": [3, 11]},
    }
    path = write_spec(
        space=space,
        search={"trials": 6, "max_epochs": 1, "sampler": "random", "seed": 0, "scheduler": {"name": "none"}},
    )
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    assert len(frame) == 6
    failed = frame[frame.status == "failed"]
    assert set(failed["hp_kernel_size"]) == {11}
    assert failed["error"].str.contains("TrialFailed: block 1 conv 1").all()
    assert failed["error_kind"].eq("user").all() and failed["epochs_run"].eq(0).all()
    assert failed["test_accuracy"].isna().all()
    assert (frame[frame.status == "completed"]["hp_kernel_size"] == 3).sum() >= 1
    assert frame.tail(len(failed))["status"].eq("failed").all()  # failures sort last


def test_auto_gpus_pack_four_trials_on_two_gpus(tmp_path, fake_gpu_ray, fake_gpus_accepted, write_spec):
    path = write_spec(
        resources={"cpus_per_trial": 0.5, "gpus_per_trial": "auto"},
        search={"trials": 4, "max_epochs": 2, "max_concurrent": 4, "scheduler": {"name": "none"}},
    )
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    assert frame["gpus"].eq(0.5).all()  # 1/k: the fewest trials per GPU that fit four at once
    assert sorted(frame["gpu_ids"]) == ["0", "0", "1", "1"]
    # all four ran at once: some moment lies inside every trial's interval
    assert frame["started_at"].max() < frame["finished_at"].min()


def test_a_trial_out_of_memory_is_a_failed_row_naming_the_fix_and_the_search_goes_on(
    tmp_path, local_ray, write_spec
):
    """A real out-of-memory error from the backend (TensorFlow: ResourceExhaustedError): the largest
    kernel the vocabulary allows, 4096 x 4096 x 16384 filters, is a 1.1 TB tensor no allocator grants."""
    path = write_spec(
        space={**SMALL_SPACE, "conv_blocks": 1, "dense_units": 16, "learning_rate": 0.005,
               "filters": {"type": "categorical", "choices": [4, 16384]},
               "kernel_size": {"type": "categorical", "choices": [3, 4096]}},
        search={"trials": 2, "max_epochs": 1, "scheduler": {"name": "none"},
                "start_from": [{"kernel_size": 4096, "filters": 16384}, {"kernel_size": 3, "filters": 4}]},
    )  # fmt: skip
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    huge, small = (frame[frame["hp_kernel_size"] == size].iloc[0] for size in (4096, 3))
    assert huge["status"] == "failed" and huge["error_kind"] == "user"
    assert huge["error"].startswith("out of memory: use a smaller batch_size or a smaller model.")
    assert "ResourceExhaustedError" in huge["error"]
    assert small["status"] == "completed"


@needs_jax
def test_jax_trials_compile_into_a_cache_the_next_search_reuses(tmp_path, write_spec):
    path = write_spec(search={"trials": 1, "max_epochs": 1, "scheduler": {"name": "none"}})
    cache = tmp_path / "jax-cache"
    env = {"JAX_COMPILATION_CACHE_DIR": str(cache)}
    for run in range(2):
        out = run_cli("search", str(path), "--backend", "jax", "--results", str(tmp_path / "r"), env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        if run == 0:
            first = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert any(name.startswith("jit_train_step") for name in first)
    frame = load_leaderboard(tmp_path / "r")
    assert len(frame) == 2 and frame["backend"].eq("jax").all()
    # the same program compiled again would be written again; a cache hit leaves the entry as it was
    again = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert {k: again[k] for k in first} == first


def test_cli_search_on_two_node_cluster_records_every_row(tmp_path, write_spec):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        path = write_spec(search={"trials": 4, "max_epochs": 1, "scheduler": {"name": "none"}})
        out = run_cli("search", str(path), "--address", cluster.address, "--results", str(tmp_path / "r"))
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        cluster.shutdown()
    frame = load_leaderboard(tmp_path / "r")
    assert len(frame) == 4 and frame["status"].eq("completed").all()
    assert frame["node"].nunique() == 2


def test_a_search_on_two_nodes_keeps_rows_models_and_ray_state_in_s3(
    tmp_path, write_spec, s3_server, monkeypatch
):
    """Nodes hold their own credentials (as with a credentials file or an instance role); the
    driver's endpoint and region reach their workers through Ray's runtime environment, and its
    secret reaches neither Ray's logs nor the results. `pandas.read_parquet` reads the rows."""
    from ray.cluster_utils import Cluster

    bucket = s3_server.bucket()
    results = f"s3://{bucket}/run"
    sentinel = f"sentinel-{uuid.uuid4().hex}"  # moto checks no signature: any secret is accepted
    driver_env = {**s3_server.env, "AWS_SECRET_ACCESS_KEY": sentinel, "AWS_SESSION_TOKEN": sentinel}
    path = write_spec(search={"trials": 3, "max_epochs": 2, "scheduler": {"name": "none"}, "keep_models": 2})
    refused = run_cli("search", str(path), "--results", f"s3://AKID:{sentinel}@{bucket}/run", env=driver_env)
    assert refused.returncode == 2 and "must not carry credentials" in refused.stderr
    assert sentinel not in refused.stderr + refused.stdout
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, s3_server.env[name])  # the nodes' own credentials, not the driver's
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        out = run_cli("search", str(path), "--address", cluster.address, "--results", results,
                      env=driver_env, cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        sessions = {Path(node.get_session_dir_path()) for node in cluster.list_all_nodes()}
        files = [p for d in sessions for p in d.rglob("*") if p.is_file() and not p.is_socket()]
        leaked = [p for p in files if sentinel.encode() in p.read_bytes()]
        assert leaked == []  # Ray's logs, runtime env and state on every node
    finally:
        cluster.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # nothing written locally
    keys = s3_server.keys(bucket, "run/")
    assert sum(k.startswith("run/leaderboard/t/") for k in keys) >= 1
    assert sum(k.startswith("run/models/t/") and k.endswith(".keras") for k in keys) == 2  # keep-top-k
    assert any(k.startswith("run/runs/t/run-") and "experiment_state" in k for k in keys)
    # harness writes no folder markers (pyarrow's S3 delete leaves one for a folder it deleted from)
    assert {"run/leaderboard/", "run/curves/", "run/models/", "run/specs/"}.isdisjoint(keys)
    assert not [k for k in keys if sentinel.encode() in s3_server.read(bucket, k)]  # tuner.pkl included

    for name, value in s3_server.env.items():  # a reader on another machine, with credentials
        monkeypatch.setenv(name, value)
    frame = pd.read_parquet(f"{results}/leaderboard")  # through s3fs, as pandas does when it is installed
    assert len(load_leaderboard(results)) == len(frame)
    assert len(frame) == 3 and frame["status"].eq("completed").all() and frame["node"].nunique() == 2
    assert frame["model_path"].dropna().str.fullmatch(r"models/t/[^/]+\.keras").sum() == 2  # relative
    kept = load_leaderboard(results)["model_path"].dropna()
    assert len(kept) == 2 and kept.str.startswith(f"{results}/models/t/").all()  # resolved for use
    out = run_cli("export", "--results", results, "--study", "t", "--out", str(tmp_path / "export"),
                  env=s3_server.env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "verified" in out.stdout and (tmp_path / "export" / "model.keras").is_file()
    out = run_cli("export", "--results", results, "--study", "t", "--out", f"s3://{bucket}/exported",
                  env=s3_server.env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert {"exported/model.keras", "exported/model_card.json"} <= set(s3_server.keys(bucket, "exported/"))
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "digit.png")  # outside the results
    image = tmp_path / "digit.png"
    out = run_cli("predict", "--model", f"s3://{bucket}/exported", str(image), env=s3_server.env)
    assert out.returncode == 0 and "digit.png:" in out.stdout and "%" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_interrupted_search_resumes_without_lost_or_duplicate_rows(tmp_path, write_spec, request, storage):
    path = write_spec(search={"trials": 6, "max_epochs": 4, "seed": 2, "scheduler": {"name": "none"}})
    env = request.getfixturevalue("s3").env if storage == "s3" else {}  # sets them here too
    results = f"s3://{request.getfixturevalue('s3').bucket()}/r" if storage == "s3" else str(tmp_path / "r")
    cmd = [sys.executable, "-m", "harness", "search", str(path), "--results", results]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    rows = Location.of(results) / "leaderboard" / "t"
    deadline = time.time() + 300
    while time.time() < deadline and len(rows.files(".parquet")) < 1:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    before = load_leaderboard(results)
    assert 1 <= len(before) < 6
    assert before["status"].eq("completed").all()  # interrupted trials are not rows yet
    out = run_cli(*cmd[3:], "--resume", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    after = load_leaderboard(results)
    assert len(after) == 6 and after["trial_id"].is_unique
    assert set(before["trial_id"]) <= set(after["trial_id"])
    assert len(pd.read_parquet(f"{results}/leaderboard")) == 6
    curves = load_curves(results)  # resumed trials rewrote theirs whole: every epoch once
    assert len(curves) == after["epochs_run"].sum() and not curves.duplicated(["trial_id", "epoch"]).any()


def test_resume_without_a_run_is_a_clear_error(tmp_path, write_spec):
    out = run_cli("search", str(write_spec()), "--resume", "--results", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "no interrupted run" in out.stderr
    assert not (tmp_path / "r" / "leaderboard").exists()


@needs_jax
def test_jax_backend_runs_trials(tmp_path, write_spec):
    path = write_spec(search={"trials": 2, "max_epochs": 1, "scheduler": {"name": "none"}})
    out = run_cli("search", str(path), "--backend", "jax", "--results", str(tmp_path / "r"),
                  env={"KERAS_BACKEND": ""})  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    frame = load_leaderboard(tmp_path / "r")
    assert frame["backend"].eq("jax").all() and frame["status"].eq("completed").all()


def test_resume_with_a_changed_spec_and_impossible_resources_are_clear_errors(tmp_path, write_spec):
    path = write_spec(search={"trials": 1, "max_epochs": 1, "scheduler": {"name": "none"}})
    results = tmp_path / "r"
    base = ["search", str(path), "--results", str(results)]
    out = run_cli(*base, "--cpus-per-trial", "64")
    assert out.returncode == 2 and "--cpus-per-trial must fit one node of the Ray cluster" in out.stderr
    assert not (results / "leaderboard").exists()
    run = results / "runs" / "t" / "run-1"
    run.mkdir(parents=True)
    (run / "tuner.pkl").write_bytes(b"")  # what Tuner.can_restore looks for
    (run / "harness_spec_hash.txt").write_text("another")
    out = run_cli(*base, "--resume")
    assert out.returncode == 2 and "the spec differs" in out.stderr


def test_api_errors_name_the_python_argument(tmp_path, write_spec):
    with pytest.raises(ArgumentError, match=r"`backend` must be one of \[.*\]. Received: backend='tf'"):
        run_search(load_spec(write_spec()), results_dir=tmp_path / "r", backend="tf")
    assert not (tmp_path / "r").exists()


def test_rows_carry_the_new_columns_and_failed_rows_keep_their_epochs(tmp_path, local_ray, write_spec):
    """A learning rate of 10 (SGD, elu) makes the loss NaN: the failed row keeps its 2 epochs."""
    space = {"conv_blocks": 1, "filters": 64, "dense_units": 256, "optimizer": "sgd", "activation": "elu",
             "learning_rate": {"type": "categorical", "choices": [0.01, 10.0]}}  # fmt: skip
    path = write_spec(
        space=space,
        search={"trials": 4, "max_epochs": 2, "sampler": "random", "seed": 3, "scheduler": {"name": "none"}},
        training={"early_stopping": None},
    )
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    nan = frame[frame.hp_learning_rate == 10.0]
    assert len(nan) >= 1 and nan["status"].eq("failed").all()
    assert nan["error"].str.contains("NaN").all() and nan["error_kind"].eq("user").all()
    assert nan["epochs_run"].eq(2).all() and nan["params"].gt(0).all()
    done = frame[frame.status == "completed"]
    assert done["steady_epoch_s"].gt(0).all() and done["first_epoch_s"].gt(0).all()
    assert done["stop_reason"].isna().all() and done["error_kind"].isna().all()
    assert (tmp_path / "r" / "harness-results.json").is_file()


def _events(folder: Path) -> dict[str, list[int]]:
    """Tags and steps in a trial's TensorBoard event files, read with TensorFlow's reader."""
    import tensorflow as tf

    steps: dict[str, list[int]] = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def test_tensorboard_shows_one_readable_run_per_trial_with_epochs_as_steps(tmp_path, local_ray, write_spec):
    path = write_spec(search={"trials": 3, "max_epochs": 2, "scheduler": {"name": "none"}})
    frame = run_search(load_spec(path), results_dir=tmp_path / "r")
    runs = [p for p in (tmp_path / "r" / "runs" / "t" / frame.attrs["run_id"]).iterdir() if p.is_dir()]
    assert sorted(p.name.split("-")[0] for p in runs) == sorted(frame["trial_id"])
    for run in runs:
        row = frame[frame["trial_id"] == run.name.split("-")[0]].iloc[0]
        assert f"conv_blocks={row.hp_conv_blocks}" in run.name and "learning_rate=" in run.name
        steps = _events(run)
        assert steps["ray/tune/val_accuracy"] == list(range(1, row.epochs_run + 1))
        assert "_hparams_/session_start_info" in steps  # TensorBoard's HParams view


def test_a_search_whose_every_trial_fails_inside_harness_raises_and_the_cli_exits_1(
    tmp_path, local_ray, write_spec, monkeypatch, capsys
):
    """Every trial's model build fails in harness' own code, as a defect would: a config no spec
    can produce (test_trial's method), from a spec copied past validation; not strict."""
    from harness import cli

    monkeypatch.delenv("HARNESS_STRICT")
    search = {"trials": 2, "max_epochs": 1, "sampler": "random", "scheduler": {"name": "none"}}
    spec = load_spec(write_spec(search=search))
    broken = spec.model_copy(update={"space": {**spec.space, "optimizer": "bogus"}})  # a KeyError in _model
    expected = (
        r"all 2 trial\(s\) of run run-\S+ failed inside harness itself \(error_kind internal\), not "
        r"because of their configuration; the first \(\w+\): KeyError: 'bogus'\. Their rows are kept"
    )
    with pytest.raises(InternalError, match=expected):
        run_search(broken, results_dir=tmp_path / "api", strict=False)
    rows = load_leaderboard(tmp_path / "api")
    assert len(rows) == 2 and rows["error_kind"].eq("internal").all() and rows["status"].eq("failed").all()

    unchecked = SimpleNamespace(with_overrides=lambda **_: broken)  # overrides would re-validate
    monkeypatch.setattr(cli, "load_spec", lambda path: unchecked)  # the driver's copy; trials run in Ray
    monkeypatch.setattr(sys, "argv", ["harness", "search", "space.yaml", "--results", str(tmp_path / "cli")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "error: all 2 trial(s) of run" in err and "Traceback" not in err, err  # after the progress bar
    assert re.search(expected, err), err
    assert len(load_leaderboard(tmp_path / "cli")) == 2  # the rows are kept


def test_a_time_budget_ends_with_every_scored_trial_evaluated_and_its_best_exportable(tmp_path, write_spec):
    """At the budget, running trials stop where they are (mid-epoch too), are validated, evaluated
    on the test set and saved: the search ends with its best model exportable, whatever the speed."""
    search = {"trials": 4, "max_epochs": 5000, "max_concurrent": 2, "scheduler": {"name": "none"},
              "time_budget_s": 25}  # fmt: skip
    path = write_spec(search=search, training={"early_stopping": None})
    results = tmp_path / "r"
    out = run_cli("search", str(path), "--results", str(results))
    assert out.returncode == 0, out.stderr[-3000:]
    frame = load_leaderboard(results)
    scored = frame[frame["epochs_run"] > 0]
    assert len(scored) >= 1 and (scored["status"] == "completed").all()  # none left as a cut "pruned"
    assert (scored["stop_reason"] == "time_budget").all() and scored["test_accuracy"].notna().all()
    assert scored["epochs_run"].max() < 5000  # ended by the budget, not by their own end
    best = frame.iloc[0]
    assert best["status"] == "completed" and Path(best["model_path"]).is_file()
    # the trials running at the budget, and no row for those Ray started after it (they trained nothing)
    assert len(frame) == len(scored) <= 2 and len(load_curves(results)) == scored["epochs_run"].sum()
    export = run_cli("export", "--results", str(results), "--out", str(tmp_path / "best"))
    assert export.returncode == 0 and "verified" in export.stdout, export.stderr[-3000:]


def test_a_cold_search_s_probe_trains_first_on_every_core_and_is_never_pruned(tmp_path, write_spec):
    """`search.probe`: the space's cheapest model runs first (whole machine, never pruned), then the
    sampler's trials share the cores as usual."""
    search = {"trials": 3, "max_epochs": 3, "seed": 0, "probe": None,  # null: the default, on
              "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2}}  # fmt: skip
    path = write_spec(search=search, resources={"cpus_per_trial": "auto"})
    out = run_cli("search", str(path), "--results", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr[-3000:]
    frame = load_leaderboard(tmp_path / "r").sort_values("started_at")
    probe = frame.iloc[0]
    assert probe["hp_conv_blocks"] == 1 and probe["hp_filters_1"] == 4  # the cheap ends of the space
    assert probe["status"] == "completed" and probe["epochs_run"] == 3 and probe["cpus"] == 2
    assert len(frame) == 3 and (frame.iloc[1:]["cpus"] == 1).all()


def test_the_run_s_first_trials_run_one_after_another_on_every_core(tmp_path, write_spec):
    """`resources.whole_node_trials`: the probe and the first sampled trial each get the whole
    machine, in turn; the trials after them share it."""
    search = {"trials": 4, "max_epochs": 2, "seed": 0, "probe": True, "scheduler": {"name": "none"}}
    path = write_spec(search=search, resources={"cpus_per_trial": "auto", "whole_node_trials": 2})
    out = run_cli("search", str(path), "--results", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr[-3000:]
    frame = load_leaderboard(tmp_path / "r").sort_values("started_at").reset_index(drop=True)
    assert frame["cpus"].tolist() == [2, 2, 1, 1]
    for before, after in ((0, 1), (1, 2)):  # the whole machine: one after the other trained
        fitted = frame.loc[before, "started_at"] + pd.Timedelta(seconds=frame.loc[before, "train_time_s"])
        assert frame.loc[after, "started_at"] >= fitted
