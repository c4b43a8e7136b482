"""Runs inside a resilience stack's environment (its data folder, database and broker): sets the stack
up, changes Xero records, flips fault switches and reads back what the stack did.

    python tests/resilience/stack_admin.py COMMAND '{"json": "arguments"}'   -> JSON on stdout
    python tests/resilience/stack_admin.py sweeper SECONDS                   -> the inbox sweep, in a loop
    python tests/resilience/stack_admin.py upkeep SECONDS                    -> the backfill upkeep, in a loop

Not a test module: the resilience tests start it as a subprocess (the stack's database is not the
test database).
"""

import importlib
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

from connector.intake import drain  # noqa: E402
from connector.intake.inbox import request_drain  # noqa: E402
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
    from connector.connections.services import connect_pipedrive_api_token

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


def upkeep(interval: str) -> None:
    """The every-minute backfill upkeep schedule (connector.tasks.backfill_upkeep: resume runs a dead
    worker left), run every ``interval`` seconds."""
    from connector.tasks import backfill_upkeep

    while True:
        try:
            resumed = backfill_upkeep()["resumed"]
            if resumed:
                print(f"upkeep resumed backfill runs {resumed}", file=sys.stderr, flush=True)
        except Exception as exc:  # a restarted database: try again at the next turn
            print(f"upkeep failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            connection.close()
        time.sleep(float(interval))


# --------------------------------------------------------------------------- backfill


def seed_backfill(contacts: int, invoices: int, same: int, person_every: int) -> dict:
    """Xero holds ``contacts`` contacts and ``invoices`` sales invoices (none paid); Pipedrive holds the
    "Xero invoices" pipeline the default stage rules name and ``same`` organizations that are the first
    customers under another spelling of their legal suffix (matched by normalized name)."""
    from sandbox.pipedrive.models import Pipeline, Stage
    from tests.connector.operations.backfill_seed import (
        contact_name,
        seed_contacts,
        seed_invoices,
        seed_organizations,
    )

    default_rules = importlib.import_module("mapping.migrations.0002_default_rules")
    organisation = Organisation.objects.get(name="Resilience Test Ltd")
    company = Company.objects.get(pk=PipedriveConnection.objects.first().company_id)
    owner = User.objects.get(api_token=pd_services.DEMO_API_TOKEN)
    with transaction.atomic():
        made = seed_contacts(organisation, contacts, person_every=person_every)
        seed_invoices(organisation, made, invoices)
        same_names = [contact_name(n).replace("Limited", "LTD").upper() for n in range(same)]
        seed_organizations(company, owner, same_names)
        existing = list(Organization.objects.filter(company=company).values_list("id", flat=True))
        now = timezone.now()
        pipeline = Pipeline.objects.create(
            company=company, name=default_rules.PIPELINE, order_nr=2, add_time=now, update_time=now
        )
        stages = dict.fromkeys(row[2] for row in default_rules.STAGE_DEFAULTS)
        for number, stage in enumerate(stages, start=1):
            Stage.objects.create(
                pipeline=pipeline, name=stage, order_nr=number, add_time=now, update_time=now
            )
    return {"existing_organizations": existing}


def backfill_start() -> dict:
    """What the admin's "Preview" button does: a run in preview, prepared by a worker."""
    from connector.operations import backfill

    run = backfill.start_preview(SyncPair.objects.get(), requested_by="resilience test")
    backfill.enqueue(run.pk)
    return {"run_id": run.pk}


def backfill_confirm(run_id: int) -> dict:
    """What the admin's "Confirm" button does: the previewed run queued for a worker."""
    from connector.models import BackfillRun
    from connector.operations import backfill

    return {"status": backfill.confirm(BackfillRun.objects.get(pk=run_id)).status}


def backfill_state(run_id: int, existing: list | None = None) -> dict:
    """The run as stored, and what Pipedrive and the record links hold: counts, duplicates, spend
    (``matched_existing``: links to the organizations ``existing`` before the run)."""
    from connector.models import BackfillRun
    from sandbox import counters
    from sandbox.pipedrive.models import Deal, Person

    run = BackfillRun.objects.get(pk=run_id)
    company = Company.objects.get(pk=PipedriveConnection.objects.first().company_id)

    def duplicated(model, field):
        names = Counter(model.objects.filter(company=company, is_deleted=False).values_list(field, flat=True))
        return sum(names.values()), sorted(str(name) for name, n in names.items() if n > 1)[:20]

    links = {}
    for pipedrive_type in ("organization", "person", "deal"):
        rows = RecordLink.objects.filter(pipedrive_type=pipedrive_type)
        linked = rows.filter(state=RecordLink.State.LINKED)
        links[pipedrive_type] = {
            "linked": linked.count(),
            "distinct_records": linked.values("pipedrive_id").distinct().count(),
            "other_states": dict(
                Counter(rows.exclude(state=RecordLink.State.LINKED).values_list("state", flat=True))
            ),
        }
    organizations, duplicated_organizations = duplicated(Organization, "name")
    persons, duplicated_persons = duplicated(Person, "name")
    deals, duplicated_deals = duplicated(Deal, "title")
    xero = counters.snapshot("xero", xero_tenant())["by_endpoint"]
    pipedrive = counters.snapshot("pipedrive")["by_endpoint"]
    return {
        "status": run.status,
        "phase": run.phase,
        "page": run.page,
        "position": run.position,
        "counts": run.counts,
        "created_records": run.created_records,
        "plan": run.plan,
        "errors": run.errors,
        "last_error": run.last_error,
        "state_message": run.state_message,
        "organizations": organizations,
        "duplicated_organizations": duplicated_organizations,
        "persons": persons,
        "duplicated_persons": duplicated_persons,
        "deals": deals,
        "duplicated_deals": duplicated_deals,
        "links": links,
        "matched_existing": RecordLink.objects.filter(
            pipedrive_type="organization", state=RecordLink.State.LINKED, pipedrive_id__in=existing or []
        ).count(),
        "xero_calls": xero,
        "xero_429s": sum(by_status.get("429", 0) for by_status in xero.values()),
        "pipedrive_created": {
            endpoint: sum(n for status, n in by_status.items() if status < "300")
            for endpoint, by_status in pipedrive.items()
            if endpoint.startswith("POST")
        },
    }


def xero_tenant() -> str:
    return XeroConnection.objects.get().tenant_id


def kill_backfill_midway(run_id: int, cluster_pid: int, phase: str, deals_at_least: int) -> dict:
    """Watch the run; once it is in ``phase`` with ``deals_at_least`` deals in Pipedrive, more than its
    saved position accounts for (a chunk half written), kill -9 the cluster's session (its main process
    and workers); then report the run and Pipedrive as the dead worker left them."""
    import signal

    from connector.models import BackfillRun
    from sandbox.pipedrive.models import Deal

    page_size = settings.BACKFILL_PAGE_SIZE
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run = BackfillRun.objects.get(pk=run_id)
        if run.phase == phase:
            saved = (run.page - 1) * page_size + run.position
            in_pipedrive = Deal.objects.filter(is_deleted=False).count()
            if in_pipedrive >= deals_at_least and in_pipedrive > saved:
                os.killpg(cluster_pid, signal.SIGKILL)
                time.sleep(1)  # a call under way when the worker died is answered to no one
                return {"saved_at_kill": saved, "deals_at_kill": in_pipedrive, **backfill_state(run_id)}
        if run.status not in ("queued", "running"):
            break
        time.sleep(0.05)
    raise SystemExit(f"the run never had {deals_at_least} deals mid-chunk: {backfill_state(run_id)}")


COMMANDS = {
    name: globals()[name]
    for name in (
        "setup", "add_contacts", "rename_contacts", "state", "set_faults", "revoke_pipedrive_token",
        "reconnect_pipedrive", "replay_failed", "expire_xero_token", "queue_contact_events",
        "seed_backfill", "backfill_start", "backfill_confirm", "backfill_state", "kill_backfill_midway",
    )
}  # fmt: skip

if __name__ == "__main__":
    if sys.argv[1] in ("sweeper", "upkeep"):
        {"sweeper": sweeper, "upkeep": upkeep}[sys.argv[1]](sys.argv[2])
    else:
        arguments = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
        print(json.dumps(COMMANDS[sys.argv[1]](**arguments)))
