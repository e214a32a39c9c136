"""Shared fixtures: real datasets, one local Ray, an S3 server, record factories, spec files, the CLI."""

from __future__ import annotations

import importlib.util
import os
import pickle
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

os.environ["HARNESS_STRICT"] = "1"  # `harness search --strict` in every CLI run (see strict_searches)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from harness import TrialRecord  # noqa: E402

SMALL_SPACE = {
    "conv_blocks": {"type": "int", "low": 1, "high": 2},
    "filters": {"type": "categorical", "choices": [4, 8], "per_block": True},
    "kernel_size": 3,
    "dense_units": 16,
    "learning_rate": {"type": "float", "low": 3e-3, "high": 1e-2, "log": True},
    "batch_size": 64,
}


def missing(*modules: str, extra: str) -> str | None:
    """Why a test of an optional extra cannot run here (packages looked for, not imported), or None."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"{', '.join(absent)} not installed: pip install -e '.[{extra}]'" if absent else None


def needs(*modules: str, extra: str) -> pytest.MarkDecorator:
    """Skip with the reason where an optional extra is absent, instead of failing."""
    reason = missing(*modules, extra=extra)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


needs_jax = needs("jax", extra="jax")


@pytest.fixture(autouse=True)
def strict_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every search a test runs is strict (`run_search(strict=True)` by default here): a defect
    inside harness fails the test, not just a row. CLI runs read HARNESS_STRICT (`--strict`)."""
    from harness._search.search import run_search

    monkeypatch.setitem(run_search.__kwdefaults__, "strict", True)


@pytest.fixture
def fake_gpus_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take Ray's fake GPUs (`fake_gpu_ray`) as real for one test of packing: the search skips its
    probe for a CUDA device and trains on the CPU backend."""
    from harness._search import search as _search
    from harness._trial.devices import provisional_backend

    monkeypatch.setattr(
        _search, "choose_backend", lambda requested, gpus, auto=False: provisional_backend(requested)
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets (HARNESS_DATA_DIR, else /work/shared/data); skip when missing."""
    path = Path(os.environ.get("HARNESS_DATA_DIR") or "/work/shared/data")
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}; set HARNESS_DATA_DIR to run this test")
    return path


LOCAL_RAY = {
    "num_cpus": 2, "include_dashboard": False, "log_to_driver": False,
    # the tests' model functions (user_models), importable by the workers as a user's PYTHONPATH makes them
    "runtime_env": {"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}},
}  # fmt: skip


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray for the whole session, with this machine's 2 CPUs and no GPU."""
    import ray

    ray.init(**LOCAL_RAY)
    yield
    ray.shutdown()


@pytest.fixture
def fake_gpu_ray(local_ray: None) -> Iterator[None]:
    """For one test, a local Ray that also counts 2 GPUs (bookkeeping only: no device behind them)."""
    import ray

    ray.shutdown()
    ray.init(**LOCAL_RAY, num_gpus=2)
    yield
    ray.shutdown()
    ray.init(**LOCAL_RAY)


def make_record(
    study: str = "s", trial_id: str = "t", status: str = "completed", acc: float | None = 0.9, **extra: Any
) -> TrialRecord:
    """A plausible leaderboard record; `extra` overrides any field."""
    values: dict[str, Any] = {
        "study": study, "trial_id": trial_id, "status": status, "dataset": "digits",
        "val_accuracy": acc, "val_loss": None if acc is None else 1 - acc,
        "objective_metric": "val_accuracy", "objective_mode": "max",
        "started_at": datetime.now(UTC),
        "hyperparameters": {"conv_blocks": 2, "filters_1": 8, "filters_2": 16, "optimizer": "adam"},
    }  # fmt: skip
    if status == "completed":
        values.update(test_accuracy=acc, params=100, epochs_run=2)
    if status == "failed":
        values.update(error="TrialFailed: boom", error_kind="user")
    values.update(extra)
    return TrialRecord(**values)


def optuna_study(results: Path, study: str) -> optuna.Study:
    """The run's Optuna study as Ray saved it with the experiment at the end of the search."""
    (state,) = sorted((results / "runs" / study).glob("run-*/searcher-state-*.pkl"))[-1:]
    study_object: optuna.Study = pickle.loads(state.read_bytes())["_ot_study"]
    return study_object


@pytest.fixture
def record() -> Callable[..., TrialRecord]:
    return make_record


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a small digits spec; keyword arguments replace top-level sections wholesale.

    Its searches leave out the cold-start probe (`search.probe: false`) unless a test asks for
    it: most tests count and order the trials they sample.
    """

    def write(**overrides: Any) -> Path:
        spec: dict[str, Any] = {
            "study": "t",
            "dataset": {"name": "digits", "validation_split": 0.2},
            "search": {"trials": 4, "max_epochs": 2, "seed": 0,
                       "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2}},
            "resources": {"cpus_per_trial": 1},
            "space": SMALL_SPACE,
        }  # fmt: skip
        spec.update(overrides)
        spec["search"] = {"probe": False, **spec["search"]}
        path = tmp_path / "space.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    return write


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`harness ARGS...` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@dataclass(frozen=True)
class S3:
    """A real S3 API on localhost (moto's standalone server) and the variables that reach it."""

    env: dict[str, str]

    def bucket(self) -> str:
        """A new, empty bucket."""
        import boto3

        name = f"harness-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", **self.client_args()).create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        import boto3

        pages = boto3.client("s3", **self.client_args()).get_paginator("list_objects_v2")
        return [
            o["Key"]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]

    def read(self, bucket: str, key: str) -> bytes:
        import boto3

        answer = boto3.client("s3", **self.client_args()).get_object(Bucket=bucket, Key=key)
        body: bytes = answer["Body"].read()
        return body

    def client_args(self) -> dict[str, str]:
        return {
            "endpoint_url": self.env["AWS_ENDPOINT_URL"],
            "aws_access_key_id": self.env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": self.env["AWS_SECRET_ACCESS_KEY"],
            "region_name": self.env["AWS_DEFAULT_REGION"],
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's server on a free port for the session; its variables are not set in this process.

    Skipped with the reason without moto's server (flask) or boto3; a server that exits fails
    at once, with its log, instead of after the wait.
    """
    reason = missing("moto", "flask", "boto3", extra="test")
    if reason:
        pytest.skip(f"the S3 tests need moto's server: {reason}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.time() + 60
    while True:
        if server.poll() is not None:
            pytest.fail(f"moto's server exited ({server.returncode}): {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                server.kill()
                pytest.fail(f"moto's server did not listen on port {port} in 60 s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    yield S3(env)
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def s3(s3_server: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The S3 server, with its variables set in this process for one test."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
