"""API clients against `responses`: waits, retries, typed errors, timeouts, no tokens in logs."""

import datetime as dt
import email.utils
import logging
import time
from unittest import mock

import pytest
import requests
import responses

from connector.clients import http
from connector.clients.pipedrive import TOKEN_COSTS, PipedriveClient
from connector.clients.xero import XeroClient
from connector.errors import (
    AuthExpired,
    BudgetExhausted,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)

XERO = "https://xero.test/api.xro/2.0"
PD = "https://pd.test"
TENANT = "11111111-2222-3333-4444-555555555555"
SECRET = "tok-SECRET-value-0123456789"


class Provider:
    def __init__(self):
        self.token, self.refreshes = SECRET, 0

    def get_token(self):
        return self.token

    def on_unauthorized(self):
        self.refreshes += 1
        self.token = f"{SECRET}-new"
        return self.token


@pytest.fixture
def sleeps():
    """The waits the clients asked for, without waiting."""
    waited = []
    with mock.patch.object(http, "time", wraps=time) as fake_time:
        fake_time.sleep.side_effect = waited.append
        yield waited


def xero(**kw):
    return XeroClient(TENANT, Provider(), base_url=XERO, limiter=None, **kw)


def contacts(*rows):
    return {"Contacts": list(rows)}


@responses.activate
def test_xero_sends_tenant_and_bearer_and_obeys_retry_after(sleeps):
    responses.get(f"{XERO}/Contacts", status=429, headers={"Retry-After": "7"}, json={"Title": "Too Many"})
    responses.get(f"{XERO}/Contacts", json=contacts({"ContactID": "a"}))
    assert xero().get_contacts() == [{"ContactID": "a"}]
    assert len(sleeps) == 1 and sleeps[0] >= 7
    sent = responses.calls[1].request.headers
    assert sent["xero-tenant-id"] == TENANT and sent["Authorization"] == f"Bearer {SECRET}"


@responses.activate
def test_retry_after_longer_than_the_max_wait_raises_rate_limited(sleeps, settings):
    settings.API_MAX_LIMIT_WAIT_SECONDS = 30
    responses.get(f"{XERO}/Contacts", status=429, headers={"Retry-After": "600"})
    with pytest.raises(RateLimited) as caught:
        xero().get_contacts()
    assert caught.value.retry_after == 600 and sleeps == []


@responses.activate
def test_xero_day_limit_is_budget_exhausted_not_retried(sleeps):
    responses.get(
        f"{XERO}/Contacts", status=429, headers={"Retry-After": "5000", "X-Rate-Limit-Problem": "day"}
    )
    with pytest.raises(BudgetExhausted):
        xero().get_contacts()
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_server_errors_are_retried_a_bounded_number_of_times_with_jittered_backoff(sleeps, settings):
    settings.API_MAX_RETRIES = 3
    responses.get(f"{XERO}/Invoices", status=503, json={"Title": "Service Unavailable"})
    with pytest.raises(ServerError):
        xero().get_invoices()
    assert len(responses.calls) == 4
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))


@responses.activate
def test_connection_errors_are_retried_then_succeed(sleeps):
    responses.get(f"{XERO}/Payments", body=requests.ConnectionError("reset"))
    responses.get(f"{XERO}/Payments", json={"Payments": [{"PaymentID": "p"}]})
    assert xero().get_payments() == [{"PaymentID": "p"}]
    assert len(sleeps) == 1


@responses.activate
def test_401_refreshes_once_then_raises_auth_expired(sleeps):
    responses.get(f"{XERO}/Contacts/x", status=401, json={"Title": "Unauthorized"})
    client = xero()
    with pytest.raises(AuthExpired):
        client.get_contact("x")
    assert client.token_provider.refreshes == 1 and len(responses.calls) == 2
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {SECRET}-new"


@responses.activate
def test_not_found_and_validation_errors_are_typed_with_the_services_message():
    responses.get(f"{XERO}/Invoices/nope", status=404, json={"Title": "NotFound"})
    responses.get(
        f"{XERO}/Invoices",
        status=400,
        json={
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [{"ValidationErrors": [{"Message": "Invalid where clause"}]}],
        },
    )
    with pytest.raises(NotFound):
        xero().get_invoice("nope")
    with pytest.raises(ValidationFailed) as caught:
        xero().get_invoices(where="bogus ==")
    assert caught.value.message == "Invalid where clause"


