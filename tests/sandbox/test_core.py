"""The sandbox core both emulators share: rate windows, counters, fault switches, control endpoints."""

import json
import threading

import pytest
from django.http import JsonResponse
from django.urls import include, path

from sandbox import clock, counters, faults, ratelimit
from sandbox.models import CallCount, ConcurrencyGauge, FaultSwitch, RateEvent, RateWindow

# This module is its own URLconf: the sandbox is mounted only when SANDBOX_ENABLED is on.
urlpatterns = [path("sandbox/", include("sandbox.urls"))]
pytestmark = pytest.mark.urls(__name__)


@pytest.fixture(autouse=True)
def _fresh_clock():
    clock.reset()
    yield
    clock.reset()


def minute(limit, scope="tenant-1"):
    return ratelimit.Limit(kind="minute", scope=scope, seconds=60, limit=limit)


# ---------------------------------------------------------------- rate windows


@pytest.mark.django_db
def test_spend_counts_down_the_window_and_trips_at_the_limit():
    limits = [minute(3)]
    remaining = [ratelimit.spend("xero", limits).remaining["minute"] for _ in range(3)]
    assert remaining == [2, 1, 0]

    refused = ratelimit.spend("xero", limits)
    assert not refused.allowed
    assert refused.tripped == limits[0]
    assert refused.remaining == {"minute": 0}
    assert 1 <= refused.retry_after <= 60
    # A refused call spends nothing.
    assert RateEvent.objects.filter(kind="minute").count() == 3


@pytest.mark.django_db
def test_spend_is_all_or_nothing_across_windows():
    day = ratelimit.Limit(kind="day", scope="tenant-1", seconds=86400, limit=10)
    tight = ratelimit.Limit(kind="app-minute", scope="app", seconds=60, limit=1)
    assert ratelimit.spend("xero", [day, tight]).allowed

    refused = ratelimit.spend("xero", [day, tight])
    assert not refused.allowed and refused.tripped == tight
    # The day window, which had room, was not charged for the refused call.
    assert ratelimit.remaining("xero", [day]).remaining["day"] == 9
    assert refused.remaining == {"day": 9, "app-minute": 0}


@pytest.mark.django_db
def test_units_larger_than_the_limit_trip_even_in_a_fresh_window():
    outcome = ratelimit.spend("pipedrive", [minute(5, scope="token")], units=6)
    assert not outcome.allowed
    assert not RateEvent.objects.exists()
    daily = ratelimit.Limit(kind="daily-tokens", scope="co", seconds=86400, limit=5, rolling=False)
    assert not ratelimit.spend("pipedrive", [daily], units=6).allowed
    assert not RateWindow.objects.exists()


@pytest.mark.django_db
def test_windows_roll_over_when_the_clock_moves_on():
    limits = [minute(1)]
    assert ratelimit.spend("xero", limits).allowed
    assert not ratelimit.spend("xero", limits).allowed

    clock.advance(60)
    fresh = ratelimit.spend("xero", limits)
    assert fresh.allowed and fresh.remaining == {"minute": 0}


@pytest.mark.django_db
def test_the_time_scale_shortens_windows(settings):
    settings.SANDBOX_TIME_SCALE = 60  # a sandbox minute lasts one real second
    limits = [minute(1)]
    assert ratelimit.spend("xero", limits).allowed
    refused = ratelimit.spend("xero", limits)
    assert not refused.allowed and refused.retry_after == 1

    clock.advance(1)
    assert ratelimit.spend("xero", limits).allowed


@pytest.mark.django_db
def test_limits_are_kept_per_scope_and_service():
    assert ratelimit.spend("xero", [minute(1, scope="tenant-a")]).allowed
    assert ratelimit.spend("xero", [minute(1, scope="tenant-b")]).allowed
    assert ratelimit.spend("pipedrive", [minute(1, scope="tenant-a")]).allowed
    assert not ratelimit.spend("xero", [minute(1, scope="tenant-a")]).allowed


