"""Steps the end-to-end benchmarks run inside the sandbox's own environment (its database).

    python bench/sandbox_side.py <command> [JSON arguments on stdin]   (JSON answer on stdout)

The benchmark driver (bench/stack.py) runs these as subprocesses with the sandbox's settings,
so the sandbox keeps its own database, exactly as when it runs as a separate service; the
connector's database is the driver's. Commands:

- ``setup``: a fresh "Bench organisation" in sandbox Xero joined to the demo app (with the
  given Xero minute limit), its webhook registered at the connector with the given key, the
  demo Pipedrive company with the invoice pipeline and the connector's Pipedrive webhooks;
  answers the credentials the connector needs.
- ``contacts``: create contacts (each with one person: first/last name and e-mail).
- ``touch``: save every bench contact unchanged (Xero sends an UPDATE event for each).
- ``invoices`` / ``payments``: one AUTHORISED invoice per bench contact / one payment in full per
  open bench invoice.
- ``renames``: rename pool contacts at a steady rate, one change at a time; each change's unique
  name and the moment it was written, one JSON line per change (a long-running process).
- ``organization-writes``: every Pipedrive organization write the sandbox announced (its outgoing
  webhooks: record id, name, moment), to time when each rename became visible.
- ``changed``: how many Pipedrive records were created and updated since a moment, and what one
  create or update of each costs in tokens (the spec's ``x-token-cost``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_ORGANISATION = "Bench organisation"
SCOPE = "offline_access accounting.contacts.read accounting.invoices.read accounting.payments.read"
INVOICE_STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


def _organisation():
    from sandbox.xero.models import Organisation

    return Organisation.objects.get(name=BENCH_ORGANISATION)


def setup(args: dict) -> dict:
    from django.db import transaction

    from sandbox import clock, webhooks
    from sandbox.pipedrive import services as pd_services
    from sandbox.pipedrive.models import Pipeline, Stage, User, Webhook
    from sandbox.xero import identity
    from sandbox.xero import services as xero_services
    from sandbox.xero.models import Organisation

    with transaction.atomic():
        app = xero_services.ensure_demo_app()
        app.minute_limit = args["xero_minute_limit"]
        app.save(update_fields=["minute_limit"])
        organisation = Organisation.objects.filter(name=BENCH_ORGANISATION).first()
        organisation = organisation or xero_services.create_organisation(BENCH_ORGANISATION)
        grant = xero_services.connect(app, [organisation], SCOPE)
        access, refresh = identity._access_token(grant), identity._refresh_token(grant)
        webhooks.register_xero_webhook(
            app.client_id,
            f"{args['connector_url']}/webhooks/xero/{args['pair_key']}/",
            signing_key=args["xero_webhook_key"],
            categories="CONTACT,INVOICE,PAYMENT",
        )
        company = pd_services.ensure_demo_company()
        admin = User.objects.get(api_token=pd_services.DEMO_API_TOKEN)
        now = clock.now()
        if not Pipeline.objects.filter(company=company, name="Xero invoices").exists():
            pipeline = Pipeline.objects.create(
                company=company,
                name="Xero invoices",
                order_nr=Pipeline.objects.filter(company=company).count() + 1,
                add_time=now,
                update_time=now,
            )
            for number, name in enumerate(INVOICE_STAGES, start=1):
                Stage.objects.create(
                    pipeline=pipeline, name=name, order_nr=number, add_time=now, update_time=now
                )
        for event_object in ("organization", "person", "deal"):
            Webhook.objects.create(
                company=company,
                user=admin,
                name="ml-connector: bench",
                subscription_url=f"{args['connector_url']}/webhooks/pipedrive/{args['pair_key']}/",
                event_action="*",
                event_object=event_object,
                version="2.0",
                http_auth_user=args["pipedrive_webhook_user"],
                http_auth_password=args["pipedrive_webhook_password"],
                add_time=now,
            )
    return {
        "tenant_id": str(organisation.tenant_id),
        "tenant_name": organisation.name,
        "scopes": SCOPE,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "access_token": access.token,
        "refresh_token": refresh.token,
        "expires_at": access.expires_at.isoformat(),
        "company_id": company.id,
        "company_name": company.name,
        "company_domain": company.domain,
        "api_token": pd_services.DEMO_API_TOKEN,
        "user_name": admin.name,
        "user_email": admin.email,
    }


def contacts(args: dict) -> dict:
    """``count`` new contacts named ``prefix NNNN``, each in its own transaction (its own event)."""
    from django.db import transaction

    from sandbox.xero import accounting

    organisation, ids = _organisation(), []
    for number in range(args["count"]):
        name = f"{args['prefix']} {number:04d}"
        slug = name.lower().replace(" ", ".")
        with transaction.atomic():
            contact = accounting.create_contact(
                organisation,
                {
                    "Name": name,
                    "EmailAddress": f"{slug}@bench.example",
                    "FirstName": "Pat",
                    "LastName": f"Bench{number:04d}",
                    "ContactNumber": f"B-{number:05d}",
                },
            )
        ids.append(str(contact.contact_id))
    return {"contact_ids": ids}


def _bench_contacts(prefix: str):
    from sandbox.xero.models import Contact

    return list(
        Contact.objects.filter(organisation=_organisation(), name__startswith=prefix + " ").order_by("name")
    )


def touch(args: dict) -> dict:
    """Save each bench contact with no change: Xero still sends an UPDATE event for it."""
    from django.db import transaction

    from sandbox.xero import accounting

    touched = 0
    for contact in _bench_contacts(args["prefix"]):
        with transaction.atomic():
            accounting.update_contact(contact, {})
        touched += 1
    return {"touched": touched}


def invoices(args: dict) -> dict:
    from django.db import transaction

    from sandbox import clock
    from sandbox.xero import accounting

    organisation, today, ids = _organisation(), clock.now().date(), []
    for index, contact in enumerate(_bench_contacts(args["prefix"])):
        with transaction.atomic():
            invoice = accounting.create_invoice(
                organisation,
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": str(contact.contact_id)},
                    "Date": today.isoformat(),
                    "DueDate": (today + dt.timedelta(days=30)).isoformat(),
                    "Status": "AUTHORISED",
                    "Reference": f"BENCH-{index:05d}",
                    "LineItems": [
                        {
                            "Description": "Consulting services",
                            "Quantity": 2,
                            "UnitAmount": 100 + index % 50,
                            "AccountCode": "200",
                            "TaxType": "OUTPUT2",
                        }
                    ],
                },
            )
        ids.append(str(invoice.invoice_id))
    return {"invoice_ids": ids}


def payments(args: dict) -> dict:
    from django.db import transaction

    from sandbox import clock
    from sandbox.xero import accounting
    from sandbox.xero.models import Invoice

    organisation, today, ids = _organisation(), clock.now().date(), []
    open_invoices = Invoice.objects.filter(
        organisation=organisation, status="AUTHORISED", reference__startswith="BENCH-"
    ).order_by("reference")
    for invoice in open_invoices:
        with transaction.atomic():
            payment = accounting.create_payment(
                organisation,
                {
                    "Invoice": {"InvoiceID": str(invoice.invoice_id)},
                    "Account": {"Code": "090"},
                    "Date": today.isoformat(),
                    "Amount": float(invoice.amount_due),
                    "Reference": "Bank transfer",
                },
            )
        ids.append(str(payment.payment_id))
    return {"payment_ids": ids}


def renames(args: dict) -> dict:
    """Rename pool contacts round robin, change k at start + k / rate; one JSON line per change."""
    from django.db import transaction

    from sandbox.xero import accounting

    pool = _bench_contacts(args["prefix"])
    if not pool:
        raise SystemExit("no bench contacts to rename")
    rate, changes = float(args["rate"]), int(args["changes"])
    out = open(args["out"], "w")  # noqa: SIM115 - one line flushed per change, closed at the end
    start, behind = time.monotonic() + 0.2, 0.0
    for number in range(changes):
        due = start + number / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            behind = max(behind, -wait)
        contact = pool[number % len(pool)]
        name = f"{args['prefix']} {number % len(pool):04d} rev {number // len(pool) + 1}"
        with transaction.atomic():
            accounting.update_contact(contact, {"Name": name})
        out.write(
            json.dumps(
                {
                    "change": number,
                    "contact_id": str(contact.contact_id),
                    "name": name,
                    "written_at": contact.updated_at.timestamp(),
                }
            )
            + "\n"
        )
        out.flush()
    out.close()
    return {"changes": changes, "most_behind_schedule_s": round(behind, 3)}


def organization_writes(args: dict) -> dict:
    """Each organization write the sandbox announced in its outgoing webhooks: (id, name, moment)."""
    from sandbox.models import Service, WebhookDelivery

    writes = []
    rows = WebhookDelivery.objects.filter(service=Service.PIPEDRIVE).order_by("pk")
    for body, created in rows.values_list("body", "created_at").iterator(chunk_size=2000):
        payload = json.loads(body)
        meta, data = payload.get("meta") or {}, payload.get("data") or {}
        if meta.get("entity") == "organization" and meta.get("action") in ("create", "change"):
            writes.append([str(meta.get("entity_id")), data.get("name"), created.timestamp()])
    return {"writes": writes}


def changed(args: dict) -> dict:
    """Pipedrive records created or updated since ``since`` and the token cost of writing each once."""
    from sandbox.pipedrive import costs
    from sandbox.pipedrive.models import Deal, Note, Organization, Person

    since = dt.datetime.fromisoformat(args["since"])
    result = {}
    for name, model, create_path, update_path, version in (
        ("organization", Organization, "/organizations", "/organizations/{id}", "v2"),
        ("person", Person, "/persons", "/persons/{id}", "v2"),
        ("deal", Deal, "/deals", "/deals/{id}", "v2"),
        ("note", Note, "/notes", "/notes/{id}", "v1"),
    ):
        created = model.objects.filter(add_time__gte=since).count()
        updated = model.objects.filter(add_time__lt=since, update_time__gte=since).count()
        update_method = "PATCH" if version == "v2" else "PUT"
        result[name] = {
            "created": created,
            "updated": updated,
            "create_tokens": costs.cost(version, "POST", create_path),
            "update_tokens": costs.cost(version, update_method, update_path),
        }
    return result


COMMANDS = {
    "setup": setup,
    "contacts": contacts,
    "touch": touch,
    "invoices": invoices,
    "payments": payments,
    "renames": renames,
    "organization-writes": organization_writes,
    "changed": changed,
}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    command = COMMANDS[sys.argv[1]]
    raw = sys.stdin.read() if not sys.stdin.isatty() else ""
    answer = command(json.loads(raw) if raw.strip() else {})
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
