"""Shared pieces of the webhook tests: a pair with known webhook secrets, bodies in the real shapes
(built by the sandbox's own senders), and a fake sync service that records its calls."""

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from connector.intake import drain
from connector.models import SyncPair
from sandbox.pipedrive import events as pipedrive_events
from sandbox.webhooks import xero_signature

XERO_KEY = base64.b64encode(b"xero-webhook-key-for-tests-" * 2).decode()
PD_USER = "ml-hook-user"
PD_PASSWORD = "pipedrive-hook-password-VALUE"
PD_SIGNING_SECRET = "pipedrive-signing-secret-VALUE"
TENANT = "tenant-1"  # the xero_connection fixture's tenant
COMPANY = 1  # the pipedrive_api_token_connection fixture's company


@pytest.fixture
def pair(xero_connection, pipedrive_api_token_connection):
    return SyncPair.objects.create(
        name="Demo pair",
        xero_connection=xero_connection,
        pipedrive_connection=pipedrive_api_token_connection,
        xero_webhook_key=XERO_KEY,
        pipedrive_webhook_user=PD_USER,
        pipedrive_webhook_password=PD_PASSWORD,
    )


# ---------------------------------------------------------------- Xero


def xero_event(resource_id=None, category="CONTACT", event_type="UPDATE", when=None, tenant=TENANT) -> dict:
    when = when or dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    resource_id = resource_id or str(uuid.uuid4())
    path = {"CONTACT": "Contacts", "INVOICE": "Invoices", "PAYMENT": "Payments"}.get(category, "Other")
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{path}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": when.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant,
        "tenantType": "ORGANISATION",
    }


def xero_batch(*events) -> bytes:
    payload = {
        "events": list(events),
        "firstEventSequence": 1,
        "lastEventSequence": len(events),
        "entropy": "X",
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def xero_headers(body: bytes, key: str = XERO_KEY) -> dict:
    return {"x-xero-signature": xero_signature(body, key)}


# ---------------------------------------------------------------- Pipedrive


def _hook_and_caller(version: str):
    hook = SimpleNamespace(id=7, user_id=11, type="general", version=version)
    caller = SimpleNamespace(company=SimpleNamespace(id=COMPANY, domain="demo"), user=SimpleNamespace(id=11))
    return hook, caller


def pipedrive_v2(entity="organization", action="change", record_id=42, data=None, previous=None, **merge):
    """A v2 body exactly as the sandbox's Pipedrive builds it."""
    hook, caller = _hook_and_caller("2.0")
    if data is None and action != "delete":
        data = {"id": record_id, "name": "Acme Ltd"}
    return pipedrive_events.v2_body(hook, caller, entity, action, record_id, data, previous, **merge)


def pipedrive_v1(entity="organization", v1_action="updated", record_id=42, current=None, previous=None):
    """A v1 body exactly as the sandbox's Pipedrive builds it."""
    hook, caller = _hook_and_caller("1.0")
    if current is None and v1_action != "deleted":
        current = {"id": record_id, "name": "Acme Ltd"}
    return pipedrive_events.v1_body(hook, caller, entity, v1_action, record_id, current, previous)


def basic(user: str = PD_USER, password: str = PD_PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def encode(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# ---------------------------------------------------------------- the sync service, faked


@dataclass
class Outcome:
    status: str
    reason: str = ""


class FakeSync:
    """Stands in for connector.sync.sync_records: records each call, answers per resource."""

    def __init__(self):
        self.calls: list[tuple[str, list[str]]] = []
        self.raise_for: dict[str, Exception] = {}
        self.outcome_for: dict[str, Outcome | None] = {}  # None: leave the id out of the answer

    def __call__(self, pair, category, resource_ids, trigger="webhook", on_outcome=None):
        assert trigger == "webhook"
        assert len(resource_ids) == len(set(resource_ids)), "ids must be coalesced"
        self.calls.append((category, list(resource_ids)))
        if category in self.raise_for:
            raise self.raise_for[category]
        answer = {}
        for resource_id in resource_ids:
            outcome = self.outcome_for.get(resource_id, Outcome("done", f"synced {resource_id}"))
            if outcome is not None:
                answer[resource_id] = outcome
        return answer


@pytest.fixture
def fake_sync(monkeypatch):
    fake = FakeSync()
    monkeypatch.setattr(drain, "_sync_records", fake)
    return fake
