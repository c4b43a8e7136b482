"""The shared limiter on the database: windows, waits, daily limits, slots with leases."""

import datetime as dt
import time
from unittest import mock

import pytest

from connector.errors import BudgetExhausted, RateLimited
from connector.limits import ratelimit
from connector.limits.ratelimit import DatabaseBackend, PipedriveLimiter, XeroLimiter
from connector.models import ApiSlot

pytestmark = pytest.mark.django_db

TENANT = "tenant-1"


@pytest.fixture
def clock():
    """The limiter's clock, frozen mid-window; sleeping moves it on."""
    state = {"now": 1_800_000_030.0, "slept": []}

    def fake_sleep(seconds):
        state["slept"].append(seconds)
        state["now"] += seconds

    with mock.patch.object(ratelimit, "time", wraps=time) as fake_time:
        fake_time.time.side_effect = lambda: state["now"]
        fake_time.sleep.side_effect = fake_sleep
        yield state


@pytest.fixture(autouse=True)
def _database_backend(settings):
    settings.REDIS_URL = ""


def test_minute_limit_delays_the_61st_call_to_the_next_window(clock, settings):
    settings.XERO_MINUTE_LIMIT = 60
    limiter = XeroLimiter(TENANT)
    for _ in range(60):
        limiter.spend()
    assert clock["slept"] == [] and limiter.remaining("minute") == 0
    limiter.spend()
    # The window had 30 s left, and a rolling minute still holds 60 calls just after it ends.
    assert sum(clock["slept"]) >= 30
    assert limiter.remaining("minute") == 59


def test_the_minute_is_rolling_a_full_window_weighs_on_the_next(clock, settings):
    settings.XERO_MINUTE_LIMIT = 10
    limiter = XeroLimiter(TENANT)
    for _ in range(10):
        limiter.spend()
    clock["now"] = 1_800_000_060.0 + 30  # half-way through the next window: 5 of the 10 still count
    for _ in range(5):
        limiter.spend()
    assert clock["slept"] == []
    limiter.spend()
    assert clock["slept"]  # the sixth waits for older calls to age out


def test_a_wait_beyond_the_maximum_raises_rate_limited(clock, settings):
    settings.XERO_MINUTE_LIMIT = 2
    settings.API_MAX_LIMIT_WAIT_SECONDS = 5
    limiter = XeroLimiter(TENANT)
    limiter.spend()
    limiter.spend()
    with pytest.raises(RateLimited) as caught:
        limiter.spend()
    assert 0 < caught.value.retry_after <= 30 and clock["slept"] == []


def test_spent_day_limit_raises_budget_exhausted_with_the_reset(clock, settings):
    settings.XERO_DAY_LIMIT = 3
    limiter = XeroLimiter(TENANT)
    for _ in range(3):
        limiter.spend()
    with pytest.raises(BudgetExhausted) as caught:
        limiter.spend()
    assert caught.value.resets_at == dt.datetime.fromtimestamp(1_800_057_600, dt.UTC)  # next UTC midnight
    assert XeroLimiter("other-tenant").remaining("day") == 3


def test_headers_correct_the_count_upwards_only(clock):
    limiter = XeroLimiter(TENANT)
    limiter.spend()
    limiter.observe_remaining("minute", 10)  # another installation used the rest
    assert limiter.remaining("minute") == 10
    limiter.observe_remaining("minute", 40)
    assert limiter.remaining("minute") == 10


def test_pipedrive_spends_the_operation_cost_and_waits_for_the_burst(clock, settings):
    settings.PIPEDRIVE_DAILY_TOKENS = 100
    settings.PIPEDRIVE_BURST_LIMIT = 2
    limiter = PipedriveLimiter("c1", "api-token:1")
    limiter.spend(20)
    limiter.spend(10)
    assert limiter.remaining("daily-tokens") == 70 and clock["slept"] == []
    limiter.spend(10)  # third request in the 2 s window
    assert len(clock["slept"]) == 1 and clock["slept"][0] <= 2
    with pytest.raises(BudgetExhausted):
        limiter.spend(80)
    assert limiter.remaining("daily-tokens") == 60  # nothing spent by the refused call


def test_slots_are_bounded_and_a_dead_workers_lease_expires():
    backend = DatabaseBackend()
    held = [backend.try_acquire("xero", TENANT, 5, lease=30) for _ in range(5)]
    assert all(held) and len(set(held)) == 5
    assert backend.try_acquire("xero", TENANT, 5, lease=30) is None
    backend.release("xero", TENANT, held[0])
    again = backend.try_acquire("xero", TENANT, 5, lease=30)
    assert again is not None
    ApiSlot.objects.filter(holder=held[1]).update(expires_at=ratelimit.now_dt() - dt.timedelta(seconds=1))
    assert backend.try_acquire("xero", TENANT, 5, lease=30) is not None
    assert backend.try_acquire("xero", TENANT, 5, lease=30) is None
