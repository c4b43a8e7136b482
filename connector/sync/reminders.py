"""Overdue reminders: one Pipedrive activity for the deal's owner per invoice that falls overdue.

The daily overdue pass (``connector.operations.overdue``) calls ``remind_owner`` for each invoice it
finds overdue when the pair's option ``overdue_reminders`` is on. Never twice for one invoice and due
date: the ``OverdueReminder`` row is claimed first (unique per pair, invoice and due date), then the
activity is created and its id stored; a row left without an id by a killed worker is matched against
the deal's activities (by subject) before a new one is made.

The invoice sync calls ``close_reminders`` after each batch: an invoice seen PAID, VOIDED, DELETED or
with nothing left to pay gets its open reminders marked done (``PATCH done=true``); an invoice whose
due date moved gets the old reminder closed (a new one follows when the new date passes).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from connector.errors import ConnectorError
from connector.limits import budget
from connector.models import KnownInvoice, OverdueReminder
from connector.sync.common import linked_id
from connector.sync.ledger import money, xero_date
from mapping.models import RecordLink

logger = logging.getLogger(__name__)

ACTIVITY_TYPE = "task"  # one of Pipedrive's default activity types (key_string), present in every company
CREATE_COST = 5 + 1  # POST /api/v2/activities and GET /api/v2/deals/{id} (the owner)
SETTLED_STATUSES = ("PAID", "VOIDED", "DELETED")


def reminder_subject(invoice: KnownInvoice) -> str:
    """E.g. "INV-0042 overdue: 1,250.00 NZD, due 3 Dec"."""
    amount = invoice.amount_due if invoice.amount_due is not None else Decimal("0")
    due = f"{invoice.due_on.day} {invoice.due_on:%b}" if invoice.due_on else "?"
    number = invoice.number or invoice.invoice_id
    return f"{number} overdue: {amount:,.2f} {invoice.currency}".rstrip() + f", due {due}"


def remind_owner(pair, invoice: KnownInvoice, today: dt.date, pipedrive) -> str:
    """Make sure the deal's owner has one activity for this overdue invoice and due date; returns
    "created", "found" (a killed worker's), "exists" or "no deal". Raises BudgetExhausted when the
    company's budget cannot pay for it (the pass is deferred)."""
    # The ledger keeps ids in lower case; links keep them as Xero sent them.
    link = RecordLink.objects.filter(
        pair=pair, xero_type="invoice", xero_id__iexact=invoice.invoice_id, pipedrive_type="deal",
        state=RecordLink.State.LINKED, pipedrive_id__isnull=False,
    ).first()  # fmt: skip
    if link is None or invoice.due_on is None:
        return "no deal"
    subject = reminder_subject(invoice)
    try:
        with transaction.atomic():
            reminder, created = OverdueReminder.objects.get_or_create(
                pair=pair,
                invoice_id=invoice.invoice_id,
                due_on=invoice.due_on,
                defaults={"subject": subject, "deal_id": linked_id(link.pipedrive_id)},
            )
    except IntegrityError:  # another worker claimed it at the same moment
        return "exists"
    if reminder.activity_id or reminder.done_at:
        return "exists"
    budget.check_budget(pair.pipedrive_connection.company_id, CREATE_COST, urgent=False)
    deal_id = linked_id(link.pipedrive_id)
    if not created:  # claimed earlier and no id stored: the activity may exist already
        found = next(
            (a for a in pipedrive.activities_for_deal(deal_id) if a.get("subject") == reminder.subject), None
        )
        if found is not None:
            OverdueReminder.objects.filter(pk=reminder.pk).update(activity_id=int(found["id"]))
            return "found"
    deal = pipedrive.get("deal", deal_id) or {}
    owner_id = deal.get("owner_id") or deal.get("user_id")
    if isinstance(owner_id, dict):  # v1 shape: the user object
        owner_id = owner_id.get("id")
    body: dict = {
        "subject": reminder.subject,
        "type": ACTIVITY_TYPE,
        "due_date": today.isoformat(),
        "deal_id": deal_id,
        "done": False,
    }
    if owner_id:
        body["owner_id"] = int(owner_id)
    if deal.get("org_id"):
        body["org_id"] = int(deal["org_id"])
    if deal.get("person_id"):
        body["participants"] = [{"person_id": int(deal["person_id"]), "primary": True}]
    activity = pipedrive.create_activity(body)
    OverdueReminder.objects.filter(pk=reminder.pk).update(
        activity_id=int(activity["id"]), owner_id=int(owner_id) if owner_id else None
    )
    logger.info("Overdue reminder %s for invoice %s (deal %s)", activity["id"], invoice.invoice_id, deal_id)
    return "created"


def settled_because(invoice: dict) -> str:
    """Why an invoice needs no reminder any more ("" when it still does)."""
    status = invoice.get("Status") or ""
    if status in SETTLED_STATUSES:
        return f"invoice {status.lower()}"
    due = money(invoice.get("AmountDue"))
    if due is not None and due <= 0:
        return "nothing left to pay"
    return ""


def close_reminders(pair, invoices: list[dict], pipedrive) -> int:
    """Mark done the open reminders of these Xero invoices that are settled or whose due date moved;
    returns how many. One query when there are none (the usual case); ``pipedrive`` is a callable
    giving the client (made only when a reminder is closed)."""
    by_id = {str(inv.get("InvoiceID") or "").lower(): inv for inv in invoices if inv.get("InvoiceID")}
    if not by_id:
        return 0
    open_rows = OverdueReminder.objects.filter(
        pair=pair, invoice_id__in=list(by_id), done_at__isnull=True, activity_id__isnull=False
    )
    closed = 0
    for reminder in open_rows:
        invoice = by_id[reminder.invoice_id]
        why = settled_because(invoice)
        if not why and xero_date(invoice.get("DueDate")) != reminder.due_on:
            why = "due date moved"
        if why and close_one(reminder, why, pipedrive):
            closed += 1
    return closed


def close_one(reminder: OverdueReminder, why: str, pipedrive) -> bool:
    """PATCH the activity done and record it; a failed call leaves it open (retried by the next pass)."""
    try:
        pipedrive().update_activity(reminder.activity_id, {"done": True})
    except ConnectorError as exc:
        logger.warning("Overdue reminder %s not marked done yet: %s", reminder.activity_id, exc)
        return False
    OverdueReminder.objects.filter(pk=reminder.pk).update(done_at=timezone.now(), closed_because=why)
    return True


def close_settled_from_ledger(pair, pipedrive) -> int:
    """The pass's sweep: open reminders whose invoice the ledger shows settled or re-dated (a close
    that failed during the sync that saw it). Database reads only when there are none."""
    closed = 0
    open_rows = list(
        OverdueReminder.objects.filter(pair=pair, done_at__isnull=True, activity_id__isnull=False)
    )
    if not open_rows:
        return 0
    known = {
        k.invoice_id: k
        for k in KnownInvoice.objects.filter(pair=pair, invoice_id__in=[r.invoice_id for r in open_rows])
    }
    for reminder in open_rows:
        invoice = known.get(reminder.invoice_id)
        if invoice is None:
            continue
        why = ""
        if invoice.status in SETTLED_STATUSES:
            why = f"invoice {invoice.status.lower()}"
        elif invoice.amount_due is not None and invoice.amount_due <= 0:
            why = "nothing left to pay"
        elif invoice.due_on != reminder.due_on:
            why = "due date moved"
        if why and close_one(reminder, why, pipedrive):
            closed += 1
    return closed
