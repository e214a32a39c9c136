"""A local search's Ray: only processes holding this user's token can join it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow

JOIN = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); print('JOINED')"


def test_a_local_search_s_ray_refuses_processes_without_the_user_s_token(tmp_path):
    """Ray's servers listen on every interface (Ray has no loopback-only setting): what keeps others
    out is its token, which harness' local Ray requires and keeps readable by its owner only."""
    driver = textwrap.dedent("""
        import sys
        import ray
        from rich.console import Console
        from harness._search.cluster import init_ray, token_path
        init_ray(None, {}, Console(stderr=True))
        print(ray.get_runtime_context().gcs_address, oct(token_path().stat().st_mode & 0o777), flush=True)
        sys.stdin.read()  # hold Ray until the test is done
    """)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    proc = subprocess.Popen([sys.executable, "-c", driver], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        address, mode = proc.stdout.readline().split()
        assert mode == "0o600"
        stranger = {**env, "HOME": str(tmp_path)}  # another user: no ~/.ray/auth_token
        refused = subprocess.run([sys.executable, "-c", JOIN, address], capture_output=True, text=True,
                                 env=stranger, timeout=300)  # fmt: skip
        assert refused.returncode != 0 and "JOINED" not in refused.stdout
        with open(os.path.expanduser("~/.ray/auth_token")) as token:
            holder = {**stranger, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token.read().strip()}
        joined = subprocess.run([sys.executable, "-c", JOIN, address], capture_output=True, text=True,
                                env=holder, timeout=300)  # fmt: skip
        assert "JOINED" in joined.stdout, joined.stderr[-2000:]  # the refusal was the token's doing
    finally:
        proc.communicate("", timeout=120)


def test_a_ray_the_caller_started_is_used_and_what_it_leaves_out_is_said(local_ray):
    from rich.console import Console

    from harness._search.cluster import init_ray

    console = Console(record=True, width=400)
    nodes = init_ray(
        "ray://elsewhere:10001", {"AWS_ENDPOINT_URL": "http://s3", "KERAS_BACKEND": "jax"}, console
    )
    said = console.export_text()
    assert nodes and nodes[0]["CPU"] == 2  # the caller's Ray (the test session's), not `address`
    assert "Ray was already started in this process (ray.init)" in said
    assert "address 'ray://elsewhere:10001'" in said and "AWS_ENDPOINT_URL" in said
    assert "KERAS_BACKEND" not in said  # trials set their own backend in the worker

    quiet = Console(record=True)
    init_ray(None, {"KERAS_BACKEND": "jax"}, quiet)
    assert quiet.export_text() == ""


def test_an_address_where_nothing_answers_is_refused_in_seconds(tmp_path, write_spec):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = run_cli(
        "search", str(write_spec()), "--address", f"127.0.0.1:{port}", "--results", str(tmp_path / "r")
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "--address must name a running Ray cluster" in out.stderr
    assert f"nothing answered at 127.0.0.1:{port}" in out.stderr
    assert not (tmp_path / "r" / "leaderboard").exists()  # refused before any work
