"""One search per study and results folder at a time; readers never wait.

A lock file `<results>/locks/<study>.lock` holds the holder's host, pid and start time.
It is created exclusively (`O_EXCL`, atomic on local disks and NFSv3+), removed when the
search ends, and taken over when its holder is gone: same host, process no longer alive
(a search killed with -9). A holder on another host cannot be checked from here, so the
message says how to release it. Object stores have no exclusive create: there the
search warns instead (documented).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from harness._errors import HarnessError
from harness._record import now
from harness._storage import Location

LOCKS_DIR = "locks"


@contextmanager
def study_lock(results: Location, study: str, console: Console) -> Iterator[None]:
    """Hold the study's lock for the block; refuse (HarnessError) while a live search holds it."""
    if not results.local:
        console.print(
            f"[yellow]warning:[/] {results.uri} is an object store, which cannot hold a lock: do not run "
            f"two searches of study {study!r} into it at once."
        )
        yield
        return
    path = Path(results.path) / LOCKS_DIR / f"{study}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    _acquire(path, study)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _acquire(path: Path, study: str) -> None:
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": now().isoformat()}
    for _ in range(3):  # a stale lock moved aside by us or by another starter: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and _alive(holder):
                raise HarnessError(
                    f"study {study!r} in {path.parent.parent} is being searched by pid {holder.get('pid')} "
                    f"on {holder.get('host')} since {holder.get('started_at')}; wait for it to end, or use "
                    f"another --study or --results. If that search is gone (its host is down), remove {path}."
                ) from None
            _move_aside(path)
            continue
        with os.fdopen(fd, "w") as stream:
            json.dump(me, stream)
        return
    raise HarnessError(f"{path}: could not take the study's lock; another search is starting. Try again.")


def _holder(path: Path) -> dict[str, object] | None:
    """The lock's holder, or None when the file is gone or unreadable (a torn write: stale)."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(holder: dict[str, object]) -> bool:
    """Whether the holder may still run: on another host we cannot tell, so assume it does."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(str(holder.get("pid"))), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _move_aside(path: Path) -> None:
    """Retire a stale lock; only one of several starters succeeds, the others retry."""
    aside = path.with_name(f".{path.name}.stale-{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    aside.unlink(missing_ok=True)
