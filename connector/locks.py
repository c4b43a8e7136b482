"""Locks that serialize work across threads and worker processes: one helper for every lock.

PostgreSQL: session advisory locks (not a transaction: holders make HTTP calls and must not keep
a transaction open meanwhile), so they hold across machines. SQLite (one host): an exclusive
``flock`` on a file under ``DATA_DIR/locks``, re-entrant within a thread like an advisory lock is
within a session.

- ``named_lock(name)``: work named ``name`` (a record's sync, a pair's drain, an index refresh);
  ``shared=True`` takes it in shared mode: any number of shared holders at once, none while an
  exclusive holder has it (a pair's drains run side by side, a backfill chunk excludes them all).
- ``file_lock(path)``: the flock primitive, for callers that lock by other means on PostgreSQL.
- ``claim_lock(name)``: inside an open transaction, serialize it with others of that name until
  its commit (a short critical section, such as a drain's claim).
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
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a flock on ``path`` (created if missing), exclusive unless ``shared``. A thread that
    already holds the file goes straight in: flock would otherwise wait for itself."""
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(name: str, *, shared: bool = False) -> Iterator[None]:
    """A PostgreSQL session advisory lock on ``name``'s key (shared or exclusive), released on exit."""
    key = lock_key(name)
    mode = "_shared" if shared else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_lock{mode}(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock{mode}(%s)", [key])


@contextmanager
def named_lock(name: str, *, path: Path | None = None, shared: bool = False) -> Iterator[None]:
    """Serialize work named ``name`` across threads and processes (``shared``: only against
    exclusive holders).

    PostgreSQL: an advisory lock. SQLite: a flock on ``path`` when given (a lock of its own),
    otherwise on one of ``RECORD_LOCK_FILES`` shared files chosen by the name's hash.
    """
    if connection.vendor == "postgresql":
        with advisory_lock(name, shared=shared):
            yield
        return
    if path is None:
        path = lock_path("records", str(lock_key(name) % RECORD_LOCK_FILES))
    with file_lock(path, shared=shared):
        yield


def claim_lock(name: str) -> None:
    """Serialize the open transaction with every other one that calls this with ``name``, until
    it ends (commit or rollback). PostgreSQL: a transaction advisory lock. SQLite needs none: the
    connector's transactions there are IMMEDIATE (config/env.py), so an open one already holds the
    database's only write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])
