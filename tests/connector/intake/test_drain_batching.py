"""Batching against the Xero minute: read at once while the limiter has room, else wait (bounded) to
fill a batch of up to 100 ids. The limiter's real state decides (its windows in the database, or in
Redis with REDIS_URL); the wait runs on a stand-in clock, so nothing here is timed."""

import datetime as dt
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from connector.intake import drain
from connector.limits.ratelimit import XeroLimiter
from connector.models import WebhookEvent

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def tenant(pair):
    """A tenant of its own: limiter windows (in Redis, they outlive a test) start empty."""
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    pair.xero_connection.tenant_id = tenant_id
    pair.xero_connection.save(update_fields=["tenant_id"])
    return tenant_id


class Arrivals:
    """A stand-in clock for the drain's wait; each pause lets ``per_pause`` more events arrive.

    Its wall clock (the one the drain counts recent arrivals back from) moves with it, and events
    arrive at its time, so a slow start (a loaded machine, a first import) cannot make the three
    events of a moment ago look a second old."""

    def __init__(self, pair, tenant_id, per_pause=0):
        self.pair, self.tenant_id, self.per_pause = pair, tenant_id, per_pause
        self.now, self.pauses, self.added = 1000.0, [], 0
        self.wall_start = timezone.now()

    def wall(self):
        return self.wall_start + timedelta(seconds=self.now - 1000.0)

    def add(self, count):
        first = self.added
        WebhookEvent.objects.bulk_create(
            WebhookEvent(
                pair=self.pair, source="xero", tenant_id=self.tenant_id, category="CONTACT",
                resource_id=f"c-{self.added + n:04}", event_type="UPDATE",
                event_time=T0 + timedelta(milliseconds=self.added + n), status="pending",
            )
            for n in range(count)
        )  # fmt: skip
        self.added += count
        names = [f"c-{n:04}" for n in range(first, self.added)]
        WebhookEvent.objects.filter(pair=self.pair, resource_id__in=names).update(received_at=self.wall())

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds
        self.add(self.per_pause)


@pytest.fixture
def arrivals(pair, tenant, monkeypatch, settings):
    settings.INBOX_BATCH_WAIT_SECONDS = 2
    stand_in = Arrivals(pair, tenant)
    monkeypatch.setattr(drain, "_clock", stand_in.clock)
    monkeypatch.setattr(drain, "_sleep", stand_in.sleep)
    monkeypatch.setattr(drain, "_wall_now", stand_in.wall)
    return stand_in


def spend(tenant_id, calls):
    limiter = XeroLimiter(tenant_id)
    for _ in range(calls):
        limiter.spend(1)


def test_with_room_in_the_minute_events_are_read_at_once(pair, fake_sync, arrivals, settings):
    settings.XERO_MINUTE_LIMIT = 6000  # three recent events, read at once, cost far less than that
    arrivals.per_pause = 50
    arrivals.add(3)
    report = drain.drain_pair(pair.pk)
    assert arrivals.pauses == [] and report["batch_wait_seconds"] == 0
    assert fake_sync.calls == [("CONTACT", ["c-0000", "c-0001", "c-0002"])]


def test_short_of_room_the_drain_waits_for_a_full_batch_of_100(pair, fake_sync, arrivals, settings):
    settings.XERO_MINUTE_LIMIT = 60  # Xero's real minute: three events a second would need 180
    arrivals.per_pause = 25  # a payment run arriving
    arrivals.add(3)
    report = drain.drain_pair(pair.pk)
    assert len(arrivals.pauses) == 4  # 3 + 4 x 25 = 103: a full batch, then no more waiting
    assert sum(arrivals.pauses) <= 2
    assert report["batch_wait_seconds"] == pytest.approx(sum(arrivals.pauses))
    # One claim of all that arrived: Xero is read for 100 ids per call, not for 3 and then more.
    assert [len(ids) for _, ids in fake_sync.calls] == [103]


def test_the_wait_for_a_fuller_batch_is_bounded(pair, fake_sync, arrivals, settings):
    settings.XERO_MINUTE_LIMIT = 60
    arrivals.add(3)  # and nothing more arrives
    report = drain.drain_pair(pair.pk)
    assert sum(arrivals.pauses) == pytest.approx(2.0)
    assert report["batch_wait_seconds"] == pytest.approx(2.0)
    assert fake_sync.calls == [("CONTACT", ["c-0000", "c-0001", "c-0002"])]  # read after the wait


def test_the_limiters_state_decides_not_the_arrivals_alone(pair, fake_sync, arrivals, settings, tenant):
    settings.XERO_MINUTE_LIMIT = 600  # three recent events read at once: about 180 calls a minute
    arrivals.add(3)
    drain.drain_pair(pair.pk)
    assert arrivals.pauses == []  # room: 600 left
    spend(tenant, 500)  # the same arrivals, but the minute has only 100 left
    arrivals.add(3)
    drain.drain_pair(pair.pk)
    assert sum(arrivals.pauses) == pytest.approx(2.0)
    assert [len(ids) for _, ids in fake_sync.calls] == [3, 3]


def test_a_full_batch_pending_is_read_without_waiting(pair, fake_sync, arrivals, settings):
    settings.XERO_MINUTE_LIMIT = 60
    arrivals.add(100)
    drain.drain_pair(pair.pk)
    assert arrivals.pauses == []
    assert [len(ids) for _, ids in fake_sync.calls] == [100]


def test_a_lone_change_is_read_at_once_even_at_the_real_limit(pair, fake_sync, arrivals, settings):
    settings.XERO_MINUTE_LIMIT = 60  # one event a second read at once is the whole minute: affordable
    arrivals.add(1)
    drain.drain_pair(pair.pk)
    assert arrivals.pauses == [] and fake_sync.calls == [("CONTACT", ["c-0000"])]
