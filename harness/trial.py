"""One trial, as run by a Ray Tune worker: build, fit with per-epoch reports, evaluate, save.

Every outcome ends in one final `tune.report` carrying `final=True`: completed trials
with test metrics, failed ones with `status="failed"` and the error. A trial stopped by
the scheduler never reaches it, which is how the driver tells "pruned" apart.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrialFailed

if TYPE_CHECKING:
    from harness.data import Dataset

_configured_threads: int | None = None


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs besides its config and data; small and picklable."""

    models_dir: str
    max_epochs: int
    seed: int
    early_stopping: dict[str, Any] | None
    cpus: float
    env: dict[str, str]


def now() -> str:
    return datetime.now(UTC).isoformat()


def run_trial(config: dict[str, Any], *, data: Dataset, ctx: TrialContext) -> None:
    """The Ray Tune trainable (wrapped with `tune.with_parameters`)."""
    from ray import tune

    if "keras" not in sys.modules:  # Ray already initialised by the caller: set it here
        os.environ.update(ctx.env)
    started, t0 = now(), time.perf_counter()
    trial_id = tune.get_context().get_trial_id() or "local"
    result: dict[str, Any] = {"final": True, "started_at": started}
    try:
        result.update(_fit_and_evaluate(config, data, ctx, trial_id))
        result["status"] = "completed"
    except Exception as exc:  # a bad trial must not end the search
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        result.update(val_accuracy=math.nan, val_loss=math.nan)
    result.update(total_time_s=time.perf_counter() - t0, finished_at=now())
    result.update(environment())
    tune.report(result)


def _fit_and_evaluate(
    config: dict[str, Any], data: Dataset, ctx: TrialContext, trial_id: str
) -> dict[str, Any]:
    configure_threads(ctx.cpus)
    import keras

    from harness.callback import ReportCallback
    from harness.model import build_model, compile_model

    keras.backend.clear_session(free_memory=False)  # reused worker; gc.collect costs 0.2 s
    keras.utils.set_random_seed(trial_seed(ctx.seed, config))
    t_build = time.perf_counter()
    model = compile_model(build_model(config, data.input_shape, data.num_classes), config)
    params = int(model.count_params())
    reporter = ReportCallback(params)
    callbacks: list[Any] = [reporter]
    stopper = keras.callbacks.EarlyStopping(**ctx.early_stopping) if ctx.early_stopping else None
    if stopper is not None:
        callbacks.append(stopper)
    t_fit = time.perf_counter()
    build_time = t_fit - t_build
    history = model.fit(
        data.x_train, data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=ctx.max_epochs,
        batch_size=int(config.get("batch_size", 64)),
        callbacks=callbacks,
        verbose=0,
    ).history  # fmt: skip
    train_time = time.perf_counter() - t_fit
    if not all(math.isfinite(v) for v in history["loss"]):
        raise TrialFailed("training loss became NaN or infinite; lower the learning rate")
    best = selected_epoch(history, stopper)
    t_eval = time.perf_counter()
    test_loss, test_acc = model.evaluate(data.x_test, data.y_test, verbose=0, batch_size=512)
    t_save = time.perf_counter()
    model_path = save_model(model, Path(ctx.models_dir) / f"{trial_id}.keras")
    return {
        "val_accuracy": float(history["val_accuracy"][best]),
        "val_loss": float(history["val_loss"][best]),
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "epochs_run": len(history["loss"]),
        "best_epoch": best + 1,
        "train_time_s": train_time,
        "first_epoch_s": reporter.epoch_times[0] if reporter.epoch_times else None,
        "params": params,
        "model_path": model_path,
        "build_s": build_time,
        "evaluate_s": t_save - t_eval,
        "save_s": time.perf_counter() - t_save,
    }


def selected_epoch(history: dict[str, list[float]], stopper: Any) -> int:
    """0-based epoch whose weights the model holds after fit.

    EarlyStopping's own choice (it honours `min_delta`) when it restored best weights;
    otherwise the last epoch, whose weights are the ones evaluated and saved.
    """
    last = len(history["loss"]) - 1
    if stopper is None or not stopper.restore_best_weights or stopper.best_weights is None:
        return last
    return min(int(stopper.best_epoch), last)


def trial_seed(seed: int, config: dict[str, Any]) -> int:
    """Same spec seed and configuration -> same initial weights and data order."""
    return (seed * 1_000_003 + zlib.crc32(json.dumps(config, sort_keys=True).encode())) % 2**31


def save_model(model: Any, path: Path) -> str:
    """Write atomically so a crash never leaves a truncated .keras file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    return str(path)


def configure_threads(cpus: float) -> None:
    """Match the backend's thread pools to the trial's CPU share, once per worker."""
    global _configured_threads
    threads = max(1, int(cpus))
    if _configured_threads is not None:
        return
    _configured_threads = threads
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


def worker_env(backend: str, cpus: float) -> dict[str, str]:
    """Environment for Ray workers: backend, quiet logs, shareable GPU memory, threads."""
    threads = str(max(1, int(cpus)))
    return {
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "OMP_NUM_THREADS": threads,
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false" if threads == "1" else "",
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": "10",
    }


def environment() -> dict[str, str]:
    """Backend and versions, device, Ray node and GPU ids: what produced a result."""
    import keras
    import ray

    import harness

    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    return {
        "backend": backend,
        "backend_version": getattr(sys.modules.get(module), "__version__", "unknown"),
        "keras_version": keras.__version__,
        "harness_version": harness.__version__,
        "device": device_name(backend),
        "node": ray.get_runtime_context().get_node_id(),
        "gpu_ids": ",".join(str(i) for i in ray.get_gpu_ids()),
    }


def device_name(backend: str) -> str:
    """ "cpu" or the GPU model the trial ran on."""
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            return "cpu" if dev.platform == "cpu" else dev.device_kind
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu")
    except Exception:  # device lookup is informative only
        return "unknown"
