"""kill -9 of worker processes at random moments during a contacts sync, the workers restarted as the run
command's supervisor would: every record is synced exactly once and no inbox row is left behind."""

import datetime as dt
import os
import random
import time

from tests.resilience.stack import wait_for

RECORDS = int(os.environ.get("RESILIENCE_KILL_RECORDS", "400"))
SCENARIO_SECONDS = 240


def created(counts: dict, endpoint: str) -> int:
    return sum(n for status, n in counts.get("by_endpoint", {}).get(endpoint, {}).items() if status < "300")


def test_workers_killed_at_random_moments_lose_and_duplicate_nothing(make_stack):
    stack = make_stack()
    ids = stack.prepare(contacts=RECORDS, prefix="Killed")
    stack.start(clusters=2)
    started = time.monotonic()
    when = dt.datetime.now(dt.UTC)
    for start in range(0, len(ids), 100):
        stack.deliver([stack.xero_event(contact_id, when) for contact_id in ids[start : start + 100]])

    chance = random.Random(RECORDS)
    kills = 0
    while kills < 6 and stack.state()["inbox"].get("done", 0) < RECORDS:
        time.sleep(chance.uniform(1.0, 4.0))
        # The whole cluster (its main process and workers), restarted as the run command's supervisor
        # does. Not one worker child alone: django-q2's cluster can hang for good when a child dies
        # holding its internal task queue's lock, which no connector code can undo.
        stack.restart_cluster(chance.randrange(len(stack.clusters)))
        kills += 1

    state = wait_for(
        lambda: (s := stack.state())["inbox"].get("done", 0) == RECORDS and s,
        SCENARIO_SECONDS - (time.monotonic() - started),
        2,
        f"all {RECORDS} events done",
        describe=stack.state,
    )
    counts = stack.get_json("/sandbox/pipedrive/_counters")
    took = time.monotonic() - started
    print(f"{RECORDS} contacts synced in {took:.0f}s through {kills} cluster kills")
    assert state["inbox"] == {"done": RECORDS}, state
    assert state["organizations"] == RECORDS and state["duplicated_names"] == [], state
    assert state["not_in_step_count"] == 0, state
    assert created(counts, "POST /api/v2/organizations") == RECORDS, counts
    assert kills >= 3, "hardly anything was killed: the scenario proved little"
