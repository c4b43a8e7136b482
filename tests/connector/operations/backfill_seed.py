"""Bulk seeding of the sandboxes for backfill tests and the backfill benchmark: rows straight into the
sandbox's tables (thousands in a second; no webhooks), shaped as the sandbox's own services make them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sandbox import clock
from sandbox.pipedrive.models import Organization
from sandbox.xero.models import Contact, Invoice, Payment


def contact_name(number: int) -> str:
    return f"Customer {number:05d} Limited"


# Records that exist before a backfill were last changed a while ago (the backfill's catch-up pass,
# which asks for what changed while it ran, then has nothing to re-read).
AGE = dt.timedelta(days=2)


def seed_contacts(organisation, count: int, *, person_every: int = 1, start: int = 0) -> list[Contact]:
    """``count`` active contacts named ``contact_name(n)``; every ``person_every``-th has its own person
    (first name, last name, e-mail), the others none (0: none has)."""
    now = clock.now() - AGE
    rows = []
    for number in range(start, start + count):
        person = person_every and number % person_every == 0
        rows.append(
            Contact(
                organisation=organisation,
                contact_id=uuid.uuid4(),
                name=contact_name(number),
                first_name="Ann" if person else "",
                last_name=f"Lee {number}" if person else "",
                email_address=f"ann.{number}@customer{number}.example" if person else "",
                updated_at=now,
            )
        )
    return Contact.objects.bulk_create(rows, batch_size=1000)


def seed_invoices(organisation, contacts: list[Contact], count: int, *, paid_every: int = 0) -> list[Invoice]:
    """``count`` AUTHORISED sales invoices of 100.00 (untaxed) spread over the contacts; every
    ``paid_every``-th is paid in full (PAID, with a payment)."""
    now = clock.now() - AGE
    today = now.date()
    rows = []
    for number in range(count):
        paid = paid_every and number % paid_every == 0
        rows.append(
            Invoice(
                organisation=organisation,
                invoice_id=uuid.uuid4(),
                contact=contacts[number % len(contacts)],
                type="ACCREC",
                invoice_number=f"INV-{number + 1:06d}",
                status="PAID" if paid else "AUTHORISED",
                line_amount_types="NoTax",
                date=today - dt.timedelta(days=number % 300),
                due_date=today + dt.timedelta(days=30),
                currency_code="NZD",
                line_items=[
                    {
                        "LineItemID": str(uuid.uuid4()),
                        "Description": "Services",
                        "Quantity": 1.0,
                        "UnitAmount": 100.0,
                        "AccountCode": "200",
                        "TaxType": "NONE",
                        "TaxAmount": 0.0,
                        "LineAmount": 100.0,
                    }
                ],
                sub_total=Decimal("100"),
                total=Decimal("100"),
                amount_paid=Decimal("100") if paid else Decimal("0"),
                fully_paid_on=today if paid else None,
                updated_at=now,
            )
        )
    invoices = Invoice.objects.bulk_create(rows, batch_size=1000)
    Payment.objects.bulk_create(
        [
            Payment(
                organisation=organisation,
                payment_id=uuid.uuid4(),
                invoice=invoice,
                date=today,
                amount=Decimal("100"),
                reference="Bank transfer",
                updated_at=now,
            )
            for invoice in invoices
            if invoice.status == "PAID"
        ],
        batch_size=1000,
    )
    return invoices


def seed_organizations(company, owner, names: list[str]) -> None:
    """Organizations already in Pipedrive (as sales made them before the connector)."""
    now = dt.datetime.now(dt.UTC)
    Organization.objects.bulk_create(
        [
            Organization(
                company=company,
                owner=owner,
                name=name,
                attributes={},
                custom_fields={},
                add_time=now,
                update_time=now,
            )
            for name in names
        ],
        batch_size=1000,
    )
