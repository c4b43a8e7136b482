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
