"""Sandbox Pipedrive records: custom fields through custom_fields, cursor paging, exact-match search."""

import datetime
import re
import uuid

from sandbox import clock
from sandbox.pipedrive.models import Organization, User
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    api_fixture,
    company_fixture,
    pytestmark,
)


def add_field(api, kind, name, field_type="varchar", **extra):
    response = api.post(f"/api/v2/{kind}", {"field_name": name, "field_type": field_type, **extra})
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_custom_fields_are_created_and_written_through_custom_fields(api):
    field = add_field(api, "organizationFields", "Xero contact id")
    assert re.fullmatch(r"[0-9a-f]{40}", field["field_code"])
    assert field["is_custom_field"] is True and field["field_type"] == "varchar"
    amount = add_field(api, "dealFields", "Amount due", "double")
    tier = add_field(api, "personFields", "Tier", "enum", options=[{"label": "Gold"}, {"label": "Silver"}])
    assert [o["label"] for o in tier["options"]] == ["Gold", "Silver"]
    listed = api.get("/api/v2/organizationFields").json()["data"]
    assert field["field_code"] in {f["field_code"] for f in listed}

    xero_id = str(uuid.uuid4())
    org = api.post("/api/v2/organizations", {"name": "Acme", "custom_fields": {field["field_code"]: xero_id}})
    org_id = org.json()["data"]["id"]
    assert org.json()["data"]["custom_fields"] == {field["field_code"]: xero_id}
    assert (
        api.get(f"/api/v2/organizations/{org_id}").json()["data"]["custom_fields"][field["field_code"]]
        == xero_id
    )

    deal = api.post(
        "/api/v2/deals", {"title": "INV-1", "org_id": org_id, "custom_fields": {amount["field_code"]: 12.5}}
    )
    deal_id = deal.json()["data"]["id"]
    patched = api.patch(f"/api/v2/deals/{deal_id}", {"custom_fields": {amount["field_code"]: 0}})
    assert patched.json()["data"]["custom_fields"] == {amount["field_code"]: 0}
    person = api.post("/api/v2/persons", {"name": "Jo", "custom_fields": {tier["field_code"]: 1}})
    assert person.json()["data"]["custom_fields"][tier["field_code"]] == 1

    unknown = api.post("/api/v2/organizations", {"name": "B", "custom_fields": {"f" * 40: "x"}})
    assert unknown.status_code == 400 and "f" * 40 in unknown.json()["error"]
    wrong_type = api.patch(f"/api/v2/deals/{deal_id}", {"custom_fields": {amount["field_code"]: "12"}})
    assert wrong_type.status_code == 400
    assert (
        api.post(
            "/api/v2/dealFields", {"field_name": "X", "field_type": "nonsense"}, valid_request=False
        ).status_code
        == 400
    )


def test_cursor_paging_walks_1200_records_exactly_once(api, company):
    now = clock.now()
    owner = User.objects.get(company=company)
    Organization.objects.bulk_create(
        Organization(company=company, owner=owner, name=f"Org {n:04d}", add_time=now, update_time=now)
        for n in range(1200)
    )
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v2/organizations", params).json()
        seen += [o["name"] for o in body["data"]]
        pages += 1
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"Org {n:04d}" for n in range(1200)]
    # A limit above 500 is capped at 500; the default page is 100.
    assert len(api.get("/api/v2/organizations", {"limit": 900}).json()["data"]) == 500
    assert len(api.get("/api/v2/organizations").json()["data"]) == 100
    desc = api.get("/api/v2/organizations", {"limit": 2, "sort_direction": "desc"}).json()["data"]
    assert [o["name"] for o in desc] == ["Org 1199", "Org 1198"]
    assert api.get("/api/v2/organizations", {"cursor": "!!"}).status_code == 400


def test_exact_match_search_finds_only_the_exact_record(api):
    field = add_field(api, "organizationFields", "Xero contact id")
    code = field["field_code"]
    api.post("/api/v2/organizations", {"name": "Acme", "custom_fields": {code: "AB-12"}})
    api.post("/api/v2/organizations", {"name": "Acme Holdings", "custom_fields": {code: "AB-123"}})
    jane = api.post("/api/v2/persons", {"name": "Jane", "emails": [{"value": "jane@acme.example"}]}).json()[
        "data"
    ]
    api.post("/api/v2/persons", {"name": "Janet", "emails": [{"value": "janet@acme.example"}]})

    def names(response):
        assert response.status_code == 200, response.content
        return [i["item"]["name"] for i in response.json()["data"]["items"]]

    assert names(api.get("/api/v2/organizations/search", {"term": "acme"})) == ["Acme", "Acme Holdings"]
    assert names(api.get("/api/v2/organizations/search", {"term": "acme", "exact_match": "true"})) == ["Acme"]
    assert names(
        api.get(
            "/api/v2/organizations/search",
            {"term": "AB-12", "exact_match": "true", "fields": "custom_fields"},
        )
    ) == ["Acme"]
    found = api.get(
        "/api/v2/persons/search", {"term": "JANE@acme.example", "fields": "email", "exact_match": "true"}
    ).json()["data"]["items"]
    assert [i["item"]["id"] for i in found] == [jane["id"]]
    assert found[0]["item"]["emails"] == ["jane@acme.example"]

    # itemSearch/field with match=exact is case-sensitive and whole-value.
    exact = api.get(
        "/api/v2/itemSearch/field",
        {"entity_type": "organization", "field": code, "term": "AB-12", "match": "exact"},
    ).json()
    assert exact["data"] == [{"id": exact["data"][0]["id"], "name": "Acme"}]
    assert (
        api.get(
            "/api/v2/itemSearch/field",
            {"entity_type": "organization", "field": code, "term": "ab-12", "match": "exact"},
        ).json()["data"]
        == []
    )
    beginning = api.get(
        "/api/v2/itemSearch/field",
        {"entity_type": "organization", "field": code, "term": "AB-1", "match": "beginning"},
    ).json()["data"]
    assert [d["name"] for d in beginning] == ["Acme", "Acme Holdings"]
    assert api.get("/api/v2/organizations/search", {"term": "a"}).status_code == 400


