"""PostgreSQL restarted, and Redis restarted, in the middle of a sync: the connector recovers by itself
(no process restarted by hand) and loses nothing. Both restart PRIVATE servers started by the suite,
never the shared ones. The PostgreSQL scenario belongs to the PostgreSQL pass (it restarts the suite's
private PostgreSQL); the Redis scenario runs on both passes, with its own Redis as broker and cache
(on the SQLite pass, with the SQLite database)."""

import datetime as dt
import os
import time

import pytest

from tests.resilience.stack import PrivateRedis, wait_for

RECORDS = int(os.environ.get("RESILIENCE_RESTART_RECORDS", "150"))


def sync_through_a_restart(stack, restart, label: str) -> dict:
    ids = stack.prepare(contacts=RECORDS, prefix=label)
    stack.start(clusters=2)
    started = time.monotonic()
    when = dt.datetime.now(dt.UTC)
    half = len(ids) // 2
    for start in range(0, half, 50):
        stack.deliver(
            [stack.xero_event(contact_id, when) for contact_id in ids[start : min(start + 50, half)]]
        )
    wait_for(
        lambda: stack.state()["inbox"].get("done", 0) >= RECORDS // 5, 120, 0.5, "a fifth synced", stack.state
    )
    restart()
    # Deliveries go on: the receiver answers 5xx while the server is away, and Xero sends again.
    for start in range(half, len(ids), 50):
        stack.deliver([stack.xero_event(contact_id, when) for contact_id in ids[start : start + 50]])
    state = wait_for(
        lambda: (s := stack.state())["inbox"].get("done", 0) == RECORDS and s,
        180,
        2,
        f"all {RECORDS} done",
        stack.state,
    )
    print(f"{label}: {RECORDS} contacts through a restart in {time.monotonic() - started:.0f}s: {state}")
    return state


def assert_nothing_lost_or_duplicated(state):
    assert state["inbox"] == {"done": RECORDS}, state
    assert state["organizations"] == RECORDS and state["duplicated_names"] == [], state
    assert state["not_in_step_count"] == 0, state


def test_postgresql_restarted_mid_run(make_stack, private_postgres):
    if private_postgres is None:
        pytest.skip("the PostgreSQL pass's scenario (DATABASE_URL=postgres://…)")
    stack = make_stack()  # on the suite's private PostgreSQL, restarted below
    state = sync_through_a_restart(stack, private_postgres.restart, "PostgreSQL restart")
    assert_nothing_lost_or_duplicated(state)


@pytest.mark.skipif(not PrivateRedis.available(), reason="redis-server is not installed")
def test_redis_restarted_mid_run(make_stack, tmp_path):
    server = PrivateRedis(tmp_path).start()
    try:
        stack = make_stack(redis_url=server.url)
        state = sync_through_a_restart(stack, server.restart, "Redis restart")
    finally:
        server.stop()
    assert_nothing_lost_or_duplicated(state)
