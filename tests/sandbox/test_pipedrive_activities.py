"""Sandbox Pipedrive activities (v2 /activities): the spec's shape, filters, paging and token costs."""

from sandbox import counters
from sandbox.pipedrive.models import Activity, User
from specs import load_spec
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    api_fixture,
    company_fixture,
    pytestmark,
)


def deal_with_org(api):
    org = api.post("/api/v2/organizations", {"name": "Acme"}).json()["data"]
    person = api.post("/api/v2/persons", {"name": "Jo Acme", "org_id": org["id"]}).json()["data"]
    deal = api.post(
        "/api/v2/deals", {"title": "INV-0042", "org_id": org["id"], "person_id": person["id"]}
    ).json()["data"]
    return org, person, deal


def test_an_activity_is_created_read_updated_listed_and_deleted_as_the_spec_has_it(api, company):
    org, person, deal = deal_with_org(api)
    owner = User.objects.create(company=company, name="Sam Sales", email="sam@example.com")
    body = {
        "subject": "INV-0042 overdue: 1,250.00 NZD, due 3 Dec",
        "type": "task",
        "due_date": "2026-12-10",
        "owner_id": owner.id,
        "deal_id": deal["id"],
        "person_id": person["id"],
        "org_id": org["id"],
        "note": "Call the customer",
    }
    created = api.post("/api/v2/activities", body)
    assert created.status_code == 200, created.content
    activity = created.json()["data"]
    assert {k: activity[k] for k in body} == body
    assert activity["done"] is False and "marked_as_done_time" not in activity

    read = api.get(f"/api/v2/activities/{activity['id']}").json()["data"]
    assert read["subject"] == body["subject"] and read["owner_id"] == owner.id

    done = api.patch(f"/api/v2/activities/{activity['id']}", {"done": True}).json()["data"]
    assert done["done"] is True and done["marked_as_done_time"]
    assert done["subject"] == body["subject"]  # a PATCH changes only what it sends
    assert Activity.objects.get(id=activity["id"]).done is True

    assert api.delete(f"/api/v2/activities/{activity['id']}").json()["data"] == {"id": activity["id"]}
    assert api.get(f"/api/v2/activities/{activity['id']}").status_code == 404
    assert api.get("/api/v2/activities", {"deal_id": deal["id"]}).json()["data"] == []


def test_the_list_filters_by_deal_owner_and_done_and_pages_with_a_cursor(api, company):
    org, _person, deal = deal_with_org(api)
    other_deal = api.post("/api/v2/deals", {"title": "INV-0043", "org_id": org["id"]}).json()["data"]
    owner = User.objects.create(company=company, name="Sam Sales", email="sam@example.com")
    ids = []
    for number in range(5):
        target = deal if number < 3 else other_deal
        answer = api.post(
            "/api/v2/activities",
            {"subject": f"A{number}", "deal_id": target["id"], "owner_id": owner.id if number % 2 else None}
            if number % 2
            else {"subject": f"A{number}", "deal_id": target["id"], "done": number == 4},
        )
        assert answer.status_code == 200, answer.content
        ids.append(answer.json()["data"]["id"])

    def subjects(**params):
        return [a["subject"] for a in api.get("/api/v2/activities", params).json()["data"]]

    assert subjects(deal_id=deal["id"]) == ["A0", "A1", "A2"]
    assert subjects(owner_id=owner.id) == ["A1", "A3"]
    assert subjects(done="true") == ["A4"]
    assert subjects(done="false", deal_id=other_deal["id"]) == ["A3"]
    first = api.get("/api/v2/activities", {"limit": 2}).json()
    assert [a["id"] for a in first["data"]] == ids[:2] and first["additional_data"]["next_cursor"]
    rest = api.get("/api/v2/activities", {"limit": 10, "cursor": first["additional_data"]["next_cursor"]})
    assert [a["id"] for a in rest.json()["data"]] == ids[2:]
    assert rest.json()["additional_data"]["next_cursor"] is None


def test_bad_activities_are_refused_and_nothing_is_written(api):
    deal_with_org(api)
    for body in (
        {"subject": "x", "type": "party"},
        {"subject": "x", "due_date": "10/12/2026"},
        {"subject": "x", "deal_id": 999999},
        {"subject": "x", "owner_id": 999999},
        {"subject": "x", "due_time": "25:00"},
    ):
        answer = api.post("/api/v2/activities", body, valid_request=False)
        assert answer.status_code == 400, (body, answer.content)
        assert answer.json()["success"] is False
    assert Activity.objects.count() == 0


def test_activity_calls_cost_the_spec_tokens(api, company):
    _org, _person, deal = deal_with_org(api)
    activity = api.post("/api/v2/activities", {"subject": "x", "deal_id": deal["id"]}).json()["data"]
    api.get("/api/v2/activities", {"deal_id": deal["id"]})
    api.get(f"/api/v2/activities/{activity['id']}")
    api.patch(f"/api/v2/activities/{activity['id']}", {"done": True})
    api.delete(f"/api/v2/activities/{activity['id']}")
    spent = counters.snapshot("pipedrive", str(company.id))["tokens_by_endpoint"]
    v2 = load_spec("pipedrive", "v2")["paths"]
    expected = {
        "POST /api/v2/activities": 5,
        "GET /api/v2/activities": 10,
        "GET /api/v2/activities/{id}": 1,
        "PATCH /api/v2/activities/{id}": 5,
        "DELETE /api/v2/activities/{id}": 3,
    }
    for endpoint, tokens in expected.items():
        method, route = endpoint.split(" ", 1)
        assert v2[route.removeprefix("/api/v2")][method.lower()]["x-token-cost"] == tokens
        assert spent[endpoint] == tokens, endpoint
