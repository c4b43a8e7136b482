"""The shared limiter against the sandbox Xero over a live server: concurrency and minute limits."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from connector.clients.xero import XeroClient
from connector.limits.ratelimit import NoLimiter
from sandbox import counters, faults
from sandbox.xero import identity, services
from tests.sandbox.conftest import SANDBOX_URLS, SCOPE, XERO

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self):
        return self.token

    def on_unauthorized(self):
        return self.token


@pytest.fixture
def xero_api(live_server, settings):
    settings.REDIS_URL = ""  # the database backend (the lead runs the Redis variant)
    app = services.create_app("Limits test", ["https://app.example/cb/"])
    organisation = services.create_organisation("Limits Ltd")
    grant = services.connect(app, [organisation], SCOPE)
    token = identity._access_token(grant).token
    tenant = str(organisation.tenant_id)
    yield {
        "app": app,
        "tenant": tenant,
        "client": lambda: XeroClient(
            tenant, StaticToken(token), base_url=f"{live_server.url}{XERO}/api/api.xro/2.0"
        ),
    }
    faults.reset("xero")


def run_parallel(callers: int, calls_each: int, make_client) -> list:
    errors = []

    def work(_):
        try:
            client = make_client()
            for _ in range(calls_each):
                client.get_contacts(page=1, page_size=1)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()  # each thread's own database connection

    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(work, range(callers)))
    return errors


def test_twenty_parallel_callers_never_exceed_five_in_flight(xero_api):
    faults.set_faults("xero", latency_ms=150)  # calls last long enough to overlap
    errors = run_parallel(20, 2, xero_api["client"])
    seen = counters.snapshot("xero", xero_api["tenant"])
    assert errors == []
    assert seen["by_status"] == {"200": 40}  # no 429 (concurrent or otherwise)
    assert 2 <= seen["peak_concurrency"] <= 5  # calls did overlap, never beyond the limit


def test_without_the_shared_limiter_the_sandbox_refuses_the_sixth_caller(xero_api):
    """The control: the same load with no limiter trips the sandbox's concurrent limit."""
    faults.set_faults("xero", latency_ms=300)
    barrier = threading.Barrier(10)

    def make():
        client = xero_api["client"]()
        client.limiter = NoLimiter()
        client.max_retries = 0
        barrier.wait(timeout=10)  # all ten start together
        return client

    errors = run_parallel(10, 1, make)
    assert counters.snapshot("xero", xero_api["tenant"])["by_status"].get("429", 0) >= 1
    assert errors


def test_calls_beyond_the_minute_limit_are_delayed_not_refused(xero_api, settings):
    settings.SANDBOX_TIME_SCALE = 60  # a sandbox minute lasts one real second
    settings.XERO_MINUTE_SECONDS = 1
    settings.XERO_MINUTE_LIMIT = 10  # Xero's 60, scaled down, with a margin under the sandbox's 12
    xero_api["app"].minute_limit = 12
    xero_api["app"].save()
    errors = run_parallel(5, 6, xero_api["client"])  # 30 calls: three windows' worth
    seen = counters.snapshot("xero", xero_api["tenant"])
    assert errors == []
    assert seen["by_status"] == {"200": 30}
