"""The panel's data: a customer's account and invoices, from the connector's own records.

Answered from the ledger (``KnownContact``, ``KnownInvoice``, kept by every sync), the record links
(Pipedrive organization ↔ Xero contact, deal ↔ invoice) and the credit limit rows: no Xero or
Pipedrive call per view, a handful of indexed queries (bounded in the tests, timed by
``bench/panel.py``).

The answer is Pipedrive's JSON panel shape (``schema.json`` beside this module, uploaded to
Developer Hub): ``{"data": [objects]}``, at most ``MAX_OBJECTS`` objects, each with a numerical
``id``, a ``header`` and typed fields (currency ``{"code", "value"}``, label ``{"color", "label"}``,
date ``YYYY-MM-DD``, link ``{"label", "value", "external"}``). Every property sent is declared in
the schema (Pipedrive refuses the whole panel otherwise); one not sent is shown empty.

- An **organization** shows the account first (outstanding, overdue, credit limit, available credit,
  the last payment, how many invoices are open), then its open invoices (overdue first, oldest due
  date first) and, in the room left, the most recent paid ones.
- A **deal** shows its invoice first, then the customer's account.

Overdue is worked out from the invoices' due dates on each view, so it stays true as days pass
without any change in Xero (Xero's own overdue balance moves only when Xero is read again).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from connector import clock
from connector.models import KnownContact, KnownInvoice, SyncPair
from connector.options import pair_options
from mapping.models import CreditLimit, RecordLink
from mapping.rules import xero_url

SCHEMA_PATH = Path(__file__).with_name("schema.json")
MAX_OBJECTS = 10  # Pipedrive draws at most ten objects per panel
OPEN = "AUTHORISED"
SHOWN_STATUSES = ("AUTHORISED", "PAID")  # drafts are not the customer's yet; voided ones no longer are


@dataclass(frozen=True)
class Account:
    """What the connector knows of one Xero customer, for the panel's account object."""

    contact_id: str
    name: str
    currency: str
    outstanding: Decimal | None
    overdue: Decimal | None
    open_count: int
    credit_limit: Decimal | None
    credit_limit_known: bool
    last_payment_on: dt.date | None
    last_payment_amount: Decimal | None
    read_at: dt.datetime | None


def money(value: Decimal | None, currency: str) -> dict | None:
    """A currency field, or None (shown empty) when the amount is unknown."""
    if value is None:
        return None
    return {"code": currency or "", "value": float(value)}


def days_overdue(invoice: KnownInvoice, today: dt.date) -> int:
    if invoice.status != OPEN or not invoice.amount_due or invoice.due_on is None:
        return 0
    return max(0, (today - invoice.due_on).days)


def status_label(invoice: KnownInvoice, today: dt.date) -> dict:
    """Label colours are Pipedrive's: green, red, blue, yellow, purple, grey (text ≤ 40 characters)."""
    if invoice.status == "PAID":
        return {"color": "green", "label": "Paid"}
    if invoice.status == OPEN and invoice.amount_due:
        late = days_overdue(invoice, today)
        if late:
            return {"color": "red", "label": f"Overdue {late} day{'s' if late != 1 else ''}"}
        if invoice.amount_paid:
            return {"color": "yellow", "label": "Part paid"}
        return {"color": "blue", "label": "Awaiting payment"}
    return {"color": "grey", "label": (invoice.status or "Unknown").capitalize()}


def invoice_object(number: int, invoice: KnownInvoice, today: dt.date) -> dict:
    return {
        "id": number,
        "header": invoice.number or "Invoice without a number",
        "status": status_label(invoice, today),
        "total": money(invoice.total, invoice.currency),
        "amount_due": money(invoice.amount_due, invoice.currency),
        "issued": invoice.issued_on.isoformat() if invoice.issued_on else None,
        "due": invoice.due_on.isoformat() if invoice.due_on else None,
        "days_overdue": days_overdue(invoice, today),
        "xero": {
            "label": f"Open {invoice.number or 'the invoice'} in Xero",
            "value": xero_url("invoice", invoice.invoice_id),
            "external": True,
        },
    }


