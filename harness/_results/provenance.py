"""What produced a result (backend, versions, device, node), computed once per trial in the worker."""

from __future__ import annotations

import sys

from harness._results.record import Provenance
from harness._version import __version__

_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def provenance() -> Provenance:
    """Read inside a Ray worker after Keras has been imported with its backend."""
    import keras
    import ray

    backend = keras.backend.backend()
    module = sys.modules.get(_BACKEND_MODULES.get(backend, backend))
    return Provenance(
        backend=backend,
        backend_version=str(getattr(module, "__version__", "unknown")),
        keras_version=keras.__version__,
        harness_version=__version__,
        device=device_name(backend),
        node=ray.get_runtime_context().get_node_id(),
        gpu_ids=",".join(str(i) for i in ray.get_gpu_ids()),
    )


def device_name(backend: str) -> str:
    """ "cpu" or the GPU model the trial ran on."""
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            return "cpu" if dev.platform == "cpu" else str(dev.device_kind)
        if backend == "torch":
            import torch

            return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu"))
    except Exception:  # device lookup is informative only
        return "unknown"
