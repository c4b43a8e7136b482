"""Locks that serialize work across threads and worker processes: one helper for every lock.

PostgreSQL: session advisory locks (not a transaction: holders make HTTP calls and must not keep
a transaction open meanwhile), so they hold across machines. SQLite (one host): an exclusive
``flock`` on a file under ``DATA_DIR/locks``, re-entrant within a thread like an advisory lock is
within a session.

- ``named_lock(name)``: work named ``name`` (a record's sync, a pair's drain, an index refresh).
- ``file_lock(path)``: the flock primitive, for callers that lock by other means on PostgreSQL.
- ``lock_path(*parts)``: where a lock file lives.
"""

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

RECORD_LOCK_FILES = 1024  # names share these files by hash (SQLite): bounded, never one per record

_held = threading.local()  # lock files this thread holds


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (stable across processes)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_path(*parts: str) -> Path:
    """``DATA_DIR/locks/<parts…>.lock``."""
    *folders, last = parts
    return Path(settings.DATA_DIR, "locks", *folders) / f"{last}.lock"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing). A thread that already holds the
    file goes straight in: flock would otherwise wait for itself."""
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock on ``name``'s key, released on exit."""
    key = lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@contextmanager
def named_lock(name: str, *, path: Path | None = None) -> Iterator[None]:
    """Serialize work named ``name`` across threads and processes.

    PostgreSQL: an advisory lock. SQLite: a flock on ``path`` when given (a lock of its own),
    otherwise on one of ``RECORD_LOCK_FILES`` shared files chosen by the name's hash.
    """
    if connection.vendor == "postgresql":
        with advisory_lock(name):
            yield
        return
    if path is None:
        path = lock_path("records", str(lock_key(name) % RECORD_LOCK_FILES))
    with file_lock(path):
        yield