@pytest.mark.django_db
def test_remaining_spends_nothing():
    limits = [minute(2)]
    ratelimit.spend("xero", limits)
    for _ in range(3):
        assert ratelimit.remaining("xero", limits).remaining == {"minute": 1}


# ---------------------------------------------------------------- counters and gauges


@pytest.fixture
def frozen_clock(monkeypatch):
    """Real time stands still: only ``clock.advance`` moves the sandbox clock (a loaded machine
    must not roll a 2-second window between two calls of a test)."""
    base = clock.timezone.now()
    monkeypatch.setattr(clock, "now", lambda: base + clock._offset)


@pytest.mark.django_db(transaction=True)
def test_callers_racing_to_open_a_window_are_all_counted_and_none_refused(frozen_clock):
    """Regression: a caller that missed the row another caller was just creating was refused."""
    limits = [ratelimit.Limit(kind="daily-tokens", scope="race", seconds=60, limit=1000, rolling=False)]
    rounds, callers = 30, 8
    # Every round starts a new window, so every round races to create its row.
    barrier, outcomes = threading.Barrier(callers, action=lambda: clock.advance(60)), []

    def spend():
        from django.db import connection

        try:
            for _ in range(rounds):
                barrier.wait()
                outcomes.append(ratelimit.spend("xero", limits).allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=spend) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(False) == 0
    assert (
        sorted(RateWindow.objects.filter(scope="race").values_list("used", flat=True)) == [callers] * rounds
    )


def _step_to_just_before_a_boundary(seconds: float) -> None:
    """Move the clock to 0.1 s before the next multiple of ``seconds`` (where a fixed window resets)."""
    clock.advance(seconds - (clock.timestamp() % seconds) - 0.1)


@pytest.mark.django_db
def test_a_burst_window_rolls_it_does_not_reset_on_the_clock(frozen_clock):
    """80 calls in 1.1 s against 40 per rolling 2 s: 40 pass, even across a 2-second boundary."""
    burst = ratelimit.Limit(kind="burst", scope="token-1", seconds=2, limit=40)
    _step_to_just_before_a_boundary(2)
    allowed = 0
    for n in range(80):
        if n == 40:
            clock.advance(0.2)  # past the boundary a fixed window would reset at
        allowed += ratelimit.spend("pipedrive", [burst]).allowed
        clock.advance(0.01)
    assert allowed == 40
    refused = ratelimit.spend("pipedrive", [burst])
    assert not refused.allowed and refused.retry_after == 1  # the oldest call leaves within a second
    clock.advance(1.2)
    assert ratelimit.spend("pipedrive", [burst]).allowed


@pytest.mark.django_db
def test_a_xero_minute_rolls_and_frees_room_as_calls_age(frozen_clock):
    limits = [minute(2)]
    assert ratelimit.spend("xero", limits).allowed
    clock.advance(30)
    assert ratelimit.spend("xero", limits).allowed
    clock.advance(29)
    refused = ratelimit.spend("xero", limits)
    assert not refused.allowed and refused.retry_after == 1
    clock.advance(2)  # the first call is now older than a minute; the second is not
    assert ratelimit.spend("xero", limits).allowed
    assert not ratelimit.spend("xero", limits).allowed


@pytest.mark.django_db
def test_the_xero_day_limit_is_a_rolling_24_hours_not_a_utc_day(frozen_clock):
    day = ratelimit.Limit(kind="day", scope="tenant-1", seconds=86400, limit=3)
    _step_to_just_before_a_boundary(86400)  # 23:59:59.9 UTC
    for _ in range(3):
        assert ratelimit.spend("xero", [day]).allowed
    clock.advance(60)  # past UTC midnight
    refused = ratelimit.spend("xero", [day])
    assert not refused.allowed
    assert 86400 - 120 <= refused.retry_after <= 86400  # room again 24 hours after those calls
    clock.advance(86400 - 60)
    assert ratelimit.spend("xero", [day]).allowed


