"""The sync test harness: sandbox Xero and Pipedrive driven through their services, read back, counted.

Test modules mount the sandbox on the live server and use transactional tests (the live
server runs in another thread and must see committed rows)::

    from tests.connector.sync.harness import SYNC_URLS, SYNC_MARKS
    urlpatterns = SYNC_URLS
    pytestmark = SYNC_MARKS

and take the ``sync_pair`` and ``sandbox`` fixtures from ``tests/connector/sync/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import include, path

from sandbox import counters, faults
from sandbox.pipedrive import services as pd_services
from sandbox.pipedrive.guard import Caller
from sandbox.pipedrive.models import Company, CustomField, Deal, Note, Organization, Person, Pipeline, Stage
from sandbox.xero import accounting
from sandbox.xero.models import Contact, Invoice, Organisation, Payment

SYNC_URLS = [
    path("sandbox/", include("sandbox.urls")),
    path("webhooks/", include("connector.intake.urls")),
    path("pipedrive/panel/", include("connector.panel.urls")),  # the pair page shows its endpoint
    path("connect/", include("connector.connections.urls")),  # the admin home's set-up call-out links there
    path("admin/", include("connector.operations.urls")),
    path("admin/", admin.site.urls),
]
SYNC_MARKS = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.connector.sync.harness")]
urlpatterns = SYNC_URLS  # this module doubles as the URLconf named by SYNC_MARKS

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class Counts:
    """What the sandboxes counted since the last reset: Xero calls, Pipedrive calls and tokens."""

    xero_calls: int
    xero_by_endpoint: dict
    pipedrive_calls: int
    pipedrive_tokens: int
    pipedrive_by_endpoint: dict
    pipedrive_tokens_by_endpoint: dict

    @property
    def pipedrive_writes(self) -> int:
        return sum(
            sum(by_status.values())
            for endpoint, by_status in self.pipedrive_by_endpoint.items()
            if endpoint.split(" ", 1)[0] in WRITE_METHODS
        )

    def pipedrive_calls_to(self, endpoint: str) -> int:
        """Calls to e.g. ``"GET /api/v2/organizations/search"`` (any status)."""
        return sum(self.pipedrive_by_endpoint.get(endpoint, {}).values())

    @property
    def pipedrive_searches(self) -> int:
        return sum(
            sum(by_status.values())
            for endpoint, by_status in self.pipedrive_by_endpoint.items()
            if "search" in endpoint.lower()
        )

    def __str__(self):
        return (
            f"Xero calls {self.xero_calls} {self.xero_by_endpoint}; "
            f"Pipedrive calls {self.pipedrive_calls}, tokens {self.pipedrive_tokens} "
            f"{self.pipedrive_tokens_by_endpoint}, writes {self.pipedrive_writes}"
        )


class SyncSandbox:
    """One sandbox Xero organisation and one sandbox Pipedrive company, as a sync test sees them."""

    def __init__(self, organisation: Organisation, company: Company, caller: Caller):
        self.organisation = organisation
        self.company = company
        self.caller = caller  # the Pipedrive user the connector's API token belongs to

    # --- Xero: write as finance staff would (each write emits its webhook) ----------------
    def create_contact(self, name: str, *, email: str = "", first_name: str = "", last_name: str = "",
                       persons: list[dict] | None = None, phones: list[dict] | None = None,
                       addresses: list[dict] | None = None, **extra) -> str:  # fmt: skip
        """A Xero contact; ``persons`` are ContactPersons dicts (FirstName, LastName, EmailAddress,
        IncludeInEmails). Returns the ContactID."""
        data = {"Name": name, "EmailAddress": email, "FirstName": first_name, "LastName": last_name, **extra}
        if persons is not None:
            data["ContactPersons"] = persons
        if phones is not None:
            data["Phones"] = phones
        if addresses is not None:
            data["Addresses"] = addresses
        return str(accounting.create_contact(self.organisation, data).contact_id)

    def update_contact(self, contact_id: str, **data) -> None:
        """E.g. ``update_contact(cid, Name="New name")`` or ``ContactStatus="ARCHIVED"``."""
        accounting.update_contact(self.xero_contact(contact_id), data)

    def add_to_contact_group(self, contact_id: str, group_name: str) -> None:
        accounting.add_to_contact_group(self.xero_contact(contact_id), group_name)

    def xero_contact(self, contact_id: str) -> Contact:
        return Contact.objects.get(organisation=self.organisation, contact_id=contact_id)

    def create_invoice(self, contact_id: str, *, amount: float | Decimal = 100, status: str = "AUTHORISED",
                       date: dt.date | None = None, due_in_days: int = 30, currency: str = "",
                       reference: str = "", tax_type: str = "NONE", **extra) -> str:  # fmt: skip
        """An ACCREC invoice of one line (untaxed by default: Total == ``amount``). Returns the InvoiceID."""
        issued = date or dt.date.today()
        data = {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact_id},
            "Date": issued.isoformat(),
            "DueDate": (issued + dt.timedelta(days=due_in_days)).isoformat(),
            "Status": status,
            "Reference": reference,
            "LineItems": [
                {
                    "Description": "Services",
                    "Quantity": 1,
                    "UnitAmount": float(amount),
                    "AccountCode": "200",
                    "TaxType": tax_type,
                }
            ],
            **extra,
        }
        if currency:
            data["CurrencyCode"] = currency
        return str(accounting.create_invoice(self.organisation, data).invoice_id)

    def update_invoice(self, invoice_id: str, **data) -> None:
        """E.g. ``update_invoice(iid, Status="VOIDED")``."""
        accounting.update_invoice(self.xero_invoice(invoice_id), data)

    def void_invoice(self, invoice_id: str) -> None:
        self.update_invoice(invoice_id, Status="VOIDED")

    def xero_invoice(self, invoice_id: str) -> Invoice:
        return Invoice.objects.get(organisation=self.organisation, invoice_id=invoice_id)

    def pay(self, invoice_id: str, amount: float | Decimal, *, date: dt.date | None = None,
            reference: str = "Bank transfer") -> str:  # fmt: skip
        """A payment on the invoice. Returns the PaymentID."""
        data = {
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": "090"},
            "Date": (date or dt.date.today()).isoformat(),
            "Amount": float(amount),
            "Reference": reference,
        }
        return str(accounting.create_payment(self.organisation, data).payment_id)

    def delete_payment(self, payment_id: str) -> None:
        payment = Payment.objects.get(organisation=self.organisation, payment_id=payment_id)
        accounting.delete_payment(payment, {"Status": "DELETED"})

    # --- Pipedrive: records that exist before the connector (as sales staff made them) ------
    def pipedrive_create(self, entity: str, body: dict) -> int:
        """Through the sandbox's service (no API call counted). Returns the id."""
        return pd_services.create_record(self.caller, entity, body).id

    def pipedrive_update(self, entity: str, record_id: int, body: dict) -> None:
        pd_services.update_record(self.caller, entity, record_id, body)

    def pipedrive_delete(self, entity: str, record_id: int) -> None:
        pd_services.delete_record(self.caller, entity, record_id)

    def bulk_organizations(self, names: list[str]) -> None:
        """Many organizations at once, straight into the sandbox's table (fast; no webhooks)."""
        now = dt.datetime.now(dt.UTC)
        Organization.objects.bulk_create(
            [
                Organization(
                    company=self.company,
                    owner=self.caller.user,
                    name=name,
                    attributes={},
                    custom_fields={},
                    add_time=now,
                    update_time=now,
                )
                for name in names
            ],
            batch_size=500,
        )

    def add_custom_field(self, entity: str, name: str, field_type: str = "varchar") -> str:
        """A custom field of organization/person/deal; returns its key (field_code)."""
        return pd_services.create_field(
            self.company, entity, {"field_name": name, "field_type": field_type}
        ).field_code

    def add_pipeline(self, name: str, stages: list[str]) -> dict[str, int]:
        """A pipeline with these stages; returns {stage name: stage id} (and "pipeline": its id)."""
        now = dt.datetime.now(dt.UTC)
        order = Pipeline.objects.filter(company=self.company).count() + 1
        pipeline = Pipeline.objects.create(
            company=self.company, name=name, order_nr=order, add_time=now, update_time=now
        )
        ids = {"pipeline": pipeline.id}
        for number, stage in enumerate(stages, start=1):
            ids[stage] = Stage.objects.create(
                pipeline=pipeline, name=stage, order_nr=number, add_time=now, update_time=now
            ).id
        return ids

    # --- Pipedrive: read back what the connector wrote ------------------------------------
    def _rows(self, model, **filters) -> list[dict]:
        rows = model.objects.filter(company=self.company, is_deleted=False, **filters).order_by("id")
        return [pd_services.serialize(row) for row in rows]

    def organizations(self, **filters) -> list[dict]:
        return self._rows(Organization, **filters)

    def persons(self, **filters) -> list[dict]:
        """Persons as the v2 API shows them (``org_id``, ``emails``, ``phones`` …)."""
        return self._rows(Person, **filters)

    def deals(self, **filters) -> list[dict]:
        """Deals as the v2 API shows them (``stage_id``, ``status``, ``value``, ``org_id`` …)."""
        return self._rows(Deal, **filters)

    def notes(self, **filters) -> list[dict]:
        rows = Note.objects.filter(company=self.company, **filters).order_by("id")
        return [pd_services.serialize_note(row) for row in rows]

    def organization(self, org_id: int) -> dict:
        return pd_services.serialize(Organization.objects.get(company=self.company, id=org_id))

    def stage_name(self, stage_id: int) -> str:
        return Stage.objects.get(id=stage_id).name

    def custom_field_code(self, entity: str, name: str) -> str | None:
        field = CustomField.objects.filter(company=self.company, entity=entity, field_name=name).first()
        return field.field_code if field else None

    # --- counters and faults ----------------------------------------------------------------
    def counts(self) -> Counts:
        xero = counters.snapshot("xero", str(self.organisation.tenant_id))
        pipedrive = counters.snapshot("pipedrive", str(self.company.id))
        return Counts(
            xero_calls=xero["calls"],
            xero_by_endpoint=xero["by_endpoint"],
            pipedrive_calls=pipedrive["calls"],
            pipedrive_tokens=pipedrive["tokens"],
            pipedrive_by_endpoint=pipedrive["by_endpoint"],
            pipedrive_tokens_by_endpoint=pipedrive["tokens_by_endpoint"],
        )

    def reset_counters(self) -> None:
        counters.reset()

    def set_faults(self, service: str, **switches) -> None:
        """E.g. ``set_faults("pipedrive", error_rate=1.0)``; cleared after each test."""
        faults.set_faults(service, **switches)
