"""The named lock behind the per-record writer lock (SQLite: flock; PostgreSQL: advisory locks)."""

import threading

import pytest
from django.db import connection as db_connection

from connector.locks import RECORD_LOCK_FILES, lock_key, named_lock

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