def test_merge_moves_children_and_keeps_the_survivor(api):
    keep = api.post("/api/v2/organizations", {"name": "Acme Ltd"}).json()["data"]
    dupe = api.post("/api/v2/organizations", {"name": "ACME", "website": "https://acme.example"}).json()[
        "data"
    ]
    person = api.post("/api/v2/persons", {"name": "Jo", "org_id": dupe["id"]}).json()["data"]
    merged = api.put(f"/api/v1/organizations/{dupe['id']}/merge", {"merge_with_id": keep["id"]})
    assert merged.status_code == 200, merged.content
    assert merged.json()["data"]["id"] == keep["id"]
    survivor = api.get(f"/api/v2/organizations/{keep['id']}").json()["data"]
    assert survivor["name"] == "Acme Ltd" and survivor["website"] == "https://acme.example"
    assert api.get(f"/api/v2/persons/{person['id']}").json()["data"]["org_id"] == keep["id"]
    assert api.get(f"/api/v2/organizations/{dupe['id']}").status_code == 404


def test_incremental_listing_by_update_time_pages_without_gaps(api, company):
    owner = User.objects.get(company=company)
    start = clock.now()
    for n in range(5):  # created in one order, updated in another; two share an update time
        Organization.objects.create(
            company=company,
            owner=owner,
            name=f"Org {n}",
            add_time=start,
            update_time=start + datetime.timedelta(minutes=[4, 1, 3, 1, 2][n]),
        )
    params = {
        "sort_by": "update_time",
        "limit": 2,
        "updated_since": (start + datetime.timedelta(minutes=1)).isoformat(),
    }
    names, cursor = [], None
    while True:
        body = api.get("/api/v2/organizations", {**params, **({"cursor": cursor} if cursor else {})}).json()
        names += [o["name"] for o in body["data"]]
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert names == ["Org 1", "Org 3", "Org 4", "Org 2", "Org 0"]
    newest = api.get(
        "/api/v2/organizations", {"sort_by": "update_time", "sort_direction": "desc", "limit": 1}
    )
    assert newest.json()["data"][0]["name"] == "Org 0"
    assert api.get("/api/v2/organizations", {"sort_by": "name"}, valid_request=False).status_code == 400


def test_deal_fields_carry_their_description(api):
    """Found by Pipedrive's Node client: dealFields answers lacked the spec's ``description``."""
    invoice = add_field(api, "dealFields", "Xero invoice", description="The Xero invoice number")
    assert invoice["description"] == "The Xero invoice number"
    plain = add_field(api, "dealFields", "Reference")
    assert plain["description"] is None
    read = api.get(f"/api/v2/dealFields/{invoice['field_code']}").json()["data"]
    assert read["description"] == "The Xero invoice number"
    listed = api.get("/api/v2/dealFields").json()["data"]
    assert all("description" in f for f in listed)
    assert (
        next(f for f in listed if f["field_code"] == "value")["description"]
        == "The monetary value of the deal"
    )
    refused = api.post(
        "/api/v2/dealFields",
        {"field_name": "X", "field_type": "varchar", "description": 5},
        valid_request=False,
    )
    assert refused.status_code == 400


ALL_NAMESPACES = "ui_visibility,important_fields,required_fields"


def test_fields_answer_the_include_fields_namespaces_they_were_added_with(api):
    """Pipedrive's Node client asks for ``include_fields``; the sandbox ignored it and what was sent."""
    stage_id = api.get("/api/v2/stages").json()["data"][0]["id"]
    invoice = add_field(
        api,
        "dealFields",
        "Xero invoice",
        important_fields={"enabled": True, "stage_ids": [stage_id]},
        ui_visibility={"add_visible_flag": False},
    )
    assert not {"ui_visibility", "important_fields", "required_fields"} & set(invoice)
    read = api.get(f"/api/v2/dealFields/{invoice['field_code']}", {"include_fields": ALL_NAMESPACES})
    read = read.json()["data"]
    assert read["important_fields"] == {"enabled": True, "stage_ids": [stage_id]}
    assert read["required_fields"] == {"enabled": False, "stage_ids": [], "statuses": {}}
    assert read["ui_visibility"] == {
        "add_visible_flag": False,
        "details_visible_flag": True,
        "projects_detail_visible_flag": True,
        "show_in_pipelines": {"show_in_all": True, "pipeline_ids": []},
    }
    only_ui = api.get("/api/v2/dealFields", {"include_fields": "ui_visibility"}).json()["data"]
    assert all("ui_visibility" in f and "important_fields" not in f for f in only_ui)
    for kind in ("personFields", "organizationFields"):
        listed = api.get(f"/api/v2/{kind}", {"include_fields": ALL_NAMESPACES}).json()["data"]
        assert all(f["required_fields"] == {"enabled": False} for f in listed)
        hidden = {"show": False, "order": 0}
        assert all(f["ui_visibility"]["show_in_add_deal_dialog"] == hidden for f in listed)
    assert api.validated >= 6  # every answer valid against the spec


def test_a_namespace_of_the_wrong_type_is_refused(api):
    refused = api.post(
        "/api/v2/personFields",
        {"field_name": "Tier", "field_type": "varchar", "required_fields": {"enabled": "yes"}},
        valid_request=False,
    )
    assert refused.status_code == 400
    assert "Tier" not in [f["field_name"] for f in api.get("/api/v2/personFields").json()["data"]]
