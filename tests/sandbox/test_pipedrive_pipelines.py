"""The sandbox's POST /api/v2/pipelines and /api/v2/stages (used by the admin's "Create the Xero invoices
pipeline"), checked against openapi-v2.yaml like every sandbox Pipedrive call."""

import pytest

from tests.sandbox.test_pipedrive_contract import api_fixture, company_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.urls("tests.sandbox.test_pipedrive_contract")


def test_pipelines_and_stages_can_be_added(api):
    pipeline = api.post("/api/v2/pipelines", {"name": " Xero invoices "}).json()["data"]
    assert pipeline["name"] == "Xero invoices" and pipeline["order_nr"] == 2
    first = api.post("/api/v2/stages", {"name": "Draft", "pipeline_id": pipeline["id"]}).json()["data"]
    second = api.post(
        "/api/v2/stages", {"name": "Paid", "pipeline_id": pipeline["id"], "deal_probability": 100}
    ).json()["data"]
    assert (first["order_nr"], second["order_nr"]) == (1, 2) and second["pipeline_id"] == pipeline["id"]
    listed = api.get("/api/v2/stages", {"pipeline_id": pipeline["id"]}).json()["data"]
    assert [s["name"] for s in listed] == ["Draft", "Paid"]
    assert api.validated >= 4


def test_bad_pipeline_and_stage_bodies_are_refused(api):
    assert api.post("/api/v2/pipelines", {"name": " "}, valid_request=False).status_code == 400
    assert (
        api.post("/api/v2/stages", {"name": "X", "pipeline_id": "1"}, valid_request=False).status_code == 400
    )
    missing = api.post("/api/v2/stages", {"name": "X", "pipeline_id": 999999})
    assert missing.status_code == 404 and missing.json()["error"] == "Pipeline not found"


def test_pipeline_and_stage_settings_sent_when_added_are_kept(api):
    """Found by Pipedrive's Node client: the settings were accepted, then read back as the defaults."""
    pipeline = api.post("/api/v2/pipelines", {"name": "Renewals", "is_deal_probability_enabled": True})
    pipeline = pipeline.json()["data"]
    assert pipeline["is_deal_probability_enabled"] is True
    assert (
        api.get(f"/api/v2/pipelines/{pipeline['id']}").json()["data"]["is_deal_probability_enabled"] is True
    )
    rotting = api.post(
        "/api/v2/stages",
        {"name": "Quoted", "pipeline_id": pipeline["id"], "is_deal_rot_enabled": True, "days_to_rotten": 12},
    ).json()["data"]
    assert (rotting["is_deal_rot_enabled"], rotting["days_to_rotten"]) == (True, 12)
    read = api.get(f"/api/v2/stages/{rotting['id']}").json()["data"]
    assert (read["is_deal_rot_enabled"], read["days_to_rotten"]) == (True, 12)
    plain = api.post("/api/v2/stages", {"name": "Won", "pipeline_id": pipeline["id"]}).json()["data"]
    assert (plain["is_deal_rot_enabled"], plain["days_to_rotten"]) == (False, None)
    listed = api.get("/api/v2/stages", {"pipeline_id": pipeline["id"]}).json()["data"]
    assert [(s["is_deal_rot_enabled"], s["days_to_rotten"]) for s in listed] == [(True, 12), (False, None)]


def test_bad_stage_rot_settings_are_refused_and_nothing_is_saved(api):
    pipeline_id = api.get("/api/v2/pipelines").json()["data"][0]["id"]
    before = len(api.get("/api/v2/stages", {"pipeline_id": pipeline_id}).json()["data"])
    for bad in ({"days_to_rotten": -1}, {"days_to_rotten": 2**40}):
        refused = api.post(
            "/api/v2/stages",
            {"name": "Stale", "pipeline_id": pipeline_id, "is_deal_rot_enabled": True, **bad},
            valid_request=False,
        )
        assert refused.status_code == 400 and "days_to_rotten" in refused.json()["error"]
    assert len(api.get("/api/v2/stages", {"pipeline_id": pipeline_id}).json()["data"]) == before
