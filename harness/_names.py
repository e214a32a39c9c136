"""Names that become file and folder names under a results folder: studies and trial ids.

One rule for every entry point (the spec's `study`, `--study`, `--trial`, the Python API)
so that no name can step outside its folder: a letter or digit first, then letters,
digits, `_`, `.` and `-`; no `/`, so never `..` as a path part.
"""

from __future__ import annotations

import re

from harness._errors import ArgumentError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_NAME = 100
_NAME = re.compile(NAME_PATTERN)


def check_name(argument: str, value: object) -> str:
    """`value` if it is a valid study or trial name; else an ArgumentError naming `argument`."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not _NAME.match(value):
        raise ArgumentError(
            argument, f"must be a name of 1-{MAX_NAME} letters, digits, '_', '.' or '-', starting with "
            "a letter or digit (it names a folder under the results)", value,
        )  # fmt: skip
    return value
