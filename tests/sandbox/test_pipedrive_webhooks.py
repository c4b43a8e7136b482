"""Sandbox Pipedrive webhooks: registration (v1 endpoint), v1 and v2 payloads with HTTP Basic auth,
merges as delete + change (v2) or merged + deleted (v1), and a real delivery through the outbox."""

import base64
import json

import pytest
import responses

from sandbox import webhooks as outbox
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    api_fixture,
    company_fixture,
    pytestmark,
)

HOOK_URL = "https://connector.example.com/webhooks/pipedrive/pair-1/"
BASIC = "Basic " + base64.b64encode(b"hook-user:s3cret").decode()


@pytest.fixture
def queued(monkeypatch):
    """What the emulator hands to the outbox, decoded."""
    sent = []

    def capture(service, url, body, headers):
        sent.append({"service": service, "url": url, "body": json.loads(body), "headers": headers})

    monkeypatch.setattr(outbox, "queue_delivery", capture)
    return sent


def register(api, version="2.0", event_object="*", event_action="*", **extra):
    body = {
        "subscription_url": HOOK_URL,
        "event_action": event_action,
        "event_object": event_object,
        "name": "xero-sync",
        "version": version,
        "http_auth_user": "hook-user",
        "http_auth_password": "s3cret",
        **extra,
    }
    response = api.post("/api/v1/webhooks", body)
    assert response.status_code == 201, response.content
    return response.json()["data"]


def test_registration_lists_and_deletes_webhooks(api):
    hook = register(api, event_object="deal", event_action="change")
    assert hook["version"] == "2.0" and hook["type"] == "general" and hook["http_auth_user"] == "hook-user"
    listed = api.get("/api/v1/webhooks").json()
    assert listed["status"] == "ok" and [h["id"] for h in listed["data"]] == [hook["id"]]
    bad = api.post(
        "/api/v1/webhooks",
        {"subscription_url": "ftp://x", "event_action": "bogus", "event_object": "deal", "name": "n"},
        valid_request=False,
    )
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"subscription_url", "event_action"}
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").json() == {"success": True, "status": "ok"}
    assert api.get("/api/v1/webhooks").json()["data"] == []


def test_v2_payloads_for_create_change_delete_with_basic_auth(api, company, queued):
    hook = register(api, event_object="organization")
    org = api.post("/api/v2/organizations", {"name": "Acme"}).json()["data"]
    api.patch(f"/api/v2/organizations/{org['id']}", {"name": "Acme Ltd"})
    api.delete(f"/api/v2/organizations/{org['id']}")
    api.post("/api/v2/persons", {"name": "Not subscribed"})

    assert [q["body"]["meta"]["action"] for q in queued] == ["create", "change", "delete"]
    for delivery in queued:
        assert delivery["service"] == "pipedrive" and delivery["url"] == HOOK_URL
        assert delivery["headers"]["Authorization"] == BASIC
        meta = delivery["body"]["meta"]
        assert meta["entity"] == "organization" and meta["entity_id"] == str(org["id"])
        assert meta["version"] == "2.0" and meta["change_source"] == "api" and meta["attempt"] == 1
        assert meta["webhook_id"] == str(hook["id"]) and meta["company_id"] == str(company.id)
    created, changed, deleted = (q["body"] for q in queued)
    assert created["data"]["name"] == "Acme" and created["previous"] is None
    assert changed["data"]["name"] == "Acme Ltd" and changed["previous"] == {"name": "Acme"}
    assert deleted["data"] is None and deleted["previous"]["name"] == "Acme Ltd"


def test_v1_payloads_use_event_current_previous(api, queued):
    register(api, version="1.0", event_object="deal")
    deal = api.post("/api/v2/deals", {"title": "INV-7"}).json()["data"]
    api.patch(f"/api/v2/deals/{deal['id']}", {"status": "won"})
    api.delete(f"/api/v2/deals/{deal['id']}")
    bodies = [q["body"] for q in queued]
    assert [b["event"] for b in bodies] == ["added.deal", "updated.deal", "deleted.deal"]
    assert all(b["v"] == 1 and b["meta"]["object"] == "deal" and b["retry"] == 0 for b in bodies)
    assert bodies[0]["current"]["title"] == "INV-7" and bodies[0]["previous"] is None
    assert bodies[1]["current"]["status"] == "won" and bodies[1]["previous"]["status"] == "open"
    assert bodies[1]["previous"]["title"] == "INV-7"  # v1 sends the whole former object
    assert bodies[2]["current"] is None and bodies[2]["previous"]["id"] == deal["id"]
    assert all(q["headers"]["Authorization"] == BASIC for q in queued)


def test_a_merge_is_delete_plus_change_in_v2_and_merged_plus_deleted_in_v1(api, queued):
    register(api, version="2.0", event_object="person")
    register(api, version="1.0", event_object="person")
    keep = api.post("/api/v2/persons", {"name": "Jane Doe"}).json()["data"]
    dupe = api.post("/api/v2/persons", {"name": "Jane D", "emails": [{"value": "jane@acme.example"}]}).json()[
        "data"
    ]
    queued.clear()
    assert api.put(f"/api/v1/persons/{dupe['id']}/merge", {"merge_with_id": keep["id"]}).status_code == 200

    v2 = [q["body"] for q in queued if "event" not in q["body"]]
    v1 = [q["body"] for q in queued if "event" in q["body"]]
    assert [(b["meta"]["action"], b["meta"]["entity_id"]) for b in v2] == [
        ("delete", str(dupe["id"])),
        ("change", str(keep["id"])),
    ]
    assert v2[0]["meta"]["merged_to_id"] == str(keep["id"])
    assert v2[1]["meta"]["merged_from_id"] == str(dupe["id"])
    assert v2[1]["data"]["emails"][0]["value"] == "jane@acme.example"  # survivor took the blank-filling data
    assert sorted(b["event"] for b in v1) == ["deleted.person", "merged.person"]
    merged = next(b for b in v1 if b["event"] == "merged.person")
    assert merged["current"]["id"] == keep["id"]
    assert all(q["headers"]["Authorization"] == BASIC for q in queued)


@responses.activate
def test_a_delivery_reaches_the_receiver_with_basic_auth(api, settings):
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False  # send explicitly below
    responses.post(HOOK_URL, status=200)
    register(api, event_object="deal", event_action="create")
    deal = api.post("/api/v2/deals", {"title": "INV-42"}).json()["data"]
    assert outbox.deliver_pending() == 1
    assert len(responses.calls) == 1
    request = responses.calls[0].request
    assert request.headers["Authorization"] == BASIC
    body = json.loads(request.body)
    assert body["meta"]["action"] == "create" and body["data"]["id"] == deal["id"]
