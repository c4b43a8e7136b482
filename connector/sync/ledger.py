"""The connector's own ledger of Xero records: what it last read of each contact and sales invoice.

Every sync that reads contacts, invoices or payments from Xero writes what it read here, so that
pages answered from the connector's records (the Pipedrive panel) and passes that must not scan Xero
(the overdue roll-over) know names, balances, statuses and due dates. An older copy never replaces
a newer one: an invoice row changes only when the copy read is at least as recent (``UpdatedDateUTC``).
Each call writes its records in one bulk statement.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from connector.models import KnownContact, KnownInvoice
from mapping.values import parse_xero_date

SALES = "ACCREC"

INVOICE_FIELDS = [
    "contact_id",
    "number",
    "reference",
    "status",
    "currency",
    "total",
    "amount_due",
    "amount_paid",
    "issued_on",
    "due_on",
    "fully_paid_on",
    "last_payment_on",
    "last_payment_amount",
    "xero_updated_at",
    "read_at",
]
CONTACT_FIELDS = ["name", "outstanding", "overdue", "read_at"]


def money(value) -> Decimal | None:
    """A Xero amount as a Decimal rounded to cents; None when absent or not a number."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number.quantize(Decimal("0.01")) if number.is_finite() else None


def xero_date(value) -> dt.date | None:
    """The calendar date a Xero user sees for ``/Date(…)/`` or ISO text."""
    parsed = parse_xero_date(value)
    if parsed is None:
        return None
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed


def xero_moment(value) -> dt.datetime | None:
    """An aware datetime for Xero's ``UpdatedDateUTC`` (``/Date(…)/`` or ISO; naive ISO is UTC)."""
    parsed = parse_xero_date(value)
    if not isinstance(parsed, dt.datetime):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def last_payment(invoice: dict) -> tuple[dt.date | None, Decimal | None]:
    """The newest payment listed on a Xero invoice (``Payments``), as (date, amount)."""
    newest: tuple[dt.date | None, Decimal | None] = (None, None)
    for payment in invoice.get("Payments") or []:
        when = xero_date(payment.get("Date"))
        if when is not None and (newest[0] is None or when >= newest[0]):
            newest = (when, money(payment.get("Amount")))
    return newest


def invoice_row(pair, invoice: dict, read_at: dt.datetime) -> KnownInvoice:
    paid_on, paid_amount = last_payment(invoice)
    return KnownInvoice(
        pair=pair,
        invoice_id=str(invoice["InvoiceID"]).lower(),
        contact_id=str((invoice.get("Contact") or {}).get("ContactID") or "").lower(),
        number=str(invoice.get("InvoiceNumber") or "")[:255],
        reference=str(invoice.get("Reference") or "")[:255],
        status=str(invoice.get("Status") or "")[:20],
        currency=str(invoice.get("CurrencyCode") or "")[:3],
        total=money(invoice.get("Total")),
        amount_due=money(invoice.get("AmountDue")),
        amount_paid=money(invoice.get("AmountPaid")),
        issued_on=xero_date(invoice.get("DateString") or invoice.get("Date")),
        due_on=xero_date(invoice.get("DueDateString") or invoice.get("DueDate")),
        fully_paid_on=xero_date(invoice.get("FullyPaidOnDate")),
        last_payment_on=paid_on,
        last_payment_amount=paid_amount,
        xero_updated_at=xero_moment(invoice.get("UpdatedDateUTC")),
        read_at=read_at,
    )


def not_older(read: dt.datetime | None, stored: dt.datetime | None) -> bool:
    """Whether a copy updated at ``read`` may replace one updated at ``stored`` (unknown dates may)."""
    return read is None or stored is None or read >= stored


def remember_invoices(pair, invoices: list[dict]) -> int:
    """Keep the sales invoices just read from Xero; returns how many rows were written."""
    now = timezone.now()
    rows = {
        str(inv["InvoiceID"]).lower(): invoice_row(pair, inv, now)
        for inv in invoices
        if inv.get("InvoiceID") and inv.get("Type", SALES) == SALES
    }
    if not rows:
        return 0
    stored = dict(
        KnownInvoice.objects.filter(pair=pair, invoice_id__in=list(rows)).values_list(
            "invoice_id", "xero_updated_at"
        )
    )
    fresh = [
        row for invoice_id, row in rows.items() if not_older(row.xero_updated_at, stored.get(invoice_id))
    ]
    KnownInvoice.objects.bulk_create(
        fresh, update_conflicts=True, unique_fields=["pair", "invoice_id"], update_fields=INVOICE_FIELDS
    )
    return len(fresh)


def remember_contacts(pair, contacts: list[dict]) -> int:
    """Keep the contacts just read from Xero (name and, when the answer has them, balances)."""
    now = timezone.now()
    rows = {}
    for contact in contacts:
        if not contact.get("ContactID"):
            continue
        receivable = (contact.get("Balances") or {}).get("AccountsReceivable") or {}
        rows[str(contact["ContactID"]).lower()] = KnownContact(
            pair=pair,
            contact_id=str(contact["ContactID"]).lower(),
            name=str(contact.get("Name") or "")[:255],
            outstanding=money(receivable.get("Outstanding")),
            overdue=money(receivable.get("Overdue")),
            read_at=now,
        )
    if rows:
        KnownContact.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["pair", "contact_id"],
            update_fields=CONTACT_FIELDS,
        )
    return len(rows)