@pytest.mark.django_db(transaction=True)
def test_processes_racing_for_the_last_units_of_a_rolling_window_never_overspend():
    limits = [minute(50, scope="rolling-race")]
    callers, attempts, outcomes = 8, 10, []

    def spend():
        from django.db import connection

        try:
            for _ in range(attempts):
                outcomes.append(ratelimit.spend("xero", limits).allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=spend) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 50
    assert RateEvent.objects.filter(scope="rolling-race").count() == 50


@pytest.mark.django_db
def test_calls_are_counted_by_endpoint_status_and_tenant():
    counters.count_call("pipedrive", "co-1", "GET /api/v2/deals", 200, tokens=10)
    counters.count_call("pipedrive", "co-1", "GET /api/v2/deals", 200, tokens=10)
    counters.count_call("pipedrive", "co-1", "POST /api/v2/deals", 429)
    counters.count_call("pipedrive", "co-2", "GET /api/v2/deals", 200, tokens=10)

    snap = counters.snapshot("pipedrive", "co-1")
    assert snap["calls"] == 3
    assert snap["tokens"] == 20
    assert snap["by_endpoint"] == {"GET /api/v2/deals": {"200": 2}, "POST /api/v2/deals": {"429": 1}}
    assert snap["by_status"] == {"200": 2, "429": 1}
    assert snap["tokens_by_endpoint"] == {"GET /api/v2/deals": 20}
    assert counters.snapshot("pipedrive")["calls"] == 4
    assert counters.calls_to("pipedrive", "GET /api/v2/deals") == 3
    assert counters.calls_to("pipedrive", "GET /api/v2/deals", tenant="co-2") == 1
    assert counters.calls_to("pipedrive", "POST /api/v2/deals", status=200) == 0


@pytest.mark.django_db
def test_in_flight_refuses_beyond_the_limit_and_releases_slots():
    with (
        counters.in_flight("xero", "t", limit=2) as first,
        counters.in_flight("xero", "t", limit=2) as second,
        counters.in_flight("xero", "t", limit=2) as third,
    ):
        assert (first, second, third) == (True, True, False)
        assert ConcurrencyGauge.objects.get(tenant="t").current == 2
    gauge = ConcurrencyGauge.objects.get(tenant="t")
    assert (gauge.current, gauge.peak) == (0, 2)
    assert counters.snapshot("xero", "t")["peak_concurrency"] == 2


@pytest.mark.django_db
def test_a_slot_is_released_when_the_call_raises():
    with pytest.raises(RuntimeError), counters.in_flight("xero", "t", limit=1):
        raise RuntimeError("boom")
    with counters.in_flight("xero", "t", limit=1) as taken:
        assert taken


@pytest.mark.django_db(transaction=True)
def test_in_flight_never_exceeds_the_limit_under_twenty_threads():
    from django.db import connection

    limit, threads = 5, 20
    start = threading.Barrier(threads)
    all_tried = threading.Event()
    lock = threading.Lock()
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def call():
        try:
            start.wait()
            with counters.in_flight("xero", "tenant-x", limit=limit) as taken:
                with lock:
                    outcomes.append(taken)
                    if len(outcomes) == threads:
                        all_tried.set()
                if taken:
                    # Hold the slot until every thread has tried for one: all 20 calls overlap.
                    all_tried.wait(timeout=60)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert all_tried.is_set()
    assert outcomes.count(True) == limit
    assert outcomes.count(False) == threads - limit
    gauge = ConcurrencyGauge.objects.get(service="xero", tenant="tenant-x")
    assert (gauge.peak, gauge.current) == (limit, 0)


# ---------------------------------------------------------------- fault switches


def xero_error(status, message):
    return JsonResponse({"Title": message, "Status": status}, status=status)


@pytest.mark.django_db
def test_no_switch_on_means_the_call_goes_ahead():
    assert faults.inject(faults.get("xero"), xero_error) is None
    assert FaultSwitch.objects.count() == 0  # reading never creates a row


