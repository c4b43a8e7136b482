"""connector/locks.py: named locks (SQLite: flock; PostgreSQL: advisory locks), file locks, the drain lock."""

import threading

import pytest
from django.db import connection as db_connection

from connector.intake.drain import pair_drain_lock
from connector.locks import RECORD_LOCK_FILES, file_lock, lock_key, named_lock

pytestmark = pytest.mark.django_db


def _two_names_sharing_a_file() -> tuple[str, str]:
    seen = {}
    for number in range(5000):
        name = f"record-{number}"
        slot = lock_key(name) % RECORD_LOCK_FILES
        if slot in seen:
            return seen[slot], name
        seen[slot] = name
    raise AssertionError("no two names share a lock file")


def test_nested_locks_sharing_a_file_do_not_wait_for_themselves_but_exclude_other_threads():
    if db_connection.vendor == "postgresql":
        pytest.skip("advisory locks: re-entrant per session by design")
    first, second = _two_names_sharing_a_file()
    entered, other_got_in = threading.Event(), threading.Event()
    seen = {}

    def nested():
        with named_lock(first), named_lock(second):
            entered.set()
            other = threading.Thread(target=lambda: named_lock_and_flag(second, other_got_in), daemon=True)
            other.start()
            seen["other waited"] = not other_got_in.wait(0.3)  # excluded while this thread holds it
        other.join(timeout=5)

    def named_lock_and_flag(name, flag):
        with named_lock(name):
            flag.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert entered.is_set() and not worker.is_alive()
    assert seen == {"other waited": True}
    assert other_got_in.is_set()  # ... and gets in once it is released


def _held_elsewhere(lock) -> tuple[bool, threading.Thread]:
    """Whether another thread finds ``lock`` (a context manager factory) taken for 0.3 s, and that thread."""
    got_in = threading.Event()

    def other():
        with lock():
            got_in.set()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    waited = not got_in.wait(0.3)
    return waited, thread


def test_a_file_lock_excludes_other_threads_until_released(tmp_path):
    path = tmp_path / "locks" / "one.lock"
    with file_lock(path):
        assert path.exists()
        waited, thread = _held_elsewhere(lambda: file_lock(path))
        assert waited
    thread.join(timeout=5)
    assert not thread.is_alive()  # it got the lock once released


def test_the_drain_lock_has_its_own_file_never_a_shared_record_lock_file(settings, tmp_path):
    if db_connection.vendor == "postgresql":
        pytest.skip("advisory locks: no files")
    settings.DATA_DIR = tmp_path
    with pair_drain_lock(7):
        assert (tmp_path / "locks" / "drains" / "pair-7.lock").exists()
        assert not (tmp_path / "locks" / "records").exists()
        waited, thread = _held_elsewhere(lambda: pair_drain_lock(7))
        assert waited  # a second drain of the pair waits
        other_pair_waited, other = _held_elsewhere(lambda: pair_drain_lock(8))
        assert not other_pair_waited  # another pair's drain does not
    thread.join(timeout=5)
    other.join(timeout=5)
