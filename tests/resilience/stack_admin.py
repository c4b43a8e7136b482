"""Runs inside a resilience stack's environment (its data folder, database and broker): sets the stack
up, changes Xero records, flips fault switches and reads back what the stack did.

    python tests/resilience/stack_admin.py COMMAND '{"json": "arguments"}'   -> JSON on stdout
    python tests/resilience/stack_admin.py sweeper SECONDS                   -> the inbox sweep, in a loop

Not a test module: the resilience tests start it as a subprocess (the stack's database is not the
test database).
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from collections import Counter  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from connector import drain  # noqa: E402
from connector.inbox import request_drain  # noqa: E402
from connector.models import (  # noqa: E402
    ConnectionStatus,
    PipedriveConnection,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)
from mapping.models import RecordLink  # noqa: E402
from sandbox import faults  # noqa: E402
from sandbox.pipedrive import services as pd_services  # noqa: E402
from sandbox.pipedrive.models import Company, Organization, User  # noqa: E402
from sandbox.xero import accounting, identity  # noqa: E402
from sandbox.xero import services as xero_services  # noqa: E402
from sandbox.xero.models import Contact, Organisation  # noqa: E402

SCOPE = "offline_access accounting.contacts.read accounting.transactions.read"
WEBHOOK_KEY = "resilience-webhook-key-0123456789"


def setup(pairs: int = 1, contacts: int = 0, prefix: str = "Resilient") -> dict:
    """One Xero organisation with ``contacts`` contacts, the demo Pipedrive company (no burst or daily
    limit in the way: the connector's own limiter is not under test), and ``pairs`` pairs joining them."""
    organisation = xero_services.create_organisation("Resilience Test Ltd")
    app = xero_services.create_app("Resilience stack", [f"{settings.PUBLIC_BASE_URL}/connect/xero/callback/"])
    grant = xero_services.connect(app, [organisation], SCOPE)
    access, refresh = identity._access_token(grant), identity._refresh_token(grant)
    xero = XeroConnection.objects.create(
        tenant_id=str(organisation.tenant_id), tenant_name=organisation.name, client_id=app.client_id,
        client_secret=app.client_secret, access_token=access.token, refresh_token=refresh.token,
        expires_at=access.expires_at, scopes=SCOPE, status=ConnectionStatus.ACTIVE,
        secrets_set_at=timezone.now(), last_refreshed_at=timezone.now(),
    )  # fmt: skip
    company = pd_services.ensure_demo_company()
    Company.objects.filter(pk=company.pk).update(burst_override=100_000, daily_budget_override=10_000_000)
    keys = []
    for number in range(pairs):
        # A Pipedrive connection per pair (a pair joins one Xero and one Pipedrive connection once);
        # all of them the demo company's admin token, all the pairs sharing the one Xero connection.
        pipedrive = PipedriveConnection.objects.create(
            company_id=company.id, company_name=company.name, company_domain=company.domain,
            api_domain=settings.PIPEDRIVE_API_URL, auth_type=PipedriveConnection.AuthType.API_TOKEN,
            api_token=pd_services.DEMO_API_TOKEN, status=ConnectionStatus.ACTIVE,
            secrets_set_at=timezone.now(),
        )  # fmt: skip
        pair = SyncPair.objects.create(
            name=f"Resilience pair {number + 1}", xero_connection=xero, pipedrive_connection=pipedrive,
            xero_webhook_key=WEBHOOK_KEY,
        )  # fmt: skip
        keys.append(pair.key)
    ids = add_contacts(contacts, prefix)["contact_ids"] if contacts else []
    return {"pair_keys": keys, "tenant_id": str(organisation.tenant_id), "contact_ids": ids}


def add_contacts(count: int, prefix: str = "Resilient") -> dict:
    organisation = Organisation.objects.get(name="Resilience Test Ltd")
    ids = []
    with transaction.atomic():
        for number in range(count):
            contact = accounting.create_contact(organisation, {"Name": f"{prefix} {number:05d} Ltd"})
            ids.append(str(contact.contact_id))
    return {"contact_ids": ids}


def rename_contacts(names: dict) -> dict:
    """Xero edits: ``{ContactID: new name}``."""
    with transaction.atomic():
        for contact_id, name in names.items():
            contact = Contact.objects.get(contact_id=contact_id)
            accounting.update_contact(contact, {"Name": name})
    return {"renamed": len(names)}


def state() -> dict:
    """What the stack did: inbox rows per status, Pipedrive organizations per name (duplicates), and
    whether every Xero contact's organization carries the contact's current name."""
    company = Company.objects.get(pk=PipedriveConnection.objects.first().company_id)
    names = Counter(
        Organization.objects.filter(company=company, is_deleted=False).values_list("name", flat=True)
    )
    contacts = dict(Contact.objects.values_list("contact_id", "name"))
    links = {
        xero_id: pipedrive_id
        for xero_id, pipedrive_id in RecordLink.objects.filter(
            xero_type="contact", pipedrive_type="organization", state=RecordLink.State.LINKED
        ).values_list("xero_id", "pipedrive_id")
    }
    org_names = dict(Organization.objects.filter(company=company).values_list("id", "name"))
    mismatched = [
        str(contact_id)
        for contact_id, name in contacts.items()
        if org_names.get(links.get(str(contact_id))) != name
    ]
    statuses = Counter(WebhookEvent.objects.values_list("status", flat=True))
    failed = list(WebhookEvent.objects.filter(status="failed").values_list("reason", flat=True)[:5])
    return {
        "inbox": dict(statuses),
        "inbox_total": sum(statuses.values()),
        "organizations": sum(names.values()),
        "duplicated_names": sorted(name for name, n in names.items() if n > 1),
        "contacts": len(contacts),
        "not_in_step": mismatched[:20],
        "not_in_step_count": len(mismatched),
        "failed_reasons": failed,
        "max_attempts": max(WebhookEvent.objects.values_list("attempts", flat=True), default=0),
        "connections": {
            "xero": list(XeroConnection.objects.values_list("status", flat=True)),
            "pipedrive": list(PipedriveConnection.objects.values_list("status", flat=True)),
        },
    }


def set_faults(service: str, **switches) -> dict:
    faults.set_faults(service, **switches)
    return {"ok": True}


def revoke_pipedrive_token(revoked: bool) -> dict:
    """Pipedrive refuses the connector's API token (as after a regenerated token), or accepts it again."""
    user = User.objects.get(email="admin@sandbox-demo.example")
    user.api_token = "revoked-0123456789abcdef0123456789abcdef" if revoked else pd_services.DEMO_API_TOKEN
    user.save(update_fields=["api_token"])
    return {"ok": True}


def reconnect_pipedrive() -> dict:
    """What the admin does once the token works again: connect it again (the connection turns active)."""
    from connector.connections import connect_pipedrive_api_token

    connect_pipedrive_api_token(pd_services.DEMO_API_TOKEN, settings.PIPEDRIVE_API_URL)
    return {"ok": True}


def replay_failed() -> dict:
    """The inbox admin's "Reprocess selected events" on every failed event."""
    with transaction.atomic():
        failed = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
        pair_ids = set(failed.values_list("pair_id", flat=True))
        count = failed.update(status="pending", reason="", claimed_at=None, claim_token="", processed_at=None)
    for pair_id in pair_ids:
        request_drain(pair_id, force=True)
    return {"replayed": count}


def expire_xero_token() -> dict:
    XeroConnection.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    return {"ok": True}


def queue_contact_events(contact_ids: list) -> dict:
    """One pending inbox event per contact of every pair, and a drain asked for each pair."""
    now = timezone.now()
    rows = []
    for pair in SyncPair.objects.all():
        rows += [
            WebhookEvent(
                pair=pair,
                source="xero",
                tenant_id=pair.xero_connection.tenant_id,
                category="CONTACT",
                resource_id=contact_id,
                event_type="UPDATE",
                event_time=now,
                payload={},
            )
            for contact_id in contact_ids
        ]
    WebhookEvent.objects.bulk_create(rows)
    for pair_id in SyncPair.objects.values_list("pk", flat=True):
        request_drain(pair_id, force=True)
    return {"queued": len(rows)}


def sweeper(interval: str) -> None:
    """The every-minute inbox sweep, run every ``interval`` seconds (the tests cannot wait minutes)."""
    while True:
        try:
            drain.sweep_inbox()
        except Exception as exc:  # a restarted database: try again at the next turn
            print(f"sweep failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            connection.close()
        time.sleep(float(interval))


COMMANDS = {
    name: globals()[name]
    for name in (
        "setup", "add_contacts", "rename_contacts", "state", "set_faults", "revoke_pipedrive_token",
        "reconnect_pipedrive", "replay_failed", "expire_xero_token", "queue_contact_events",
    )
}  # fmt: skip

if __name__ == "__main__":
    if sys.argv[1] == "sweeper":
        sweeper(sys.argv[2])
    else:
        arguments = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
        print(json.dumps(COMMANDS[sys.argv[1]](**arguments)))