@pytest.mark.django_db
def test_error_rate_answers_500_or_503_in_the_services_shape():
    switch = faults.set_faults("xero", error_rate=1)
    statuses = {faults.inject(switch, xero_error).status_code for _ in range(40)}
    assert statuses <= {500, 503} and statuses
    response = faults.inject(switch, xero_error)
    assert json.loads(response.content)["Status"] == response.status_code


@pytest.mark.django_db
def test_rate_limit_rate_answers_429_with_retry_after():
    response = faults.inject(faults.set_faults("pipedrive", rate_limit_rate=1), xero_error)
    assert response.status_code == 429
    assert response["Retry-After"] == "1"


@pytest.mark.django_db
def test_timeout_hangs_then_answers_504(monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    response = faults.inject(faults.set_faults("xero", timeout_rate=1, timeout_seconds=12), xero_error)
    assert response.status_code == 504
    assert slept == [12]


@pytest.mark.django_db
def test_latency_delays_every_call_without_failing_it(monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    assert faults.inject(faults.set_faults("xero", latency_ms=250), xero_error) is None
    assert slept == [0.25]


@pytest.mark.django_db
def test_rates_are_probabilities():
    switch = faults.set_faults("xero", error_rate=0.5)
    outcomes = [faults.inject(switch, xero_error) is None for _ in range(400)]
    # Both outcomes happen; with p=0.5 over 400 calls either count below 100 has odds ~1e-24.
    assert 100 < outcomes.count(True) < 300


@pytest.mark.django_db
def test_unknown_switches_are_refused():
    with pytest.raises(ValueError, match="unknown fault switches: nonsense"):
        faults.set_faults("xero", nonsense=1)


# ---------------------------------------------------------------- control endpoints


@pytest.mark.django_db
def test_faults_endpoint_reads_and_sets(client):
    assert client.get("/sandbox/xero/_faults").json()["error_rate"] == 0

    response = client.post(
        "/sandbox/xero/_faults", {"error_rate": 0.2, "webhook_reorder": True}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["error_rate"] == 0.2 and response.json()["webhook_reorder"] is True
    assert faults.get("xero").error_rate == 0.2
    assert faults.get("pipedrive").error_rate == 0


@pytest.mark.django_db
def test_faults_endpoint_refuses_unknown_services_and_switches(client):
    assert client.get("/sandbox/salesforce/_faults").status_code == 400
    bad = client.post("/sandbox/xero/_faults", {"explode": 1}, content_type="application/json")
    assert bad.status_code == 400 and b"explode" in bad.content


@pytest.mark.django_db
def test_counters_endpoint(client):
    counters.count_call("xero", "t-1", "GET /Contacts", 200)
    counters.count_call("xero", "t-2", "GET /Invoices", 429)
    assert client.get("/sandbox/xero/_counters").json()["calls"] == 2
    one = client.get("/sandbox/xero/_counters", {"tenant": "t-2"}).json()
    assert one["by_endpoint"] == {"GET /Invoices": {"429": 1}}
    assert client.post("/sandbox/xero/_counters").status_code == 405


@pytest.mark.django_db
def test_reset_endpoint_forgets_one_services_state(client):
    counters.count_call("xero", "t", "GET /Contacts", 200)
    counters.count_call("pipedrive", "c", "GET /api/v2/deals", 200)
    ratelimit.spend("xero", [minute(5)])
    faults.set_faults("xero", error_rate=1)
    clock.advance(3600)

    assert client.post("/sandbox/xero/_reset").json() == {"reset": "xero"}
    assert not CallCount.objects.filter(service="xero").exists()
    assert CallCount.objects.filter(service="pipedrive").exists()
    assert not RateWindow.objects.exists() and not RateEvent.objects.exists()
    assert faults.get("xero").error_rate == 0
    assert abs(clock.now() - clock.timezone.now()).total_seconds() < 60
    assert client.get("/sandbox/xero/_reset").status_code == 405