def message_object(header: str, note: str) -> dict:
    return {"id": 1, "header": header, "note": note}


def contact_limit(pair: SyncPair, contact_id: str) -> tuple[Decimal | None, str, bool]:
    """The contact's credit limit as (amount, currency, known). Known only from the connector's rows: a
    limit kept in a Pipedrive organization field, or one a contact group sets, is not (the ledger keeps
    no contact groups), and the panel says so rather than show another limit."""
    rows = list(CreditLimit.objects.filter(pair=pair))
    own = [row for row in rows if row.contact_id and row.contact_id.casefold() == contact_id]
    if own:
        return own[0].amount, own[0].currency, True
    if pair_options(pair).credit_limit_field or any(row.contact_group.strip() for row in rows):
        return None, "", False
    default = [row for row in rows if not row.contact_id and not row.contact_group.strip()]
    if default:
        return default[0].amount, default[0].currency, True
    return None, "", True


def account(pair: SyncPair, contact_id: str, today: dt.date) -> Account:
    """The customer's figures: Xero's balance as last read, overdue from the open invoices' due dates."""
    contact = KnownContact.objects.filter(pair=pair, contact_id=contact_id).first()
    invoices = KnownInvoice.objects.filter(pair=pair, contact_id=contact_id)
    by_currency = list(
        invoices.filter(status=OPEN, amount_due__gt=0)
        .values("currency")
        .annotate(
            count=Count("id"),
            due=Sum("amount_due"),
            overdue=Sum("amount_due", filter=Q(due_on__lt=today)),
        )
        .order_by("currency")
    )
    last_paid: Any = (
        invoices.filter(last_payment_on__isnull=False)
        .order_by("-last_payment_on", "-id")
        .values("last_payment_on", "last_payment_amount", "currency")
        .first()
    ) or {}
    limit, limit_currency, limit_known = contact_limit(pair, contact_id)
    if len(by_currency) == 1:
        currency = by_currency[0]["currency"]
        overdue = by_currency[0]["overdue"] or Decimal("0.00")
    else:
        # None or several currencies open: Xero's overdue balance (in the organisation's currency).
        currency = limit_currency or last_paid.get("currency") or ""
        overdue = contact.overdue if contact else None
        if not by_currency and overdue is None:
            overdue = Decimal("0.00")
    outstanding = contact.outstanding if contact and contact.outstanding is not None else None
    if outstanding is None and len(by_currency) == 1:
        outstanding = by_currency[0]["due"]
    return Account(
        contact_id=contact_id,
        name=contact.name if contact else "",
        currency=currency,
        outstanding=outstanding,
        overdue=overdue,
        open_count=sum(row["count"] for row in by_currency),
        credit_limit=limit,
        credit_limit_known=limit_known,
        last_payment_on=last_paid.get("last_payment_on"),
        last_payment_amount=last_paid.get("last_payment_amount"),
        read_at=contact.read_at if contact else None,
    )


def account_object(number: int, figures: Account) -> dict:
    currency = figures.currency
    credit: dict | None = None
    available: Decimal | None = None
    if figures.credit_limit is not None:
        available = figures.credit_limit - (figures.outstanding or Decimal(0))
        over = available < 0
        credit = (
            {"color": "red", "label": "Over credit limit"}
            if over
            else {"color": "green", "label": "Within credit limit"}
        )
    elif not figures.credit_limit_known:
        credit = {"color": "grey", "label": "Limit kept elsewhere"}
    if figures.last_payment_on:
        amount = (
            f"{figures.last_payment_amount:,.2f} {currency}".strip()
            if figures.last_payment_amount is not None
            else ""
        )
        last_payment = f"{amount} on {figures.last_payment_on:%-d %b %Y}".strip()
    else:
        last_payment = "No payment yet"
    read = timezone.localtime(figures.read_at).strftime("%-d %b %Y %H:%M") if figures.read_at else "not yet"
    return {
        "id": number,
        "header": f"Account: {figures.name}" if figures.name else "Account",
        "outstanding": money(figures.outstanding, currency),
        "overdue": money(figures.overdue, currency),
        "credit_limit": money(figures.credit_limit, currency),
        "available_credit": money(available, currency),
        "credit": credit,
        "last_payment": last_payment,
        "open_invoices": figures.open_count,
        "note": f"From Xero, read {read}.",
        "xero": {
            "label": "Open the contact in Xero",
            "value": xero_url("contact", figures.contact_id),
            "external": True,
        },
    }


