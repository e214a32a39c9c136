"""The Ray side of a trial: the trainable Ray Tune runs, the channel it gives the runner, and
the worker's settings (threads, GPU memory, compile cache) made before Keras is imported.

Everything Ray-specific about a trial lives here; `runner.TrialRunner` builds, trains and
finishes without knowing who runs it.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._trial.devices import GpuMemory
from harness._trial.runner import TrialContext, TrialRunner

if TYPE_CHECKING:
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    from harness._data import Dataset

_configured = False


def trial_cpus(resources: PlacementGroupFactory | None) -> float | None:
    """The CPUs a trial was given, from its resource request (None before Ray has made it)."""
    return None if resources is None else float(resources.required_resources.get("CPU", 0.0))


def trial_gpus(resources: PlacementGroupFactory | None) -> float | None:
    """The share of GPUs a trial was given (0 for a CPU trial; None before Ray has placed it)."""
    return None if resources is None else float(resources.required_resources.get("GPU", 0.0))


def run_trial(config: dict[str, Any], *, data: Dataset, ctx: TrialContext) -> None:
    """The Ray Tune trainable (wrapped with `tune.with_parameters`)."""
    from ray import tune

    context = tune.get_context()
    resources = context.get_trial_resources()
    cpus, gpus = trial_cpus(resources) or 1.0, trial_gpus(resources) or 0.0
    if "keras" not in sys.modules:  # the worker's first trial: threads and GPU memory before Keras
        os.environ.update(worker_env(ctx.backend, cpus, gpus))
    configure_worker(cpus, gpus)
    TrialRunner(config, data, ctx, context.get_trial_id(), RayChannel(), cpus=cpus, gpus=gpus).run()


class RayChannel:
    """A runner's reports as Ray Tune results, its checkpoints as Ray checkpoints."""

    def report(self, metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        from ray import tune

        saved = None if checkpoint is None else tune.Checkpoint.from_directory(checkpoint)
        tune.report(metrics, checkpoint=saved)

    @contextmanager
    def restored(self) -> Iterator[Path | None]:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def stop_requested(self) -> bool:
        """Whether Ray asked this trial to stop between reports (private API, read defensively)."""
        try:
            from ray.train._internal.session import get_session

            event = getattr(get_session(), "stop_event", None)
            if event is not None and event.is_set():
                event.clear()
                return True
        except Exception:  # private API: if it moves, trials just stop at the next report
            pass
        return False


def configure_worker(cpus: float, gpus: float) -> None:
    """Match the backend's thread pools to the trial's CPU share and cap its GPU memory, once per worker.

    Ray reuses a worker only for trials asking the same resources, so the first trial's
    settings hold for every later one.
    """
    global _configured
    if _configured:
        return
    _configured = True
    threads = max(1, int(cpus))
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TF already initialised in this process
            pass
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    if gpus:
        GpuMemory.for_share(backend, gpus).apply()


# How long a reused worker waits for its previous trial's thread to end before Ray gives up
# on the next trial ("Could not re-use actor", the trial lost). The wait ends with the
# thread; 10 s was too short once on 2 CPUs shared with another search.
WIND_DOWN_S = 300


def worker_env(backend: str, cpus: float | None = None, gpus: float = 0.0) -> dict[str, str]:
    """Environment for Ray workers: backend, quiet logs; threads, GPU memory and caches once known.

    Ray is started before the cluster's resources (and so `auto` shares) are known; these
    settings reach each worker with its first trial, before Keras is imported (Ray reuses a
    worker only for trials asking the same resources). JAX compiles into a cache on the
    node's local disk, shared by its workers: start points, warm starts, repeats and the same
    architecture with other training settings reuse programs instead of compiling again.
    """
    env = {
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": str(WIND_DOWN_S),
    }
    if cpus is not None:
        threads = str(max(1, int(cpus)))
        env["OMP_NUM_THREADS"] = threads
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false" if threads == "1" else ""
        env["JAX_COMPILATION_CACHE_DIR"] = os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax_cache_dir()
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = os.environ.get(
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0"
        )
    if gpus:
        env.update(GpuMemory.for_share(backend, gpus).env())
    return env


def jax_cache_dir() -> str:
    """The node's JAX compile cache for this user: `$TMPDIR/harness-jax-cache-<uid>`, made 0700.

    Programs loaded from it run as the trial, so a cache others can write is code they can
    run as us: one that someone else owns or opened up (planted at the predictable path) is
    not used; this process then compiles into a private folder of its own instead.
    """
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"harness-jax-cache-{uid}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077:
        return str(path)
    return tempfile.mkdtemp(prefix=f"harness-jax-cache-{uid}-")
