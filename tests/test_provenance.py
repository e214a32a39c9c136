"""Provenance read inside a real Ray worker."""

from __future__ import annotations

import ray

from harness import __version__
from harness._results.provenance import device_name, provenance


def test_provenance_in_a_ray_worker_names_backend_device_and_node(local_ray):
    @ray.remote(num_cpus=1)
    def read() -> object:
        import os

        os.environ["KERAS_BACKEND"] = "tensorflow"
        import keras  # noqa: F401

        return provenance()

    found = ray.get(read.remote())
    assert found.backend == "tensorflow" and found.device == "cpu" and found.gpu_ids == ""
    assert found.harness_version == __version__ and found.keras_version.startswith("3.")
    assert found.node in {node["NodeID"] for node in ray.nodes()}


def test_device_name_on_this_machine_is_cpu():
    assert device_name("tensorflow") == "cpu"
