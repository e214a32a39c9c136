"""Trials given GPUs must see one: checked in a Ray worker before any trial runs.

Ray's GPU count is bookkeeping (`ray start --num-gpus 2` works on any machine), so a search
that asks for GPUs on a cluster whose GPUs are fake, or with a CPU-only backend, would
otherwise train every trial on the CPU and exit 0.
"""

from __future__ import annotations

import os

from harness._errors import ArgumentError

ALLOW_FAKE_GPUS = "HARNESS_ALLOW_FAKE_GPUS"
"""Test-only opt-in (`=1`): accept Ray GPUs no backend can see (fake ones), to test packing on CPU."""
PROBE_TIMEOUT_S = 300.0


def check_gpu_trials(backend: str, gpus_per_trial: float) -> None:
    """Raise (exit 2) unless a Ray worker holding one trial's GPU share sees a CUDA device."""
    if gpus_per_trial <= 0 or os.environ.get(ALLOW_FAKE_GPUS) == "1":
        return
    import ray

    probe = ray.remote(num_cpus=0, num_gpus=min(gpus_per_trial, 1.0))(visible_gpus)
    seen = ray.get(probe.remote(backend), timeout=PROBE_TIMEOUT_S)
    if seen == 0:
        raise ArgumentError(
            "spec.resources.gpus_per_trial",
            f"needs a CUDA device that the {backend} backend sees inside a Ray worker, and it sees "
            "none (the cluster's GPUs are Ray bookkeeping only, e.g. `ray start --num-gpus`, or "
            f"{backend} is a CPU-only build); install a CUDA backend (`pip install -U 'jax[cuda12]'` "
            "and --backend jax) or set --gpus-per-trial 0 to train on CPUs",
            gpus_per_trial,
        )


def visible_gpus(backend: str) -> int:
    """GPUs `backend` can use in this process (Ray sets CUDA_VISIBLE_DEVICES for the task)."""
    if backend == "jax":
        import jax

        return sum(1 for device in jax.devices() if device.platform == "gpu")
    if backend == "torch":
        import torch

        return int(torch.cuda.device_count())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))
