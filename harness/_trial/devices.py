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

import gc
import importlib.util
import os
from dataclasses import dataclass

from harness._errors import ArgumentError, HarnessError

BACKENDS = ("tensorflow", "jax", "torch")
"""Keras backends harness runs, in the order `auto` prefers them on CPUs."""
GPU_BACKENDS = ("jax", "torch")
"""The order `auto` tries them for GPU trials (Keras on JAX is how harness runs on NVIDIA GPUs)."""
AUTO = "auto"
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
    raise HarnessError(
        "no Keras backend is installed: `pip install -e .` installs TensorFlow on Linux only; "
        "elsewhere install JAX with `pip install -e '.[jax]'` (or PyTorch with '.[torch]')."
    )


def provisional_backend(requested: str) -> str:
    """The backend Ray's workers start with, before GPU trials' backend is probed."""
    return cpu_backend() if requested == AUTO else requested


def choose_backend(requested: str, gpus_per_trial: float, *, auto: bool = False) -> str:
    """The backend trials use; for GPU trials, one that sees a CUDA device in a Ray worker.

    `auto`: the share came from `gpus_per_trial: auto` (the cluster reports GPUs), which the
    error says, since the user never asked for GPUs by number.
    """
    if gpus_per_trial <= 0:
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
        f"auto ({gpus_per_trial:g} GPU per trial: the Ray cluster reports GPUs)" if auto else gpus_per_trial,
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


MEMORY_HEADROOM = 0.9
"""Of a trial's share of a card, what its backend's pool may take: each process also holds a
CUDA context and library workspaces outside that pool."""


@dataclass(frozen=True)
class GpuMemory:
    """How much of one card a trial's backend may allocate, so packed trials cannot starve each other."""

    backend: str
    fraction: float  # of the card's memory

    @classmethod
    def for_share(cls, backend: str, gpus: float) -> GpuMemory:
        return cls(backend, round(min(gpus, 1.0) * MEMORY_HEADROOM, 4))

    def env(self) -> dict[str, str]:
        """JAX reads its cap from the environment when its backend starts (before Keras imports it)."""
        if self.backend != "jax":
            return {}
        return {
            "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{self.fraction:g}",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        }

    def apply(self) -> None:
        """TensorFlow and torch take theirs through their APIs, once per worker, before first use."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
                limit_mb = int(self.fraction * _card_memory_mb(index))  # instead of memory growth
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit_mb)]
                )
        elif self.backend == "torch":
            import torch

            for index in range(torch.cuda.device_count()):
                torch.cuda.set_per_process_memory_fraction(self.fraction, index)


def _card_memory_mb(index: int) -> float:
    """Total memory of the `index`-th visible card (NVIDIA's management library: the `gpu` extra)."""
    import pynvml

    pynvml.nvmlInit()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    device = ids[index] if index < len(ids) else str(index)
    handle = (
        pynvml.nvmlDeviceGetHandleByIndex(int(device))
        if device.isdigit()
        else pynvml.nvmlDeviceGetHandleByUUID(device)
    )
    return float(pynvml.nvmlDeviceGetMemoryInfo(handle).total) / 2**20


def release_gpu_memory(backend: str) -> None:
    """Free the previous trial's device buffers in a reused worker (CPU trials skip it: 0.2 s each)."""
    gc.collect()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def out_of_memory(exc: BaseException) -> bool:
    """The backends' own out-of-memory errors: JAX's RESOURCE_EXHAUSTED, TF's ResourceExhaustedError,
    torch's OutOfMemoryError."""
    name = type(exc).__name__
    text = str(exc)
    return (
        name in ("ResourceExhaustedError", "OutOfMemoryError")
        or "RESOURCE_EXHAUSTED" in text
        or "out of memory" in text.lower()
    )
