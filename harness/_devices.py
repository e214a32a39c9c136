"""Which Keras backend trials use, and proof that trials given GPUs can see one.

`--backend auto` (the default): CPU trials use TensorFlow (fastest on CPU, measured),
else the first installed of JAX and torch; GPU trials use JAX if it sees a CUDA device
inside a Ray worker, else torch if it does, else the search stops (exit 2). An explicit
`--backend` or `KERAS_BACKEND` always wins, and is checked the same way.

Ray's GPU count is bookkeeping (`ray start --num-gpus 2` works on any machine), so without
the check a "GPU" search on fake GPUs, or with a CPU-only backend, would train every trial
on the CPU and exit 0.
"""

from __future__ import annotations

import importlib.util
import os

from harness._errors import ArgumentError, HarnessError

BACKENDS = ("tensorflow", "jax", "torch")
"""Keras backends harness runs, in the order `auto` prefers them on CPUs."""
GPU_BACKENDS = ("jax", "torch")
"""The order `auto` tries them for GPU trials (Keras on JAX is how harness runs on NVIDIA GPUs)."""
AUTO = "auto"
ALLOW_FAKE_GPUS = "HARNESS_ALLOW_FAKE_GPUS"
"""Test-only opt-in (`=1`): accept Ray GPUs no backend can see (fake ones), to test packing on CPU."""
PROBE_TIMEOUT_S = 300.0
_EXTRAS = {"tensorflow": "", "jax": "[jax]", "torch": "[torch]"}


def requested_backend(backend: str | None) -> str:
    """`--backend`, else `KERAS_BACKEND`, else `auto`; an explicit one must be installed."""
    requested = backend or os.environ.get("KERAS_BACKEND") or AUTO
    return requested if requested == AUTO else check_backend(requested)


def check_backend(backend: str) -> str:
    """A missing backend package stops here, not as N failed trials."""
    if backend not in BACKENDS:
        raise ArgumentError("backend", f"must be one of {[AUTO, *BACKENDS]}", backend)
    if not installed(backend):
        raise HarnessError(
            f"the {backend} backend is not installed; `pip install -e .{_EXTRAS[backend]}` "
            f"(or pip install {backend}), or choose another backend."
        )
    return backend


def installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def cpu_backend() -> str:
    """`auto` for CPU trials: the first installed of TensorFlow, JAX and torch."""
    for backend in BACKENDS:
        if installed(backend):
            return backend
    raise HarnessError("no Keras backend is installed; `pip install -e .` installs TensorFlow.")


def provisional_backend(requested: str) -> str:
    """The backend Ray's workers start with, before GPU trials' backend is probed."""
    return cpu_backend() if requested == AUTO else requested


def choose_backend(requested: str, gpus_per_trial: float) -> str:
    """The backend trials use; for GPU trials, one that sees a CUDA device in a Ray worker."""
    if gpus_per_trial <= 0 or os.environ.get(ALLOW_FAKE_GPUS) == "1":
        return provisional_backend(requested)
    candidates = [requested] if requested != AUTO else [b for b in GPU_BACKENDS if installed(b)]
    for backend in candidates:
        if _probe(backend, gpus_per_trial) > 0:
            return backend
    tried = ", ".join(candidates) or "no GPU backend installed (jax, torch)"
    raise ArgumentError(
        "spec.resources.gpus_per_trial",
        f"needs a CUDA device that the backend sees inside a Ray worker, and none was seen "
        f"(tried: {tried}). The cluster's GPUs may be Ray bookkeeping only (`ray start "
        "--num-gpus`), or the backend a CPU-only build. Install the CUDA backend (`pip install "
        "-e '.[gpu]'`: JAX for CUDA 13, Linux driver >= 580.65), or set --gpus-per-trial 0 to train on CPUs",
        gpus_per_trial,
    )


def _probe(backend: str, gpus_per_trial: float) -> int:
    """CUDA devices `backend` sees in a Ray task holding one trial's GPU share."""
    import ray

    probe = ray.remote(num_cpus=0, num_gpus=min(gpus_per_trial, 1.0))(visible_gpus)
    seen: int = ray.get(probe.remote(backend), timeout=PROBE_TIMEOUT_S)
    return seen


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
