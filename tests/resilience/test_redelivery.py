"""Every webhook delivered three times and out of order, while the contacts keep changing in Xero: the
final Pipedrive state equals the Xero state (each sync reads the record as Xero has it now)."""

import datetime as dt
import os
import random
import time
from datetime import timedelta

from tests.resilience.stack import wait_for

RECORDS = int(os.environ.get("RESILIENCE_REDELIVERY_RECORDS", "100"))


def test_triple_out_of_order_deliveries_end_with_pipedrive_equal_to_xero(make_stack):
    stack = make_stack()
    ids = stack.prepare(contacts=RECORDS, prefix="Redelivered")
    stack.start(clusters=2)
    chance = random.Random(RECORDS)
    t0 = dt.datetime.now(dt.UTC)
    events = [stack.xero_event(contact_id, t0, "CREATE") for contact_id in ids]
    pending = []  # deliveries still to make: each event three times
    for version in (1, 2):
        # The deliveries so far, shuffled, half of them sent now; then Xero changes every contact.
        pending += [event for event in events for _ in range(3)]
        chance.shuffle(pending)
        half, pending = pending[: len(pending) // 2], pending[len(pending) // 2 :]
        for start in range(0, len(half), 40):
            stack.deliver(half[start : start + 40])
        stack.admin(
            "rename_contacts", names={i: f"Redelivered {n:05d} v{version} Ltd" for n, i in enumerate(ids)}
        )
        when = t0 + timedelta(minutes=version)
        events = [stack.xero_event(contact_id, when) for contact_id in ids]
    pending += [event for event in events for _ in range(3)]
    chance.shuffle(pending)
    for start in range(0, len(pending), 40):
        stack.deliver(pending[start : start + 40])

    started = time.monotonic()
    state = wait_for(
        lambda: (s := stack.state())["inbox"].get("done", 0) == s["inbox_total"] and s,
        180,
        2,
        "all done",
        stack.state,
    )
    took = time.monotonic() - started
    print(f"{RECORDS} contacts, {9 * RECORDS} deliveries, all drained {took:.0f}s after the last: {state}")
    assert state["inbox_total"] == 3 * RECORDS, state  # each distinct event stored once, none lost
    assert state["organizations"] == RECORDS and state["duplicated_names"] == [], state
    assert state["not_in_step_count"] == 0, state  # every organization has its contact's latest name
