"""Ten worker processes needing Xero at the same moment with an expired access token: exactly one refresh
call reaches Xero (the refresh runs under the connection's row lock; the others use its result)."""

import time

from tests.resilience.stack import wait_for

WORKERS = 10


def refresh_calls(counts: dict) -> int:
    return sum(
        sum(by_status.values())
        for endpoint, by_status in counts["by_endpoint"].items()
        if "token" in endpoint
    )


def test_ten_workers_with_an_expired_token_refresh_it_once(make_stack):
    stack = make_stack(Q_WORKERS=WORKERS)
    ids = stack.prepare(pairs=WORKERS, contacts=1, prefix="Token")
    stack.start(clusters=1)
    wait_for(lambda: len(stack.cluster_workers(0)) >= WORKERS, 60, 0.5, f"{WORKERS} workers up")
    time.sleep(2)  # the workers settle
    stack.post_json("/sandbox/xero/_reset", {})
    stack.admin("expire_xero_token")

    stack.admin("queue_contact_events", contact_ids=ids)  # one drain per pair: ten at once

    state = wait_for(
        lambda: (s := stack.state())["inbox"].get("done", 0) == WORKERS and s,
        120,
        1,
        "ten drains",
        stack.state,
    )
    counts = stack.get_json("/sandbox/xero/_counters")
    print(f"Xero calls with an expired token across {WORKERS} workers: {counts['by_endpoint']}")
    assert refresh_calls(counts) == 1, counts
    assert state["inbox"] == {"done": WORKERS}, state
    assert state["connections"]["xero"] == ["active"], state
