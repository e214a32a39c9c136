"""Backend choice, and trials given GPUs must see one: fake Ray GPUs stop a search before it runs."""

from __future__ import annotations

import itertools

import pytest
from conftest import run_cli

from harness import ArgumentError, HarnessError, load_spec, run_search
from harness import _devices as devices


@pytest.mark.parametrize(
    ("available", "expected"),
    [({"tensorflow", "jax", "torch"}, "tensorflow"), ({"jax", "torch"}, "jax"), ({"torch"}, "torch")],
)
def test_auto_on_cpus_takes_tensorflow_then_jax_then_torch(monkeypatch, available, expected):
    monkeypatch.setattr(devices, "installed", lambda backend: backend in available)
    assert devices.choose_backend("auto", 0.0) == expected


def test_an_explicit_backend_wins_and_must_be_installed(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert devices.requested_backend(None) == "auto"
    assert devices.choose_backend(devices.requested_backend("jax"), 0.0) == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert devices.requested_backend(None) == "jax"
    monkeypatch.setattr(devices, "installed", lambda backend: backend == "tensorflow")
    with pytest.raises(
        HarnessError, match=r"the torch backend is not installed; `pip install -e .\[torch\]`"
    ):
        devices.requested_backend("torch")
    with pytest.raises(ArgumentError, match="must be one of"):
        devices.requested_backend("theano")


@pytest.mark.parametrize(("requested", "tried"), [("auto", "jax"), ("tensorflow", "tensorflow")])
def test_fake_gpus_stop_a_search_before_anything_is_written(
    tmp_path, fake_gpu_ray, write_spec, monkeypatch, requested, tried
):
    """`auto` probes JAX (installed here; torch is not) in a real Ray worker holding a fake GPU."""
    monkeypatch.delenv("HARNESS_ALLOW_FAKE_GPUS", raising=False)
    monkeypatch.setattr(devices, "installed", lambda backend: backend in ("tensorflow", "jax"))
    path = write_spec(resources={"cpus_per_trial": 0.5, "gpus_per_trial": 0.5})
    with pytest.raises(ArgumentError, match=rf"needs a CUDA device .* none was seen \(tried: {tried}\)"):
        run_search(load_spec(path), results_dir=tmp_path / "r", backend=requested)
    assert not (tmp_path / "r").exists()


def test_the_cli_exits_2_naming_the_fix_on_a_cluster_started_with_fake_gpus(tmp_path, write_spec):
    """The default, `gpus_per_trial: auto`, takes the cluster's GPUs: fake ones are caught."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 2})
    try:
        path = write_spec(search={"trials": 2, "max_epochs": 1, "scheduler": {"name": "none"}})
        out = run_cli("search", str(path), "--address", cluster.address, "--results", str(tmp_path / "r"),
                      env={"HARNESS_ALLOW_FAKE_GPUS": ""})  # fmt: skip
    finally:
        cluster.shutdown()
    assert out.returncode == 2, out.stderr[-3000:]
    assert "--gpus-per-trial needs a CUDA device" in out.stderr and "--gpus-per-trial 0" in out.stderr
    assert "auto (1 GPU per trial: the Ray cluster reports GPUs)" in out.stderr
    assert not (tmp_path / "r" / "leaderboard").exists()


def test_each_backend_is_capped_at_its_share_of_the_card_inside_a_ray_worker(fake_gpu_ray):
    import ray

    def _memory_settings(backend: str) -> dict[str, object]:
        """Inside a Ray worker holding a share of a GPU: what a trial's first run sets up from it."""
        import os

        import ray

        from harness._devices import GpuMemory
        from harness._trial import worker_env

        share = ray.get_runtime_context().get_assigned_resources()["GPU"]
        os.environ.update(worker_env(backend, 1, share))
        memory = GpuMemory.for_share(backend, share)
        return {
            "fraction": memory.fraction,
            "jax_env": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
            "tf_growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
        }

    for backend, (share, fraction) in itertools.product(
        ("jax", "tensorflow", "torch"), ((1.0, 0.9), (0.5, 0.45), (0.25, 0.225))
    ):
        task = ray.remote(num_cpus=0, num_gpus=share, max_calls=1)(_memory_settings)
        seen = ray.get(task.remote(backend), timeout=120)
        assert seen["fraction"] == pytest.approx(fraction)
        assert seen["jax_env"] == (f"{fraction:g}" if backend == "jax" else None)
        assert seen["tf_growth"] is None  # a memory limit, not growth: packed trials cannot starve each other


def test_out_of_memory_errors_are_recognised_from_each_backend_s_own_types():
    class ResourceExhaustedError(Exception): ...  # tf.errors' name; the real one is raised in test_search

    assert devices.out_of_memory(ResourceExhaustedError("OOM when allocating tensor"))
    assert devices.out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert devices.out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not devices.out_of_memory(ValueError("negative dimensions are not allowed"))
