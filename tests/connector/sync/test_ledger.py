"""The connector's ledger of Xero contacts and sales invoices: kept by every sync, newest copy wins."""

import datetime as dt
from decimal import Decimal

import pytest

from connector.models import KnownContact, KnownInvoice
from connector.sync import sync_records
from connector.sync.ledger import remember_invoices
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def xero_invoice(
    invoice_id, *, status="AUTHORISED", due="2026-12-03", updated="/Date(1764700000000+0000)/", **extra
):
    return {
        "InvoiceID": invoice_id,
        "Type": "ACCREC",
        "Contact": {"ContactID": "C0FFEE00-0000-0000-0000-000000000001"},
        "InvoiceNumber": "INV-0042",
        "Status": status,
        "CurrencyCode": "NZD",
        "Total": 1250,
        "AmountDue": 1250 if status == "AUTHORISED" else 0,
        "AmountPaid": 0,
        "DueDateString": f"{due}T00:00:00",
        "UpdatedDateUTC": updated,
        **extra,
    }


def test_a_sync_keeps_the_invoice_and_its_contact_balances(sync_pair, sandbox, default_rules):
    contact_id = sandbox.create_contact("Ledger Customer Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=1250, currency="NZD", date=dt.date(2026, 11, 3))
    sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")

    known = KnownInvoice.objects.get(pair=sync_pair, invoice_id=invoice_id.lower())
    assert known.contact_id == contact_id.lower() and known.status == "AUTHORISED"
    assert known.total == Decimal("1250.00") and known.amount_due == Decimal("1250.00")
    assert known.due_on == dt.date(2026, 12, 3) and known.currency == "NZD"
    contact = KnownContact.objects.get(pair=sync_pair, contact_id=contact_id.lower())
    assert contact.name == "Ledger Customer Ltd" and contact.outstanding == Decimal("1250.00")

    sandbox.pay(invoice_id, 1250, date=dt.date(2026, 11, 20))
    sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")
    known.refresh_from_db()
    assert known.status == "PAID" and known.amount_due == Decimal("0.00")
    assert known.last_payment_on == dt.date(2026, 11, 20) and known.last_payment_amount == Decimal("1250.00")
    contact = KnownContact.objects.get(pair=sync_pair, contact_id=contact_id.lower())
    assert contact.outstanding == Decimal("0.00")


@pytest.mark.django_db
def test_an_older_copy_never_replaces_a_newer_one(sync_pair):
    invoice_id = "0ff1ce00-0000-0000-0000-000000000042"
    remember_invoices(
        sync_pair, [xero_invoice(invoice_id, status="PAID", updated="/Date(1764800000000+0000)/")]
    )
    written = remember_invoices(sync_pair, [xero_invoice(invoice_id, updated="/Date(1764700000000+0000)/")])
    assert written == 0
    assert KnownInvoice.objects.get(invoice_id=invoice_id).status == "PAID"
    remember_invoices(
        sync_pair, [xero_invoice(invoice_id, status="VOIDED", updated="/Date(1764900000000+0000)/")]
    )
    assert KnownInvoice.objects.get(invoice_id=invoice_id).status == "VOIDED"


@pytest.mark.django_db
def test_bills_are_not_kept(sync_pair):
    bill = xero_invoice("0ff1ce00-0000-0000-0000-000000000043", Type="ACCPAY")
    assert remember_invoices(sync_pair, [bill]) == 0
    assert not KnownInvoice.objects.exists()
