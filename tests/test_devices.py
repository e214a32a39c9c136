"""Backend choice, and trials given GPUs must see one: fake Ray GPUs stop a search before it runs."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import needs_jax, run_cli

from harness import ArgumentError, HarnessError, load_spec, run_search
from harness._trial import devices as devices


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


@pytest.mark.parametrize(
    ("requested", "tried"), [pytest.param("auto", "jax", marks=needs_jax), ("tensorflow", "tensorflow")]
)
def test_fake_gpus_stop_a_search_before_anything_is_written(
    tmp_path, fake_gpu_ray, write_spec, monkeypatch, requested, tried
):
    """`auto` probes JAX (installed here; torch is not) in a real Ray worker holding a fake GPU."""
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
        out = run_cli("search", str(path), "--address", cluster.address, "--results", str(tmp_path / "r"))
    finally:
        cluster.shutdown()
    assert out.returncode == 2, out.stderr[-3000:]
    assert "--gpus-per-trial needs a CUDA device" in out.stderr and "--gpus-per-trial 0" in out.stderr
    assert "auto (1 GPU per trial: the Ray cluster reports GPUs)" in out.stderr
    assert not (tmp_path / "r" / "leaderboard").exists()


def test_a_trial_s_first_run_caps_its_backend_at_its_share_of_the_card_inside_a_ray_worker(fake_gpu_ray):
    """In a fresh Ray worker holding a share of a fake GPU, the setup a trial's first run does
    (`run_trial`): its environment, then `configure_worker`, whose `GpuMemory.apply()` caps the
    backend. Only the hardware is faked, at the backend's edge: TensorFlow and torch list the card
    Ray assigned (CUDA_VISIBLE_DEVICES), NVML reports `cards_mb`; what the backend is told is recorded."""
    import ray

    cards_mb = {0: 81559.0, 1: 40960.0}

    def first_run(backend: str) -> dict[str, object]:
        import importlib.util
        import os
        import sys
        from types import ModuleType, SimpleNamespace

        from harness._trial import worker

        share = ray.get_runtime_context().get_assigned_resources()["GPU"]
        os.environ.update(worker.worker_env(backend, 1, share))
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        told: list[tuple[object, ...]] = []
        sys.modules["pynvml"] = nvml = ModuleType("pynvml")  # the `gpu` extra's NVML binding
        nvml.nvmlInit, nvml.nvmlDeviceGetHandleByIndex = (lambda: None), (lambda index: index)
        nvml.nvmlDeviceGetMemoryInfo = lambda card: SimpleNamespace(total=int(cards_mb[card] * 2**20))
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(len(visible))]
            listed = tf.config.list_physical_devices
            tf.config.list_physical_devices = lambda kind=None: gpus if kind == "GPU" else listed(kind)
            tf.config.set_logical_device_configuration = lambda gpu, configs: told.append(
                ("limit_mb", gpu.name, [c.memory_limit for c in configs])
            )
            tf.config.experimental.set_memory_growth = lambda gpu, on: told.append(("growth", gpu.name, on))
        elif backend == "torch":
            sys.modules["torch"] = torch = ModuleType("torch")
            torch.set_num_threads = lambda n: None
            torch.cuda = SimpleNamespace(
                device_count=lambda: len(visible), is_available=lambda: bool(visible),
                set_per_process_memory_fraction=lambda part, index: told.append(("fraction", index, part)),
            )  # fmt: skip
        worker.configure_worker(1, share)
        seen: dict[str, object] = {"share": share, "visible": visible, "told": told, "env": dict(os.environ)}
        if backend == "jax" and importlib.util.find_spec("jaxlib"):
            from jaxlib import xla_client  # what JAX hands its CUDA plugin when its GPU backend starts

            seen["jax_gpu_options"] = xla_client.generate_pjrt_gpu_plugin_options()
        return seen

    for backend, share, fraction in [("jax", 0.25, 0.225), ("tensorflow", 0.5, 0.45), ("torch", 1.0, 0.9)]:
        task = ray.remote(num_cpus=0, num_gpus=share, max_calls=1)(first_run)
        _check_cap(ray.get(task.remote(backend), timeout=300), backend, share, fraction, cards_mb)


def _check_cap(
    seen: dict[str, Any], backend: str, share: float, fraction: float, cards_mb: dict[int, float]
) -> None:
    assert seen["share"] == share and len(seen["visible"]) == 1
    card = int(seen["visible"][0])  # the card Ray assigned: a limit in MB follows its memory
    env = seen["env"]
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in env  # a cap, not growth: packed trials cannot starve each other
    if backend == "jax":  # JAX reads its cap from the environment when its GPU backend starts
        assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == f"{fraction:g}" and seen["told"] == []
        if "jax_gpu_options" in seen:  # with jaxlib: what its CUDA plugin is given
            options = seen["jax_gpu_options"]
            assert options["memory_fraction"] == pytest.approx(fraction) and options["preallocate"] is False
    else:
        assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    if backend == "tensorflow":  # a hard limit on each visible card, set before TF first uses it
        assert seen["told"] == [("limit_mb", "/physical_device:GPU:0", [int(fraction * cards_mb[card])])]
    if backend == "torch":
        assert seen["told"] == [("fraction", 0, pytest.approx(fraction))]


def test_out_of_memory_errors_are_recognised_from_each_backend_s_own_types():
    class ResourceExhaustedError(Exception): ...  # tf.errors' name; the real one is raised in test_search

    assert devices.out_of_memory(ResourceExhaustedError("OOM when allocating tensor"))
    assert devices.out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert devices.out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not devices.out_of_memory(ValueError("negative dimensions are not allowed"))
