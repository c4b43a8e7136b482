"""Payments → the invoice's deal moves stage, and a note on the deal records each payment.

Xero's Payments endpoint has no ``IDs`` parameter: payments are fetched with a ``where`` of OR-ed
``PaymentID==Guid("…")`` (OR-optimised in Xero), 25 per call to keep the URL short. Their invoices
are then re-synced as Xero has them now (one ``InvoiceRun``): AmountPaid/AmountDue/Status give the
payment state and the stage table the stage, so a deleted payment moves the deal back by the same
rule. Each payment adds one note (link payment ↔ note); a deleted payment adds one more saying so.
"""

import html
import logging
import re

from django.utils import timezone

from connector.errors import ConnectorError
from connector.options import pair_options
from connector.sync import credit
from connector.sync.common import (
    RETRY_ERRORS,
    Outcomes,
    RecordOutcome,
    audit,
    get_link,
    linked_id,
    live_link,
    mark_creating,
    record_lock,
    retry_outcome,
    save_link,
)
from connector.sync.invoices import InvoiceRun, chunks, is_xero_id
from connector.sync.pipedrive_index import BATCH_ERRORS
from mapping.engine import parse_xero_date
from mapping.models import RecordLink

logger = logging.getLogger(__name__)

WHERE_BATCH = 25  # ~60 characters per Guid clause: 25 keep the URL near 2 kB
SALES_PAYMENT = "ACCRECPAYMENT"
DELETED_SUFFIX = ":deleted"  # the link of the "payment removed" note: PaymentID + this


def payment_where(payment_ids: list[str]) -> str:
    return " OR ".join(f'PaymentID==Guid("{pid}")' for pid in payment_ids)


def _money(amount) -> str:
    try:
        return f"{float(amount):,.2f}"
    except (TypeError, ValueError):
        return str(amount)


def note_content(payment: dict, removed: bool = False) -> str:
    """The note's HTML: amount with currency, date and reference (Pipedrive sanitises it too)."""
    invoice = payment.get("Invoice") or {}
    currency = invoice.get("CurrencyCode") or ""
    when = parse_xero_date(payment.get("Date"))
    day = (when.date() if hasattr(when, "date") else when).isoformat() if when else "unknown date"
    amount = f"{currency} {_money(payment.get('Amount'))}".strip()
    reference = payment.get("Reference") or ""
    number = invoice.get("InvoiceNumber") or invoice.get("InvoiceID") or ""
    if removed:
        text = f"Xero payment removed: {amount} of {day} on invoice {number} was deleted in Xero."
    else:
        text = f"Xero payment received: {amount} on {day} for invoice {number}."
    if reference:
        text += f" Reference: {reference}."
    return f"<p>{html.escape(text)}</p>"


