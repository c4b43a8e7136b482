"""The "modified since" window shared by backfill and reconciliation.

Both page through Xero and sync a chunk under the pair's drain lock; a record whose webhook arrived
after the page was fetched is left to the drain, which syncs it as Xero has it now (newer than the
page). Kept here so neither module reaches into the other (no import cycle).
"""

from __future__ import annotations

from connector.models import WebhookEvent


def record_id(record: dict) -> str:
    """The Xero id of a contact, invoice or payment record ("" when it has none)."""
    return str(record.get("ContactID") or record.get("InvoiceID") or record.get("PaymentID") or "")


def received_since(pair, category: str, records: list[dict], fetched_at) -> set[str]:
    """Ids (lower case) of these records whose webhook arrived after the page was fetched."""
    ids = [record_id(r) for r in records]
    # Xero sends ids in either case; the inbox stores them as received.
    variants = ids + [i.lower() for i in ids] + [i.upper() for i in ids]
    rows = WebhookEvent.objects.filter(
        pair=pair,
        source=WebhookEvent.Source.XERO,
        category=category,
        resource_id__in=variants,
        received_at__gte=fetched_at,
    )
    return {r.lower() for r in rows.values_list("resource_id", flat=True)}