def customer_invoices(pair: SyncPair, contact_id: str, room: int, exclude: str = "") -> list[KnownInvoice]:
    """Open invoices (overdue first: oldest due date first), then the most recently paid, ``room`` in all."""
    invoices = KnownInvoice.objects.filter(pair=pair, contact_id=contact_id).exclude(invoice_id=exclude)
    chosen = list(invoices.filter(status=OPEN, amount_due__gt=0).order_by("due_on", "number", "id")[:room])
    if len(chosen) < room:
        chosen += list(
            invoices.filter(status="PAID").order_by("-fully_paid_on", "-issued_on", "-id")[
                : room - len(chosen)
            ]
        )
    return chosen


def linked_xero_id(pair: SyncPair, xero_type: str, pipedrive_type: str, pipedrive_id: int) -> str:
    xero_id = (
        RecordLink.objects.filter(
            pair=pair,
            pipedrive_type=pipedrive_type,
            pipedrive_id=pipedrive_id,
            xero_type=xero_type,
            state=RecordLink.State.LINKED,
        )
        .order_by("-last_synced_at", "-id")
        .values_list("xero_id", flat=True)
        .first()
    )
    return str(xero_id or "").lower()


def organization_panel(pair: SyncPair, organization_id: int, today: dt.date) -> dict:
    contact_id = linked_xero_id(pair, "contact", "organization", organization_id)
    if not contact_id:
        return {
            "data": [
                message_object(
                    "Not linked to Xero",
                    "The connector has not made or matched this organization from a Xero contact, so it "
                    "has no invoices to show. It appears here after the customer's next sync.",
                )
            ]
        }
    figures = account(pair, contact_id, today)
    objects = [account_object(1, figures)]
    for number, invoice in enumerate(customer_invoices(pair, contact_id, MAX_OBJECTS - 1), start=2):
        objects.append(invoice_object(number, invoice, today))
    return {
        "data": objects,
        "external_link": {"url": xero_url("contact", contact_id), "label": "Open in Xero"},
    }


def deal_panel(pair: SyncPair, deal_id: int, today: dt.date) -> dict:
    invoice_id = linked_xero_id(pair, "invoice", "deal", deal_id)
    invoice = KnownInvoice.objects.filter(pair=pair, invoice_id=invoice_id).first() if invoice_id else None
    if invoice is None:
        return {
            "data": [
                message_object(
                    "No Xero invoice",
                    "This deal was not made from a Xero invoice the connector knows, so there is nothing "
                    "to show. Deals made from invoices show the invoice and the customer's account.",
                )
            ]
        }
    objects = [invoice_object(1, invoice, today)]
    if invoice.contact_id:
        objects.append(account_object(2, account(pair, invoice.contact_id, today)))
    return {"data": objects}


def panel_data(pair: SyncPair, resource: str, record_id: int, today: dt.date | None = None) -> dict:
    """The panel's answer for one Pipedrive record (``resource``: organization or deal)."""
    today = today or clock.stored_today(
        pair.xero_connection
    )  # due dates are the Xero organisation's calendar dates
    if resource == "deal":
        return deal_panel(pair, record_id, today)
    return organization_panel(pair, record_id, today)
