"""Sandbox Pipedrive is as strict as v2: typed bodies and filters, JSON errors, complete shapes.

Each case here once answered 500, Django's HTML 404, or accepted and echoed a value the real API
refuses; or left fields out of an answer that a client built from the spec expects.
"""

import pytest

from sandbox.pipedrive.models import Deal, Pipeline, Stage
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    api_fixture,
    company_fixture,
    pytestmark,
)


def _error(response, status=400):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["error"]
    return body["error"]


@pytest.mark.parametrize("name", ["owner_id", "org_id", "person_id", "stage_id", "pipeline_id"])
@pytest.mark.parametrize("value", ["abc", str(2**63), "1.5"])
def test_id_filters_that_are_not_64_bit_integers_are_a_400(api, name, value):
    assert name in _error(api.get("/api/v2/deals", {name: value}, validate=False))


def test_ids_above_64_bits_in_a_list_of_ids_or_a_path_are_refused_in_json(api):
    _error(api.get("/api/v2/deals", {"ids": str(2**64)}, validate=False))
    _error(api.get(f"/api/v2/deals/{2**64}", validate=False), status=404)


@pytest.mark.parametrize("path", ["/api/v2/deals/abc", "/api/v2/persons/1x", "/api/v2/nothing-here"])
def test_unknown_paths_and_non_numeric_ids_get_pipedrives_json_404(api, path, settings):
    settings.DEBUG = True  # not Django's technical 404 page either
    _error(api.get(path, validate=False), status=404)


def test_a_stage_probability_outside_0_to_100_is_refused(api):
    pipeline_id = Pipeline.objects.first().id
    before = Stage.objects.count()
    error = _error(
        api.post("/api/v2/stages", {"name": "Odd", "pipeline_id": pipeline_id, "deal_probability": -5})
    )
    assert "deal_probability" in error
    assert Stage.objects.count() == before


@pytest.mark.parametrize("path", ["/api/v2/pipelines", "/api/v2/stages", "/api/v2/deals"])
def test_a_json_array_body_is_refused(api, path):
    before = Pipeline.objects.count(), Stage.objects.count(), Deal.objects.count()
    _error(api.post(path, [{"name": "x"}], validate=False))
    assert (Pipeline.objects.count(), Stage.objects.count(), Deal.objects.count()) == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("visible_to", "x"),
        ("visible_to", 2),
        ("expected_close_date", "nope"),
        ("label_ids", "x"),
        ("label_ids", ["x"]),
        ("value", "12"),
        ("probability", "high"),
    ],
)
def test_mistyped_deal_fields_are_refused_and_nothing_is_saved(api, field, value):
    error = _error(api.post("/api/v2/deals", {"title": "Typed", field: value}, validate=False))
    assert field in error
    assert not Deal.objects.filter(title="Typed").exists()


def test_is_deleted_from_the_deal_body_is_accepted(api):
    deal = api.post("/api/v2/deals", {"title": "Kept", "is_deleted": False})
    assert deal.status_code == 200, deal.content
    assert deal.json()["data"]["is_deleted"] is False


def test_a_person_created_with_a_name_has_first_and_last_name(api):
    person = api.post("/api/v2/persons", {"name": "Jane van Dyke"}).json()["data"]
    assert (person["first_name"], person["last_name"]) == ("Jane", "van Dyke")


def test_a_deal_carries_every_field_with_null_where_empty(api):
    deal = api.post("/api/v2/deals", {"title": "Complete"}).json()["data"]
    for field in (
        "creator_user_id",
        "probability",
        "lost_reason",
        "close_time",
        "stage_change_time",
        "channel",
    ):
        assert field in deal, field
    assert deal["probability"] is None and deal["close_time"] is None
    assert deal["origin"] == "API" and deal["creator_user_id"] == deal["owner_id"]


def test_a_won_deal_gets_a_close_time_and_a_moved_deal_a_stage_change_time(api):
    deal = api.post("/api/v2/deals", {"title": "Closing"}).json()["data"]
    stages = [s["id"] for s in api.get("/api/v2/stages", {"pipeline_id": deal["pipeline_id"]}).json()["data"]]
    moved = api.patch(f"/api/v2/deals/{deal['id']}", {"stage_id": stages[1]}).json()["data"]
    assert moved["stage_change_time"] is not None
    won = api.patch(f"/api/v2/deals/{deal['id']}", {"status": "won"}).json()["data"]
    assert won["won_time"] and won["close_time"] == won["won_time"]
    reopened = api.patch(f"/api/v2/deals/{deal['id']}", {"status": "open"}).json()["data"]
    assert reopened["close_time"] is None


def test_deal_search_finds_deals_by_title_with_its_filters(api):
    org = api.post("/api/v2/organizations", {"name": "Searchable Ltd"}).json()["data"]
    api.post("/api/v2/deals", {"title": "INV-0042 Searchable", "org_id": org["id"], "value": 100})
    api.post("/api/v2/deals", {"title": "INV-0043 Elsewhere", "value": 5})
    found = api.get("/api/v2/deals/search", {"term": "INV-004", "organization_id": org["id"]})
    assert found.status_code == 200, found.content
    items = found.json()["data"]["items"]
    assert [i["item"]["title"] for i in items] == ["INV-0042 Searchable"]
    assert items[0]["item"]["organization"] == {"id": org["id"], "name": "Searchable Ltd"}
    assert len(api.get("/api/v2/deals/search", {"term": "INV-004"}).json()["data"]["items"]) == 2


def test_item_search_finds_across_deals_persons_and_organizations(api):
    api.post("/api/v2/organizations", {"name": "Kauri Holdings"})
    api.post("/api/v2/persons", {"name": "Kauri Smith"})
    api.post("/api/v2/deals", {"title": "Kauri deck", "value": 10})
    found = api.get("/api/v2/itemSearch", {"term": "kauri"})
    assert found.status_code == 200, found.content
    assert sorted(i["item"]["type"] for i in found.json()["data"]["items"]) == [
        "deal",
        "organization",
        "person",
    ]
    only_deals = api.get("/api/v2/itemSearch", {"term": "kauri", "item_types": "deal"}).json()["data"]
    assert [i["item"]["title"] for i in only_deals["items"]] == ["Kauri deck"]