class PaymentRun:
    """One payments sync: fetch, re-sync the invoices (stages, balances), then one note per payment."""

    def __init__(self, pair, trigger: str):
        self.pair = pair
        self.trigger = trigger
        self.create_notes = pair_options(pair).create_notes
        self.invoices = InvoiceRun(pair, trigger)

    def fetch(self, payment_ids: list[str]) -> list[dict]:
        payments = []
        for chunk in chunks(payment_ids, WHERE_BATCH):
            payments += self.invoices.xero.get_payments(where=payment_where(chunk))
        return payments

    def sync(self, payment_ids: list[str], on_outcome=None) -> dict[str, RecordOutcome]:
        outcomes = Outcomes(on_outcome)
        wanted = []
        for payment_id in dict.fromkeys(str(p).strip() for p in payment_ids):
            if is_xero_id(payment_id):
                wanted.append(payment_id)
            else:  # Xero would refuse the whole where clause for it
                outcomes[payment_id] = self._ignored(payment_id, "Not a Xero PaymentID.")
        fetched = {str(p["PaymentID"]).lower(): p for p in self.fetch(wanted)}
        payments = {}
        for payment_id in wanted:
            if payment_id.lower() in fetched:
                payments[payment_id] = fetched[payment_id.lower()]
            else:
                outcomes[payment_id] = self._ignored(payment_id, "Xero has no such payment.")
        sales = {}
        for payment_id, payment in payments.items():
            if payment.get("PaymentType", SALES_PAYMENT) != SALES_PAYMENT or not (
                (payment.get("Invoice") or {}).get("InvoiceID")
            ):
                kind = payment.get("PaymentType") or "not on an invoice"
                outcomes[payment_id] = self._ignored(
                    payment_id, f"Only payments of sales invoices (ACCRECPAYMENT) are synced; this is {kind}."
                )
            else:
                sales[payment_id] = payment
        invoice_ids = list(dict.fromkeys(str(p["Invoice"]["InvoiceID"]) for p in sales.values()))
        invoice_outcomes = self.invoices.sync_ids(invoice_ids) if invoice_ids else {}
        for payment_id, payment in sales.items():
            invoice_outcome = invoice_outcomes.get(str(payment["Invoice"]["InvoiceID"]))
            outcomes[payment_id] = self.sync_one(payment, invoice_outcome)
        return outcomes

    def _ignored(self, payment_id: str, reason: str) -> RecordOutcome:
        self._audit(payment_id, action="skipped", started_at=timezone.now(), reason=reason)
        return RecordOutcome("ignored", reason, action="skipped")

    def sync_one(self, payment: dict, invoice_outcome: RecordOutcome | None) -> RecordOutcome:
        payment_id = str(payment["PaymentID"])
        started = timezone.now()
        self._source = payment  # the Xero record every audit row of this sync names
        try:
            return self._sync_one(payment, invoice_outcome, started)
        except BATCH_ERRORS:
            raise
        except Exception as error:  # one bad payment fails alone; the batch goes on
            reason = f"{type(error).__name__}: {error}"[:1000]
            logger.exception("Payment %s not synced: %s", payment_id, reason)
            self._audit(payment_id, action="failed", started_at=started, pipedrive_type="note", reason=reason)
            return RecordOutcome("failed", reason)

    def _sync_one(self, payment: dict, invoice_outcome: RecordOutcome | None, started) -> RecordOutcome:
        payment_id = str(payment["PaymentID"])
        invoice_id = str(payment["Invoice"]["InvoiceID"])
        with record_lock(self.pair, "payment", payment_id):
            deal_link = live_link(self.pair, "invoice", invoice_id, "deal")
            if deal_link is None:
                why = (
                    invoice_outcome.reason if invoice_outcome and invoice_outcome.reason else "it has no deal"
                )
                reason = f"The payment's invoice {invoice_id} could not be synced: {why}"
                transient = invoice_outcome is not None and invoice_outcome.status == "retry"
                self._audit(
                    payment_id,
                    action="deferred" if transient else "failed",
                    started_at=started,
                    pipedrive_type="note",
                    reason=reason,
                )
                return retry_outcome(reason) if transient else RecordOutcome("failed", reason)
            deal_id = linked_id(deal_link.pipedrive_id)
            if not self.create_notes:
                reason = "Notes are off for this sync pair; the deal's stage follows the invoice."
                return self._skipped(payment_id, deal_id, started, reason)
            try:
                return self._notes(payment, deal_id, started)
            except BATCH_ERRORS:
                raise
            except RETRY_ERRORS as error:
                reason = f"The note for the payment could not be added to deal {deal_id} yet: {error}"
                self._audit(
                    payment_id, action="deferred", started_at=started, pipedrive_type="note", reason=reason
                )
                return retry_outcome(reason, pipedrive_id=deal_id)
            except ConnectorError as error:
                reason = f"The note for the payment could not be added to deal {deal_id}: {error}"
                self._audit(
                    payment_id, action="failed", started_at=started, pipedrive_type="note", reason=reason
                )
                return RecordOutcome("failed", reason)

    def find_created_note(self, deal_id: int, content: str) -> dict | None:
        """The note an earlier add whose answer was lost may have made: the deal's notes (v1
        ``GET /notes?deal_id=``, only in this rare case) with the same text, not linked to another payment."""
        wanted = _text(content)
        client = self.invoices.pipedrive
        start = 0
        while True:
            body = client.call(
                "v1", "GET", "/notes", params={"deal_id": deal_id, "start": start, "limit": 500}
            )
            for note in body.get("data") or []:
                if note.get("id") and _text(note.get("content")) == wanted:
                    linked = RecordLink.objects.filter(
                        pair=self.pair, pipedrive_type="note", pipedrive_id=int(note["id"])
                    ).exists()
                    if not linked:
                        return note
            pagination = (body.get("additional_data") or {}).get("pagination") or {}
            if not pagination.get("more_items_in_collection"):
                return None
            start = pagination.get("next_start") or start + 500

    def _skipped(self, payment_id: str, deal_id: int, started, reason: str) -> RecordOutcome:
        """Nothing to write for this payment: audited as skipped, with why."""
        self._audit(payment_id, action="skipped", started_at=started, pipedrive_type="deal",
                    pipedrive_id=deal_id, reason=reason)  # fmt: skip
        return RecordOutcome("done", reason, pipedrive_id=deal_id, action="skipped")

    def _audit(self, payment_id: str, **fields):
        """The audit row of one payment sync."""
        source = getattr(self, "_source", None)
        if source is not None and str(source.get("PaymentID")) != str(payment_id):
            source = None
        audit(self.pair, "payment", payment_id, trigger=self.trigger, source=source, **fields)

    def _notes(self, payment: dict, deal_id: int, started) -> RecordOutcome:
        """The payment's note, once; for a deleted payment that was noted, a "removed" note, once."""
        payment_id = str(payment["PaymentID"])
        deleted = payment.get("Status") == "DELETED"
        noted = get_link(self.pair, "payment", payment_id, "note")
        if deleted:
            if noted is None:
                reason = "The payment was deleted in Xero before it was noted on the deal: no note."
                return self._skipped(payment_id, deal_id, started, reason)
            key = payment_id + DELETED_SUFFIX
        else:
            key = payment_id
        link = get_link(self.pair, "payment", key, "note")
        creating = link is not None and link.state == RecordLink.State.CREATING
        if link is not None and not creating:
            self._audit(
                payment_id,
                action="unchanged",
                started_at=started,
                pipedrive_type="note",
                pipedrive_id=link.pipedrive_id,
            )
            return RecordOutcome("done", pipedrive_id=link.pipedrive_id, action="unchanged")
        content = note_content(payment, removed=deleted)
        note = self.find_created_note(deal_id, content) if creating else None
        if note is None:
            mark_creating(self.pair, "payment", key, "note")
            note = self.invoices.pipedrive.add_note(content, deal_id=deal_id)
        save_link(self.pair, "payment", key, "note", int(note["id"]))
        self._audit(
            payment_id,
            action="created",
            started_at=started,
            pipedrive_type="note",
            pipedrive_id=int(note["id"]),
            payload={"content": content, "deal_id": deal_id},
            reason="Payment removed" if deleted else "",
        )
        return RecordOutcome("done", pipedrive_id=int(note["id"]), action="created")


def _text(content: str) -> str:
    """A note's text without markup or spacing differences (Pipedrive sanitises the HTML it stores)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content or "")).split())


def sync_payments(
    pair, ids: list[str], *, trigger: str = "webhook", on_outcome=None
) -> dict[str, RecordOutcome]:
    """Sync these Xero payments as Xero has them now; ``{PaymentID: RecordOutcome}``."""
    with credit.recheck_reason("credit re-check after a payment"):
        return PaymentRun(pair, trigger).sync(ids, on_outcome=on_outcome)
