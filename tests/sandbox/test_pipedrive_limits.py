"""Sandbox Pipedrive limits: burst per token, search burst, daily token budget, token costs, faults."""

import threading

import pytest
from django.db import connection
from django.test import Client

from sandbox import clock, counters, faults
from sandbox.pipedrive import services
from sandbox.pipedrive.models import Company
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    PipedriveApi,
    api_fixture,
    company_fixture,
    make_company,
    pytestmark,
    spec,
)

# Windows are fixed and aligned to the epoch: a tiny time scale makes the 2-second window last
# weeks of real time, so no test straddles a window boundary; clock.advance() rolls it on purpose.
SCALE = 1e-6


@pytest.fixture(autouse=True)
def _slow_windows(settings):
    settings.SANDBOX_TIME_SCALE = SCALE
    clock.reset()
    yield
    clock.reset()


def test_daily_budget_follows_plan_and_seats():
    # pipedrive-api.md §4.1: 30,000 x plan multiplier x seats (+ top-ups); Growth with 3 seats = 180,000.
    assert Company(plan="growth", seats=3).daily_budget == 180_000
    assert Company(plan="lite", seats=1).daily_budget == 30_000
    assert Company(plan="ultimate", seats=2, extra_tokens=500).daily_budget == 420_500
    assert Company(plan="lite", seats=1).burst_limit(oauth=False) == 20
    assert Company(plan="premium", seats=1).burst_limit(oauth=True) == 400


def test_burst_limit_trips_with_headers_and_resets_after_the_window(db, client):
    _, user = make_company(plan="lite", seats=1)
    api = PipedriveApi(client, token=user.api_token)
    remaining = []
    for _ in range(20):
        response = api.get("/api/v2/organizations")
        assert response.status_code == 200
        assert response["x-ratelimit-limit"] == "20"
        remaining.append(int(response["x-ratelimit-remaining"]))
    assert remaining == list(range(19, -1, -1))
    refused = api.get("/api/v2/organizations")
    assert refused.status_code == 429
    assert refused.json()["success"] is False
    assert refused["x-ratelimit-remaining"] == "0"
    assert int(refused["x-ratelimit-reset"]) >= 1
    snapshot = counters.snapshot("pipedrive", str(user.company_id))
    assert snapshot["by_endpoint"]["LIMIT burst"] == {"429": 1}
    assert snapshot["by_endpoint"]["GET /api/v2/organizations"] == {"200": 20, "429": 1}
    assert snapshot["tokens"] == 20 * 10  # the refused call spent no tokens

    clock.advance(2 / SCALE)  # the next 2-second window
    again = api.get("/api/v2/organizations")
    assert again.status_code == 200 and again["x-ratelimit-remaining"] == "19"


def test_search_has_its_own_burst_of_ten(api):
    for _ in range(10):
        assert api.get("/api/v2/organizations/search", {"term": "acme"}).status_code == 200
    refused = api.get("/api/v2/organizations/search", {"term": "acme"})
    assert refused.status_code == 429
    assert refused["x-ratelimit-limit"] == "10" and refused["x-ratelimit-remaining"] == "0"
    assert api.get("/api/v2/organizations").status_code == 200  # other calls still have room


def test_daily_budget_trips_with_429_while_burst_headers_show_room(db, client):
    company, user = make_company(plan="growth", seats=1, daily_budget_override=23)
    api = PipedriveApi(client, token=user.api_token)
    assert api.get("/api/v2/organizations").status_code == 200  # 10 tokens
    assert api.get("/api/v2/persons").status_code == 200  # 20
    org = company  # any id: a 404 still costs its token
    assert api.get(f"/api/v2/organizations/{org.id + 1000}").status_code == 404  # 21
    spent = api.get("/api/v2/deals")  # would be 31 > 23
    assert spent.status_code == 429
    assert spent.json()["error"] == "Daily API token budget exhausted"
    # How clients tell the two 429s apart (pipedrive-api.md §4.3): burst room left => daily budget.
    assert int(spent["x-ratelimit-remaining"]) >= 1
    assert api.get(f"/api/v2/organizations/{org.id + 1000}").status_code == 404  # 22: fits
    assert api.get(f"/api/v2/organizations/{org.id + 1000}").status_code == 404  # 23: fits
    assert api.get(f"/api/v2/organizations/{org.id + 1000}").status_code == 429  # 24: over
    snapshot = counters.snapshot("pipedrive", str(company.id))
    assert snapshot["tokens"] == 23
    assert snapshot["by_endpoint"]["LIMIT daily-tokens"] == {"429": 2}

    clock.advance(24 * 3600 / SCALE)  # the next day
    assert api.get("/api/v2/deals").status_code == 200


def test_post_with_an_api_token_shows_daily_requests_left(api):
    first = api.post("/api/v2/organizations", {"name": "A"})
    second = api.post("/api/v2/organizations", {"name": "B"})
    assert int(first["x-daily-requests-left"]) - 1 == int(second["x-daily-requests-left"])
    assert "x-daily-requests-left" not in api.get("/api/v2/organizations")


