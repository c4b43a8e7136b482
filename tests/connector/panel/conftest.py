"""Shared pieces of the panel tests: a pair with a known panel secret, its ledger rows and links, and
requests signed the way Pipedrive signs them."""

import datetime as dt
import time
from decimal import Decimal

import jwt
import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import KnownContact, KnownInvoice, SyncPair
from mapping.models import RecordLink

PANEL_SECRET = "pipedrive-panel-jwt-secret-VALUE"
COMPANY = 1  # the pipedrive_api_token_connection fixture's company
USER = 777
CONTACT = "c0ffee00-0000-0000-0000-000000000001"
ORG = 501


def today() -> dt.date:
    """The date the panel counts overdue days from (the server's local date)."""
    return timezone.localdate()


def days(n: int) -> dt.date:
    return today() + dt.timedelta(days=n)


def signed_token(secret=PANEL_SECRET, *, company=COMPANY, user=USER, issued=None, lifetime=300, **extra):
    issued = int(time.time()) if issued is None else issued
    claims = {"userId": user, "companyId": company, "iat": issued, **extra}
    if lifetime is not None:
        claims["exp"] = issued + lifetime
    return jwt.encode(claims, secret, algorithm="HS256")


def panel_query(record_id=ORG, *, resource="organization", token=None, company=COMPANY, user=USER) -> dict:
    return {
        "resource": resource,
        "view": "details",
        "userId": str(user),
        "companyId": str(company),
        "selectedIds": str(record_id),
        "isShared": "false",
        "token": signed_token() if token is None else token,
    }


def panel_url(pair) -> str:
    return reverse("panel:panel", args=[pair.key])


@pytest.fixture
def panel_pair(xero_connection, pipedrive_api_token_connection):
    return SyncPair.objects.create(
        name="Panel pair",
        xero_connection=xero_connection,
        pipedrive_connection=pipedrive_api_token_connection,
        pipedrive_panel_secret=PANEL_SECRET,
    )


def add_invoice(pair, number, *, status="AUTHORISED", total="100.00", due=None, paid="0.00", **extra):
    due = due or days(-6)
    total_d = Decimal(total)
    paid_d = Decimal(paid)
    return KnownInvoice.objects.create(
        pair=pair,
        invoice_id=extra.pop("invoice_id", f"1nv01ce0-0000-0000-0000-{number:012d}"),
        contact_id=extra.pop("contact_id", CONTACT),
        number=f"INV-{number:04d}",
        status=status,
        currency=extra.pop("currency", "NZD"),
        total=total_d,
        amount_paid=paid_d,
        amount_due=Decimal(0) if status == "PAID" else total_d - paid_d,
        issued_on=due - dt.timedelta(days=30),
        due_on=due,
        read_at=timezone.now(),
        **extra,
    )


@pytest.fixture
def customer(panel_pair):
    """A linked customer with one overdue invoice, one not yet due and one paid."""
    RecordLink.objects.create(
        pair=panel_pair,
        xero_type="contact",
        xero_id=CONTACT.upper(),
        pipedrive_type="organization",
        pipedrive_id=ORG,
    )
    KnownContact.objects.create(
        pair=panel_pair,
        contact_id=CONTACT,
        name="Acme Ltd",
        outstanding=Decimal("1750.00"),
        overdue=Decimal("0.00"),
        read_at=timezone.now(),
    )
    overdue = add_invoice(panel_pair, 42, total="1250.00", due=days(-4))
    upcoming = add_invoice(panel_pair, 43, total="500.00", due=days(13))
    paid = add_invoice(
        panel_pair,
        41,
        status="PAID",
        total="300.00",
        due=days(-22),
        fully_paid_on=days(-27),
        last_payment_on=days(-27),
        last_payment_amount=Decimal("300.00"),
    )
    return {"overdue": overdue, "upcoming": upcoming, "paid": paid}
