"""Concurrent drains of one pair, with real transactions: per-record order, parallel records.

Several threads drain one pair at once (each its own database connection, as worker processes
would) while changes keep arriving. A stand-in Xero holds each record's current version; the stand-in
sync reads it, yields to the other threads, then writes that copy to a stand-in Pipedrive. The
guarantees: a record is never synced by two drains at once, its Pipedrive copy never goes back to an
older version, every record ends at its newest version, and different records of the pair were synced
at the same time (the drains ran in parallel, not in turn). Written for PostgreSQL (the production
database, ``DATABASE_URL``); it runs on SQLite too, where the claims are serialized by the write lock.
"""

import datetime as dt
import threading
from datetime import timedelta

import pytest
from django.db import connections

from connector.intake import drain
from connector.models import WebhookEvent
from tests.connector.webhook_helpers import Outcome

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
RECORDS = [f"c-{n:02}" for n in range(3)]
CHANGES = 60  # twenty per record
DRAINS = 4


class StandIns:
    """Xero's current version of each record, Pipedrive's copy, and what the syncs saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.xero = dict.fromkeys(RECORDS, 0)
        self.pipedrive = dict.fromkeys(RECORDS, 0)
        self.written: dict[str, list[int]] = {r: [] for r in RECORDS}
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []  # a record synced by two drains at once
        self.most_at_once = 0  # different records in flight together

    def sync(self, pair, category, ids, trigger="webhook", on_outcome=None):
        outcomes = {}
        for record in ids:
            with self.lock:
                if record in self.in_flight:
                    self.overlaps.append(record)
                self.in_flight.add(record)
                self.most_at_once = max(self.most_at_once, len(self.in_flight))
                fetched = self.xero[record]  # the read from Xero
            threading.Event().wait(0.005)  # the HTTP round trips: other drains run meanwhile
            with self.lock:
                self.pipedrive[record] = fetched  # the write to Pipedrive
                self.written[record].append(fetched)
                self.in_flight.discard(record)
            outcomes[record] = Outcome("done")
            if on_outcome is not None:
                on_outcome(record, outcomes[record])
        return outcomes


def test_concurrent_drains_keep_each_record_in_order_and_sync_records_in_parallel(
    pair, settings, monkeypatch
):
    settings.INBOX_CLAIM_BATCH = 2  # small claims, so every drain finds work
    stand_ins = StandIns()
    monkeypatch.setattr(drain, "_sync_records", stand_ins.sync)
    writing_done = threading.Event()
    errors: list[BaseException] = []

    def write_changes():
        try:
            for n in range(CHANGES):
                record = RECORDS[n % len(RECORDS)]
                with stand_ins.lock:
                    stand_ins.xero[record] += 1  # saved in Xero, then its webhook event arrives
                WebhookEvent.objects.create(
                    pair=pair, source="xero", tenant_id="tenant-1", category="CONTACT", resource_id=record,
                    event_type="UPDATE", event_time=T0 + timedelta(milliseconds=n), status="pending",
                )  # fmt: skip
                if n % 6 == 5:
                    threading.Event().wait(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            writing_done.set()
            connections.close_all()

    def keep_draining():
        try:
            while True:
                finished = writing_done.is_set()
                drain.drain_pair(pair.pk)
                if finished and not WebhookEvent.objects.filter(pair=pair, status="pending").exists():
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write_changes)] + [
        threading.Thread(target=keep_draining) for _ in range(DRAINS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a drain never finished"
    assert errors == []

    assert stand_ins.overlaps == [], "a record was synced by two drains at once"
    for record, versions in stand_ins.written.items():
        assert versions == sorted(versions), f"{record}: an older copy overwrote a newer one ({versions})"
    assert stand_ins.pipedrive == stand_ins.xero == dict.fromkeys(RECORDS, CHANGES // len(RECORDS))
    assert stand_ins.most_at_once >= 2, "the drains never synced two records of the pair at once"
    assert set(WebhookEvent.objects.filter(pair=pair).values_list("status", flat=True)) == {"done"}
