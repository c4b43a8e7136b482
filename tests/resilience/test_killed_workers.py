"""kill -9 of worker processes at random moments during a contacts sync, the workers restarted as the run
command's supervisor would: every record is synced exactly once and no inbox row is left behind."""

import datetime as dt
import os
import random
import time

from tests.resilience.stack import wait_for

RECORDS = int(os.environ.get("RESILIENCE_KILL_RECORDS", "500"))
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
    kills = []
    while len(kills) < 8 and stack.state()["inbox"].get("done", 0) < RECORDS:
        time.sleep(chance.uniform(0.5, 3.0))
        index = chance.randrange(len(stack.clusters))
        workers = stack.cluster_workers(index)
        if workers and chance.random() < 0.5:
            os.kill(chance.choice(workers), 9)  # one worker: django-q2's cluster starts another
            kills.append("worker")
        else:
            stack.restart_cluster(index)  # the whole cluster, restarted as the supervisor does
            kills.append("cluster")

    state = wait_for(
        lambda: (s := stack.state())["inbox"].get("done", 0) == RECORDS and s,
        SCENARIO_SECONDS - (time.monotonic() - started),
        2,
        f"all {RECORDS} events done",
        describe=stack.state,
    )
    counts = stack.get_json("/sandbox/pipedrive/_counters")
    took = time.monotonic() - started
    print(f"{RECORDS} contacts synced in {took:.0f}s through {len(kills)} kills: {kills}")
    assert state["inbox"] == {"done": RECORDS}, state
    assert state["organizations"] == RECORDS and state["duplicated_names"] == [], state
    assert state["not_in_step_count"] == 0, state
    assert created(counts, "POST /api/v2/organizations") == RECORDS, counts
    assert kills, "nothing was killed: the scenario proved nothing"
