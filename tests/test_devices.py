"""Trials given GPUs must see one: fake Ray GPUs stop the search before anything runs."""

from __future__ import annotations

import pytest
from conftest import run_cli

from harness import ArgumentError, load_spec, run_search


def test_fake_gpus_stop_a_search_before_anything_is_written(tmp_path, local_ray, write_spec, monkeypatch):
    monkeypatch.delenv("HARNESS_ALLOW_FAKE_GPUS", raising=False)
    path = write_spec(resources={"cpus_per_trial": 0.5, "gpus_per_trial": 0.5})
    with pytest.raises(
        ArgumentError, match="needs a CUDA device that the tensorflow backend sees inside a Ray"
    ):
        run_search(load_spec(path), results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_the_cli_exits_2_naming_the_fix_on_a_cluster_started_with_fake_gpus(tmp_path, write_spec):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 2})
    try:
        path = write_spec(search={"trials": 2, "max_epochs": 1, "scheduler": {"name": "none"}})
        out = run_cli("search", str(path), "--address", cluster.address, "--gpus-per-trial", "0.5",
                      "--results", str(tmp_path / "r"), env={"HARNESS_ALLOW_FAKE_GPUS": ""})  # fmt: skip
    finally:
        cluster.shutdown()
    assert out.returncode == 2, out.stderr[-3000:]
    assert "--gpus-per-trial needs a CUDA device" in out.stderr and "--gpus-per-trial 0" in out.stderr
    assert not (tmp_path / "r" / "leaderboard").exists()

