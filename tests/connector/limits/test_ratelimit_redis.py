"""The Redis backend of the shared limiter (a private redis-server), and 20 callers through it."""

import shutil
import socket
import subprocess
import time
from unittest import mock

import pytest
import redis

from connector.errors import BudgetExhausted
from connector.limits import ratelimit
from connector.limits.ratelimit import RedisBackend, XeroLimiter
from sandbox import counters, faults
from tests.connector.limits.test_ratelimit_sandbox import run_parallel, urlpatterns, xero_api  # noqa: F401

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")


@pytest.fixture(scope="module")
def redis_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def backend(redis_url, settings):
    redis.Redis.from_url(redis_url).flushdb()
    settings.REDIS_URL = redis_url
    return RedisBackend(redis_url)


def test_redis_is_chosen_when_configured(backend):
    assert isinstance(ratelimit.backend(), RedisBackend)


def test_windows_spend_all_or_nothing(backend, settings, monkeypatch):
    fake_time = mock.Mock(wraps=time)
    fake_time.time.side_effect = lambda: 1_800_000_030.0
    fake_time.sleep.side_effect = lambda s: pytest.fail("should not wait")
    monkeypatch.setattr(ratelimit, "time", fake_time)
    settings.XERO_DAY_LIMIT = 3
    limiter = XeroLimiter("t-redis")
    for _ in range(3):
        limiter.spend()
    with pytest.raises(BudgetExhausted):
        limiter.spend()
    assert (
        limiter.remaining("minute") == 57 and limiter.remaining("day") == 0
    )  # the refused call spent nothing
    limiter.observe_remaining("minute", 5)
    assert limiter.remaining("minute") == 5


def test_slots_are_bounded_and_leases_expire(backend):
    held = [backend.try_acquire("xero", "t", 5, lease=30) for _ in range(5)]
    assert all(held) and backend.try_acquire("xero", "t", 5, lease=30) is None
    backend.release("xero", "t", held[0])
    assert backend.try_acquire("xero", "t", 5, lease=0.2) is not None  # a worker that will "die"
    assert backend.try_acquire("xero", "t", 5, lease=30) is None
    time.sleep(0.4)
    assert backend.try_acquire("xero", "t", 5, lease=30) is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.connector.limits.test_ratelimit_sandbox")
def test_twenty_parallel_callers_through_redis_never_exceed_five_in_flight(
    xero_api,  # noqa: F811 (the fixture, imported)
    backend,
    redis_url,
    settings,
):
    settings.REDIS_URL = redis_url  # after xero_api, which picks the database backend
    faults.set_faults("xero", latency_ms=150)
    errors = run_parallel(20, 2, xero_api["client"])
    seen = counters.snapshot("xero", xero_api["tenant"])
    assert errors == []
    assert seen["by_status"] == {"200": 40}
    assert 2 <= seen["peak_concurrency"] <= 5
    assert backend.redis.keys(f"connector:rl:xero:{xero_api['tenant']}:minute:*")  # the limits lived in Redis
