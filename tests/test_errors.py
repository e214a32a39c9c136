"""Errors in the caller's words: Python arguments for the API, flags for the CLI."""

from __future__ import annotations

from harness import ArgumentError, HarnessError


def test_argument_error_names_the_argument_and_what_was_received():
    error = ArgumentError("backend", "must be one of ['tensorflow', 'jax']", "tf")
    assert str(error) == "`backend` must be one of ['tensorflow', 'jax']. Received: backend='tf'"
    assert (
        error.render("--backend") == "--backend must be one of ['tensorflow', 'jax']. Received: --backend tf"
    )
    assert isinstance(error, HarnessError) and isinstance(error, ValueError)