def test_every_call_has_the_configured_timeout(settings, monkeypatch):
    settings.HTTP_TIMEOUT_SECONDS = 12.5
    seen = []

    def fake(method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        response = requests.Response()
        response.status_code, response._content = 200, b'{"Contacts": [], "data": {"id": 1}}'
        return response

    client, pipedrive = xero(), PipedriveClient(1, PD, "api-token", limiter=None)
    monkeypatch.setattr(client.session, "request", fake)
    monkeypatch.setattr(pipedrive.session, "request", fake)
    client.get_contacts()
    pipedrive.get_current_user()
    assert seen == [12.5, 12.5]


@responses.activate
def test_pipedrive_burst_429_obeys_ratelimit_reset(sleeps):
    responses.get(
        f"{PD}/api/v2/deals",
        status=429,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"},
        json={"success": False, "error": "Request over limit"},
    )
    responses.get(f"{PD}/api/v2/deals", json={"success": True, "data": [{"id": 1}], "additional_data": {}})
    rows, cursor = PipedriveClient(1, PD, "api-token", limiter=None).list("deal")
    assert rows == [{"id": 1}] and cursor is None
    assert sleeps and sleeps[0] >= 2
    assert responses.calls[1].request.headers["x-api-token"] == "api-token"


@responses.activate
def test_pipedrive_429_with_burst_room_is_a_spent_daily_budget(sleeps):
    responses.get(
        f"{PD}/api/v2/persons",
        status=429,
        headers={"x-ratelimit-remaining": "30", "x-ratelimit-reset": "2"},
        json={"success": False, "error": "Daily API token budget exhausted"},
    )
    with pytest.raises(BudgetExhausted):
        PipedriveClient(1, PD, "api-token", limiter=None).list("person")
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_pipedrive_errors_carry_the_services_message_and_api_token_401_is_not_refreshed():
    responses.post(
        f"{PD}/api/v2/organizations", status=400, json={"success": False, "error": "name is required"}
    )
    responses.get(
        f"{PD}/api/v1/users/me", status=401, json={"success": False, "error": "unauthorized access"}
    )
    client = PipedriveClient(1, PD, "api-token", limiter=None)
    with pytest.raises(ValidationFailed) as caught:
        client.create("organization", {})
    assert caught.value.message == "name is required"
    with pytest.raises(AuthExpired):
        client.get_current_user()
    assert len(responses.calls) == 2


@responses.activate
def test_pipedrive_oauth_uses_bearer_and_search_returns_items():
    responses.get(
        f"{PD}/api/v2/organizations/search",
        json={"success": True, "data": {"items": [{"result_score": 1, "item": {"id": 9, "name": "Acme"}}]}},
    )
    found = PipedriveClient(1, PD, Provider(), limiter=None).search_organizations("Acme")
    assert found == [{"id": 9, "name": "Acme"}]
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {SECRET}" and "exact_match=true" in request.url


@responses.activate
def test_pipedrive_searches_read_every_page():
    def page(ids, cursor=None):
        items = [{"result_score": 1, "item": {"id": i, "name": f"Acme {i}"}} for i in ids]
        return {"success": True, "data": {"items": items}, "additional_data": {"next_cursor": cursor}}

    url = f"{PD}/api/v2/organizations/search"
    asked = {"term": "Acme", "exact_match": "true", "fields": "name", "limit": "500"}
    match = responses.matchers.query_param_matcher
    responses.get(url, json=page([1, 2], "c1"), match=[match(asked)])
    responses.get(url, json=page([3]), match=[match({**asked, "cursor": "c1"})])
    client = PipedriveClient(1, PD, Provider(), limiter=None)
    assert [o["id"] for o in client.search_organizations("Acme", fields="name")] == [1, 2, 3]
    field_url = f"{PD}/api/v2/itemSearch/field"
    responses.get(
        field_url, json={"success": True, "data": [{"id": 4}], "additional_data": {"next_cursor": "f"}}
    )
    responses.get(field_url, json={"success": True, "data": [{"id": 5}], "additional_data": {}})
    assert [o["id"] for o in client.search_field("organization", "abc", "x")] == [4, 5]


def test_token_costs_match_the_official_specs():
    from sandbox.pipedrive import costs  # reads x-token-cost from the vendored specs/pipedrive

    table = costs.table()
    assert table, "spec files not found"
    assert {key: table.get(key) for key in TOKEN_COSTS} == TOKEN_COSTS


@responses.activate
def test_no_token_value_in_logs(caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{XERO}/Contacts", status=503)
    responses.get(f"{XERO}/Contacts", status=401)
    responses.get(f"{XERO}/Contacts", status=429, headers={"Retry-After": "1"})
    responses.get(f"{XERO}/Contacts", json=contacts())
    xero().get_contacts()
    assert len(responses.calls) == 4
    assert caplog.records and SECRET not in caplog.text


@responses.activate
def test_a_post_that_may_have_been_applied_is_not_retried(sleeps):
    responses.post(f"{PD}/api/v2/organizations", status=502, json={"success": False, "error": "Bad gateway"})
    with pytest.raises(ServerError):
        PipedriveClient(1, PD, "api-token", limiter=None).create("organization", {"name": "Acme"})
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_a_post_that_never_connected_is_retried(sleeps):
    responses.post(f"{PD}/api/v2/organizations", body=requests.ConnectTimeout("no route"))
    responses.post(f"{PD}/api/v2/organizations", json={"success": True, "data": {"id": 5}})
    assert PipedriveClient(1, PD, "api-token", limiter=None).create("organization", {"name": "Acme"}) == {
        "id": 5
    }
    assert len(sleeps) == 1


@responses.activate
def test_modified_since_is_sent_as_if_modified_since():
    responses.get(f"{XERO}/Invoices", json={"Invoices": []})
    xero().get_invoices(modified_since=dt.datetime(2026, 1, 2, 3, 4, 5))
    assert responses.calls[0].request.headers["If-Modified-Since"] == "2026-01-02T03:04:05"


@responses.activate
def test_an_http_date_retry_after_is_waited_for_not_a_crash(sleeps):
    in_ten_seconds = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    responses.get(
        f"{XERO}/Contacts",
        status=429,
        headers={"Retry-After": email.utils.format_datetime(in_ten_seconds, usegmt=True)},
        json={"Title": "Too Many"},
    )
    responses.get(f"{XERO}/Contacts", json=contacts({"ContactID": "a"}))
    assert xero().get_contacts() == [{"ContactID": "a"}]
    assert len(sleeps) == 1 and 8 <= sleeps[0] <= 11


@responses.activate
def test_an_http_date_retry_after_beyond_the_max_wait_raises_rate_limited(sleeps, settings):
    settings.API_MAX_LIMIT_WAIT_SECONDS = 60
    in_ten_minutes = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    responses.get(
        f"{XERO}/Contacts",
        status=429,
        headers={"Retry-After": email.utils.format_datetime(in_ten_minutes, usegmt=True)},
    )
    with pytest.raises(RateLimited) as caught:
        xero().get_contacts()
    assert 590 <= caught.value.retry_after <= 600 and sleeps == []


@responses.activate
def test_an_http_date_retry_after_on_a_xero_day_limit_sets_the_reset(sleeps):
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(microsecond=0)
    responses.get(
        f"{XERO}/Contacts",
        status=429,
        headers={
            "Retry-After": email.utils.format_datetime(reset, usegmt=True),
            "X-Rate-Limit-Problem": "day",
        },
    )
    with pytest.raises(BudgetExhausted) as caught:
        xero().get_contacts()
    assert abs((caught.value.resets_at - reset).total_seconds()) <= 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("", 0.0),
        (None, 0.0),
        ("-3", 0.0),
        ("nan", 0.0),
        ("inf", 0.0),
        ("soon", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),
    ],
)
def test_retry_after_seconds_reads_seconds_and_http_dates(header, expected):
    now = dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert http.retry_after_seconds(header, now=now) == expected
