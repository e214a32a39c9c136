"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets (HARNESS_DATA_DIR, else /work/shared/data); skip when missing."""
    path = Path(os.environ.get("HARNESS_DATA_DIR") or "/work/shared/data")
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}; set HARNESS_DATA_DIR to run this test")
    return path
