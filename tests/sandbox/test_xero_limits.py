"""Sandbox Xero call pipeline: auth errors, each rate limit, fault switches and call counters."""

import threading

import pytest
import requests

from sandbox import clock, counters, faults
from tests.sandbox.conftest import REDIRECT_URI, SANDBOX_URLS, XERO_API, authorize, token_request

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

LIMIT_HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")


def set_limits(xero, **limits):
    for name, value in limits.items():
        setattr(xero.app, name, value)
    xero.app.save()


def test_missing_or_bad_bearer_is_401_in_xero_shape(xero):
    no_token = xero.client.get(f"{XERO_API}/Contacts", HTTP_XERO_TENANT_ID=xero.tenant_id)
    assert no_token.status_code == 401
    assert no_token.json()["Title"] == "Unauthorized" and no_token.json()["Status"] == 401
    assert xero.get("/Contacts", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401


@pytest.mark.parametrize("tenant", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_missing_unknown_or_unconnected_tenant_is_403(xero, tenant):
    response = xero.get("/Contacts", HTTP_XERO_TENANT_ID=tenant)
    assert response.status_code == 403
    assert response.json()["Title"] == "Forbidden" and response.json()["Status"] == 403


def test_limit_headers_on_every_response(xero):
    response = xero.get("/Contacts")
    assert response["X-MinLimit-Remaining"] == "59"
    assert response["X-DayLimit-Remaining"] == "4999"
    assert response["X-AppMinLimit-Remaining"] == "9999"
    missing = xero.get("/Contacts/00000000-0000-0000-0000-000000000001")
    assert missing.status_code == 404 and missing["X-MinLimit-Remaining"] == "58"


def test_minute_limit_trips_and_rolls_over(xero):
    set_limits(xero, minute_limit=3)
    assert [xero.get("/Contacts")["X-MinLimit-Remaining"] for _ in range(3)] == ["2", "1", "0"]
    refused = xero.get("/Contacts")
    assert refused.status_code == 429
    assert refused["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-MinLimit-Remaining"] == "0" and all(h in refused for h in LIMIT_HEADERS)
    clock.advance(60)
    assert xero.get("/Contacts").status_code == 200


def test_day_limit_trips_and_outlasts_the_minute(xero):
    set_limits(xero, day_limit=2)
    assert xero.get("/Contacts").status_code == 200
    assert xero.get("/Contacts").status_code == 200
    refused = xero.get("/Contacts")
    assert refused.status_code == 429 and refused["X-Rate-Limit-Problem"] == "day"
    assert refused["X-DayLimit-Remaining"] == "0" and int(refused["Retry-After"]) > 60
    clock.advance(61)
    still = xero.get("/Contacts")
    assert still.status_code == 429 and still["X-Rate-Limit-Problem"] == "day"


def test_day_limit_is_per_tenant(xero, xero_orgs):
    set_limits(xero, day_limit=1)
    assert xero.get("/Contacts").status_code == 200
    assert xero.get("/Contacts").status_code == 429
    other = xero.get("/Contacts", HTTP_XERO_TENANT_ID=str(xero_orgs[1].tenant_id))
    assert other.status_code == 200


def test_app_minute_limit_counts_every_tenant(xero, xero_orgs):
    set_limits(xero, app_minute_limit=3)
    other = str(xero_orgs[1].tenant_id)
    assert xero.get("/Contacts")["X-AppMinLimit-Remaining"] == "2"
    assert xero.get("/Contacts", HTTP_XERO_TENANT_ID=other)["X-AppMinLimit-Remaining"] == "1"
    assert xero.get("/Contacts")["X-AppMinLimit-Remaining"] == "0"
    refused = xero.get("/Contacts", HTTP_XERO_TENANT_ID=other)
    assert refused.status_code == 429 and refused["X-Rate-Limit-Problem"] == "appminute"
    assert "Retry-After" in refused


def test_time_scale_rolls_the_minute_window_in_a_second(xero, settings):
    settings.SANDBOX_TIME_SCALE = 60  # a Xero minute lasts one real second
    set_limits(xero, minute_limit=1)
    assert xero.get("/Contacts").status_code == 200
    refused = xero.get("/Contacts")
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    clock.advance(1)
    assert xero.get("/Contacts").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_limit_with_parallel_calls_against_a_live_server(live_server, client, xero_app, xero_orgs):
    xero_app.concurrent_limit = 2
    xero_app.save()
    query = authorize(client, xero_app, xero_orgs[:1])
    tokens = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    tenant = str(xero_orgs[0].tenant_id)
    # Slow calls (injected latency holds the slot) so that six at once overlap.
    faults.set_faults("xero", latency_ms=600)
    url = f"{live_server.url}{XERO_API}/Contacts"
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": tenant}
    start = threading.Barrier(6)
    answers = []

    def call():
        start.wait()
        response = requests.get(url, headers=headers, timeout=30)
        answers.append((response.status_code, response.headers.get("X-Rate-Limit-Problem")))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) >= 2
    assert (429, "concurrent") in answers
    assert {problem for status, problem in answers if status == 429} == {"concurrent"}
    snapshot = counters.snapshot("xero", tenant)
    assert snapshot["peak_concurrency"] == 2
    assert snapshot["in_flight"] == 0


# ---------------------------------------------------------------- fault switches


def test_error_rate_answers_500_or_503_in_xero_shape(xero):
    faults.set_faults("xero", error_rate=1.0)
    response = xero.get("/Contacts")
    assert response.status_code in (500, 503)
    assert response.json()["Status"] == response.status_code
    assert all(h in response for h in LIMIT_HEADERS)
    faults.set_faults("xero", error_rate=0)
    assert xero.get("/Contacts").status_code == 200


def test_extra_429s_come_with_retry_after(xero):
    faults.set_faults("xero", rate_limit_rate=1.0)
    response = xero.get("/Contacts")
    assert response.status_code == 429
    assert response["Retry-After"] == "1" and response["X-Rate-Limit-Problem"] == "minute"


def test_latency_and_timeout_faults(xero, monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    faults.set_faults("xero", latency_ms=250)
    assert xero.get("/Contacts").status_code == 200
    assert slept == [0.25]
    faults.set_faults("xero", latency_ms=0, timeout_rate=1.0, timeout_seconds=40)
    timed_out = xero.get("/Contacts")
    assert timed_out.status_code == 504
    assert slept == [0.25, 40]


def test_fault_switches_apply_to_connections_too(xero):
    faults.set_faults("xero", error_rate=1.0)
    response = xero.client.get(
        "/sandbox/xero/api/connections", HTTP_AUTHORIZATION=f"Bearer {xero.tokens['access_token']}"
    )
    assert response.status_code in (500, 503)


# ---------------------------------------------------------------- counters


def test_counters_record_calls_by_endpoint_and_status(xero):
    set_limits(xero, minute_limit=2)
    xero.get("/Contacts")
    xero.get("/Contacts/00000000-0000-0000-0000-000000000001")
    xero.get("/Contacts")  # 429
    xero.get("/Contacts", HTTP_XERO_TENANT_ID="")  # 403, counted without a tenant
    snapshot = counters.snapshot("xero", xero.tenant_id)
    assert snapshot["by_endpoint"]["GET /Contacts"] == {"200": 1, "429": 1}
    assert snapshot["by_endpoint"]["GET /Contacts/{id}"] == {"404": 1}
    assert snapshot["calls"] == 3
    assert counters.calls_to("xero", "GET /Contacts", status=403) == 1
    assert counters.calls_to("xero", "POST /connect/token", status=200) == 1  # the fixture's code exchange

    over_http = xero.client.get("/sandbox/xero/_counters", {"tenant": xero.tenant_id}).json()
    assert over_http["by_endpoint"]["GET /Contacts"] == {"200": 1, "429": 1}


# ---------------------------------------------------------------- scopes


@pytest.mark.parametrize(
    ("scope", "allowed", "refused"),
    [
        (
            "offline_access accounting.contacts.read accounting.invoices.read accounting.payments.read",
            ["/Contacts", "/Invoices", "/Payments"],
            [],
        ),
        ("offline_access accounting.contacts.read", ["/Contacts"], ["/Invoices", "/Payments"]),
        ("offline_access accounting.transactions.read", ["/Invoices", "/Payments"], ["/Contacts"]),
    ],
)
def test_scopes_open_only_their_resources(client, xero_app, xero_orgs, scope, allowed, refused):
    query = authorize(client, xero_app, xero_orgs[:1], scope=scope)
    tokens = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}",
        "HTTP_XERO_TENANT_ID": str(xero_orgs[0].tenant_id),
    }
    for path in allowed:
        assert client.get(f"{XERO_API}{path}", **headers).status_code == 200, path
    for path in refused:
        response = client.get(f"{XERO_API}{path}", **headers)
        assert response.status_code == 401, path
        assert response.json()["Detail"] == "AuthorizationUnsuccessful"


def test_read_scopes_cannot_write(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs[:1], scope="accounting.contacts.read")
    tokens = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    response = client.put(
        f"{XERO_API}/Contacts",
        {"Contacts": [{"Name": "Nope"}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
        HTTP_XERO_TENANT_ID=str(xero_orgs[0].tenant_id),
    )
    assert response.status_code == 401 and response.json()["Detail"] == "AuthorizationUnsuccessful"
