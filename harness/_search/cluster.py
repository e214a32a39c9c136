"""Starting or joining Ray for a search, and keeping a local Ray closed to everyone else.

Ray's gRPC servers (GCS, raylets, workers) listen on every interface; Ray 2.60 has no
setting to bind them to loopback. What keeps a local search's Ray from running other
people's code is Ray's token authentication: every connection must present the token in
`~/.ray/auth_token`. That is Ray's default for a new local cluster; harness warns when a
user opts out, makes the token file readable by its owner only (Ray writes it 0644), and
a test checks that a process without the token cannot join.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from harness._errors import ArgumentError
from harness._storage import STORAGE_ENV, secret

AUTH_MODE = "RAY_AUTH_MODE"
JOIN_PROBE_S = 10.0
"""How long a cluster's head may take to accept a connection before `--address` is refused."""


def init_ray(address: str | None, env: dict[str, str], console: Console) -> list[dict[str, float]]:
    """Start or join Ray (unless the caller already did); each live node's resources."""
    import ray

    if ray.is_initialized():
        _note_what_is_left_out(address, env, console)
    else:
        _start_ray(address, env, console)
    _keep_secrets_out_of_trials()
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [dict(node["Resources"]) for node in nodes if node["Alive"]]


def _note_what_is_left_out(address: str | None, env: dict[str, str], console: Console) -> None:
    """The caller's own `ray.init()` wins: say which of the search's settings it leaves out."""
    unused = []
    if address is not None:
        unused.append(f"address {address!r} (the Ray this process already joined is used)")
    storage = sorted(name for name in env if name.startswith(STORAGE_ENV) or name == "PYTHONPATH")
    if storage:
        unused.append(
            f"the settings {', '.join(storage)} for the workers (object store, your model's module; pass "
            "them in your ray.init(runtime_env={'env_vars': ...}), or set them on every node)"
        )
    if unused:
        console.print(
            Text.assemble(("note:", "bold yellow"), " Ray was already started in this process (ray.init); "
            "harness uses it as it is, without " + "; ".join(unused) + ".")
        )  # fmt: skip


def _start_ray(address: str | None, env: dict[str, str], console: Console) -> None:
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if address is None:
        _require_token(console)
    else:
        _check_reachable(address)
    try:
        ray.init(
            address=address,
            runtime_env={"env_vars": env},
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        why = f"joining failed with {type(exc).__name__}: {exc}{_token_hint()}"
        raise _not_a_cluster(address, why) from None
    finally:
        _owner_only(token_path())


def _require_token(console: Console) -> None:
    """Say so when the user opted out of the token a new local Ray requires (Ray's default since
    2.52; setting the variable here would come too late: Ray reads it when imported)."""
    mode = os.environ.get(AUTH_MODE, "token")
    if mode.lower() != "token":
        console.print(Text(
            f"warning: {AUTH_MODE}={mode}: this search's Ray accepts work from anyone who can reach "
            f"this machine's network ports; unset {AUTH_MODE} to require Ray's token.", style="yellow",
        ))  # fmt: skip


def _check_reachable(address: str) -> None:
    """A `host:port` where nothing answers fails here in seconds: Ray's own join retries for
    minutes before it gives up. `auto`, `local` and `ray://` addresses are Ray's to resolve."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=JOIN_PROBE_S).close()
    except OSError as exc:
        why = f"nothing answered at {address} ({type(exc).__name__}: {exc})"
        raise _not_a_cluster(address, why) from None


def _not_a_cluster(address: str | None, why: str) -> ArgumentError:
    return ArgumentError(
        "address", f"must name a running Ray cluster (`ray status` on its head node prints its "
        f"address), or be left out to run locally; {why}", address,
    )  # fmt: skip


def _token_hint() -> str:
    """Ray 2.60's `ray start` requires a token, and a driver without `RAY_AUTH_MODE=token` fails
    to join with only a ConnectionError (the InvalidAuthToken is in Ray's log lines)."""
    if os.environ.get(AUTH_MODE, "").lower() == "token":
        return ""
    return (
        f". A cluster started with {AUTH_MODE}=token (Ray's `ray start` requires a token) needs it "
        f"here too: `export {AUTH_MODE}=token`, with the head's {token_path()} copied to this machine"
    )


def token_path() -> Path:
    """Where Ray keeps the token of local clusters it starts."""
    return Path.home() / ".ray" / "auth_token"


def _owner_only(path: Path) -> None:
    if path.is_file() and path.stat().st_uid == os.getuid():
        path.chmod(0o600)


def _keep_secrets_out_of_trials() -> None:
    """Ray Tune copies the driver's AWS keys into every trial's runtime environment, which Ray's
    runtime-env agent writes verbatim into its log (readable by every user of the node). Trials
    need none of them: a local Ray's workers inherit the driver's environment, and a cluster's
    nodes hold their own credentials (docs/guides/security.md)."""
    from ray.tune.execution import class_cache

    forwarded = class_cache.ENV_VARS_TO_PROPAGATE
    class_cache.ENV_VARS_TO_PROPAGATE = {name for name in forwarded if not secret(name)}
