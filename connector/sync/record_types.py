"""The one registry of Xero record types the connector syncs: every table that lists them reads it.

For each type: the webhook's ``eventCategory``, the Accounting API collection it is read from (and
its id field, the list order that keeps a record's place while pages are read), the filter that
keeps to sales records, the sync function, the ``xero_type`` its sync records and links carry, and
whether backfill and reconciliation walk it. The tuple's order is the order in which they run:
contacts before the invoices that name them, invoices before the payments that pay them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connector.sync import contacts, credit_notes, invoices, payments


@dataclass(frozen=True)
class XeroRecordType:
    """One synced Xero record type."""

    category: str  # the webhook's eventCategory and the inbox row's category
    resource: str  # the Accounting API collection: GET /Contacts, /Invoices, ...
    id_field: str
    audit_label: str  # SyncRecord.xero_type / RecordLink.xero_type
    sync: Callable
    sales_filter: str | None = None  # the `where` that keeps to sales records
    backfill: bool = True
    reconcile: bool = True


RECORD_TYPES: tuple[XeroRecordType, ...] = (
    XeroRecordType("CONTACT", "Contacts", "ContactID", "contact", contacts.sync_contacts),
    XeroRecordType(
        "INVOICE", "Invoices", "InvoiceID", "invoice", invoices.sync_invoices, f'Type=="{invoices.SALES}"'
    ),
    XeroRecordType(
        "PAYMENT",
        "Payments",
        "PaymentID",
        "payment",
        payments.sync_payments,
        f'PaymentType=="{payments.SALES_PAYMENT}"',
    ),
    # Credit notes arrive by webhook only: they change an invoice's amount due, which the invoice's
    # own sync reads, so backfill and reconciliation reach them through their invoices.
    XeroRecordType(
        "CREDITNOTE",
        "CreditNotes",
        "CreditNoteID",
        "credit_note",
        credit_notes.sync_credit_notes,
        backfill=False,
        reconcile=False,
    ),
)

BY_CATEGORY = {t.category: t for t in RECORD_TYPES}
BY_RESOURCE = {t.resource: t for t in RECORD_TYPES}
SYNCED_CATEGORIES = tuple(BY_CATEGORY)
BACKFILL_TYPES = tuple(t for t in RECORD_TYPES if t.backfill)
RECONCILED_TYPES = tuple(t for t in RECORD_TYPES if t.reconcile)