def test_token_costs_match_the_specs_x_token_cost_for_every_operation_the_connector_uses(api, company):
    """Each call's tokens (as counted by the sandbox) equal the spec's x-token-cost for it."""
    _, v2 = spec("v2")
    _, v1 = spec("v1")
    field = api.post("/api/v2/organizationFields", {"field_name": "Xero id", "field_type": "varchar"}).json()[
        "data"
    ]
    api.post("/api/v2/dealFields", {"field_name": "Xero invoice", "field_type": "varchar"})
    api.post("/api/v2/personFields", {"field_name": "Xero person", "field_type": "varchar"})
    org = api.post("/api/v2/organizations", {"name": "Acme"}).json()["data"]
    other = api.post("/api/v2/organizations", {"name": "Acme dupe"}).json()["data"]
    person = api.post("/api/v2/persons", {"name": "Jo", "org_id": org["id"]}).json()["data"]
    deal = api.post("/api/v2/deals", {"title": "INV-1", "org_id": org["id"]}).json()["data"]
    pipeline_id = deal["pipeline_id"]
    hook = api.post(
        "/api/v1/webhooks",
        {
            "subscription_url": "https://hooks.example/p",
            "event_action": "*",
            "event_object": "*",
            "name": "sync",
        },
    ).json()["data"]
    calls = [
        ("GET", "/organizations", {}),
        ("GET", f"/organizations/{org['id']}", {}),
        ("PATCH", f"/organizations/{org['id']}", {"name": "Acme Ltd"}),
        ("GET", "/persons", {}),
        ("GET", f"/persons/{person['id']}", {}),
        ("PATCH", f"/persons/{person['id']}", {"name": "Jo Bloggs"}),
        ("GET", "/deals", {}),
        ("GET", f"/deals/{deal['id']}", {}),
        ("PATCH", f"/deals/{deal['id']}", {"status": "won"}),
        ("GET", "/organizations/search", {"term": "Acme"}),
        ("GET", "/persons/search", {"term": "Jo"}),
        (
            "GET",
            "/itemSearch/field",
            {"term": "x", "entity_type": "organization", "field": field["field_code"]},
        ),
        ("GET", "/dealFields", {}),
        ("GET", "/organizationFields", {}),
        ("GET", "/personFields", {}),
        ("GET", f"/organizationFields/{field['field_code']}", {}),
        ("GET", "/pipelines", {}),
        ("GET", f"/pipelines/{pipeline_id}", {}),
        ("GET", "/stages", {}),
    ]
    for method, path, payload in calls:
        response = (
            api.get(f"/api/v2{path}", payload)
            if method == "GET"
            else api.call(method, f"/api/v2{path}", body=payload)
        )
        assert response.status_code == 200, (path, response.content)
    api.post("/api/v1/notes", {"content": "Paid in Xero", "deal_id": deal["id"]})
    api.get("/api/v1/notes", {"deal_id": deal["id"]})
    api.get("/api/v1/webhooks")
    api.put(f"/api/v1/organizations/{other['id']}/merge", {"merge_with_id": org["id"]})
    api.delete(f"/api/v1/webhooks/{hook['id']}")
    for path in (f"/deals/{deal['id']}", f"/persons/{person['id']}", f"/organizations/{org['id']}"):
        assert api.delete(f"/api/v2{path}").status_code == 200

    tokens = counters.snapshot("pipedrive", str(company.id))["tokens_by_endpoint"]
    calls_by = counters.snapshot("pipedrive", str(company.id))["by_endpoint"]
    checked = 0
    for endpoint, spent in tokens.items():
        method, route = endpoint.split(" ", 1)
        version, spec_path = route.removeprefix("/api/").split("/", 1)
        document = v2 if version == "v2" else v1
        expected = document["paths"][f"/{spec_path}"][method.lower()]["x-token-cost"]
        count = sum(calls_by[endpoint].values())
        assert spent == expected * count, (endpoint, spent, expected, count)
        checked += 1
    assert checked == 34  # every distinct operation called above


def test_fault_switches_answer_in_pipedrives_error_shape(api):
    faults.set_faults("pipedrive", error_rate=1.0)
    response = api.get("/api/v2/deals")
    assert response.status_code in (500, 503)
    assert response.json()["success"] is False and "Sandbox fault" in response.json()["error"]
    faults.set_faults("pipedrive", error_rate=0, rate_limit_rate=1.0)
    assert api.get("/api/v2/deals").status_code == 429
    faults.reset("pipedrive")
    assert api.get("/api/v2/deals").status_code == 200


def test_calls_hold_a_concurrency_slot_and_the_peak_is_recorded(api, company):
    api.get("/api/v2/deals")
    snapshot = counters.snapshot("pipedrive", str(company.id))
    assert snapshot["peak_concurrency"] == 1 and snapshot["in_flight"] == 0
    control = api.client.get("/sandbox/pipedrive/_counters", {"tenant": str(company.id)}).json()
    assert control["tokens_by_endpoint"] == {"GET /api/v2/deals": 10}


@pytest.mark.django_db(transaction=True)
def test_peak_concurrency_counts_overlapping_calls():
    company = services.ensure_demo_company()
    faults.set_faults("pipedrive", latency_ms=300)  # each call stays in flight a while
    start, statuses = threading.Barrier(4), []

    def call():
        try:
            start.wait()
            response = Client().get(
                "/sandbox/pipedrive/api/v2/deals", headers={"x-api-token": services.DEMO_API_TOKEN}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = counters.snapshot("pipedrive", str(company.id))
    assert statuses == [200] * 4
    assert snapshot["peak_concurrency"] >= 2 and snapshot["in_flight"] == 0
    assert snapshot["by_endpoint"]["GET /api/v2/deals"] == {"200": 4}
