"""One search per study and results folder at a time; readers never wait.

The lock is a kernel lock (`flock`) on `<results>/locks/<study>.lock`: the kernel grants
it to one process and releases it when that process ends, however it ends (kill -9, the
OOM killer), so there is no staleness to judge and nothing to take over: no race between
two starters, no PID reuse, no confusion between containers that share a hostname. The
file also holds the holder's host, pid and start time, for the refusal message only; it
stays in place when released (deleting a locked file would let a third starter lock a
new file while a second still holds the old one).

On NFS, Linux sends `flock` to the server as a byte-range lock (NFSv4, or v3 with lockd):
one holder across all clients, and a crashed client's lock lapses with its lease (about
90 s). A mount with `local_lock=flock` or `nolock` keeps locks on each client: there two
hosts can both search one study, so do not use one for shared results. Object stores have
no lock at all: a search there warns instead (documented).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text

from harness._errors import HarnessError
from harness._results.record import now
from harness._storage import Location

LOCKS_DIR = "locks"


@contextmanager
def study_lock(results: Location, study: str, console: Console) -> Iterator[None]:
    """Hold the study's lock for the block; refuse (HarnessError) while another search holds it."""
    if not results.local:
        console.print(Text(
            f"warning: {results.uri} is an object store, which cannot hold a lock: do not run two "
            f"searches of study {study!r} into it at once.", style="yellow",
        ))  # fmt: skip
        yield
        return
    lock = results / LOCKS_DIR / f"{study}.lock"
    os.makedirs(lock.parent.path, exist_ok=True)
    fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, lock, study)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no holder to name; the kernel lock ends with the close below
    finally:
        os.close(fd)


def _acquire(fd: int, lock: Location, study: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise HarnessError(
            f"study {study!r} in {lock.parent.parent} is being searched by {_holder(lock)}; wait for it to "
            "end, or use another --study or --results."
        ) from None
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": now().isoformat()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)


def _holder(lock: Location) -> str:
    """Who holds the lock, from its file: a search that has just started has not written it yet."""
    try:
        holder = json.loads(lock.read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a search that is starting"
