"""Sync pairs: joining a Xero and a Pipedrive connection, the Xero webhook key, and a first load.

What an admin does after connecting both sides, as services the admin, the setup pages and the
sandbox's demo command share. The Pipedrive half of the setup lives beside its API calls
(``pipedrive_setup.create_invoice_pipeline``, ``pipedrive_webhooks.register_pipedrive_webhooks``).
"""

import logging
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from connector.connections.services import xero_client
from connector.errors import ConnectorError
from connector.intake import inbox
from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection

logger = logging.getLogger(__name__)

XERO_PAGE = 100  # Xero's page size for contacts, invoices and payments


def xero_webhook_url(pair: SyncPair) -> str:
    """The pair's Xero receiver, as the outside world reaches it (paste it into Xero's portal)."""
    return settings.PUBLIC_BASE_URL + reverse("webhooks:xero", args=[pair.key])


def create_pair(name: str, xero: XeroConnection, pipedrive: PipedriveConnection) -> SyncPair:
    """A new, enabled pair between two active connections. Raises ConnectorError, storing nothing,
    when a connection is not active or the two are already paired."""
    for connection in (xero, pipedrive):
        if connection.status != ConnectionStatus.ACTIVE:
            raise ConnectorError(
                f"{connection._meta.verbose_name} {connection} is {connection.get_status_display().lower()}: "
                "reconnect it before pairing."
            )
    pair = SyncPair(name=name.strip(), xero_connection=xero, pipedrive_connection=pipedrive)
    try:
        pair.full_clean()
    except ValidationError as exc:
        raise ConnectorError("; ".join(exc.messages)) from exc
    pair.save()
    logger.info("Created sync pair %s (Xero %s, Pipedrive %s)", pair, xero, pipedrive)
    return pair


def set_xero_webhook_key(pair: SyncPair, key: str) -> None:
    """Store the signing key Xero's portal shows for the pair's webhook (encrypted at rest)."""
    key = key.strip()
    if not key:
        raise ConnectorError("The Xero webhook key is empty: copy it from the webhook's page in Xero.")
    pair.xero_webhook_key = key
    pair.secrets_set_at = timezone.now()
    pair.save(update_fields=["xero_webhook_key", "secrets_set_at", "updated_at"])


def _pages(fetch) -> Iterator[dict]:
    page = 1
    while True:
        rows = fetch(page) or []
        yield from rows
        if len(rows) < XERO_PAGE:
            return
        page += 1


def queue_initial_load(pair: SyncPair) -> int:
    """Queue every contact, sales invoice and payment Xero has now as received events of the pair,
    so the drain syncs them in its usual order (contacts first). Returns how many were queued.

    Reads ids only (a page of 100 a call); the sync fetches each record as usual, so a record
    queued twice is synced once its payload is unchanged.
    """
    receiver = inbox.find_pair(pair.key, "xero")
    if receiver is None:
        raise ConnectorError(f"Sync pair {pair} is disabled: enable it before loading.")
    client = xero_client(pair.xero_connection)
    now = timezone.now()
    records = [("CONTACT", c["ContactID"]) for c in _pages(lambda n: client.get_contacts(page=n))]
    records += [
        ("INVOICE", i["InvoiceID"])
        for i in _pages(lambda n: client.get_invoices(page=n))
        if i.get("Type") == "ACCREC"  # bills are not synced
    ]
    records += [("PAYMENT", p["PaymentID"]) for p in _pages(lambda n: client.get_payments(page=n))]
    events = [
        inbox.XeroEvent(
            tenant_id=receiver.xero_tenant_id,
            category=category,
            resource_id=str(resource_id),
            event_type="CREATE",
            event_time=now,
            raw={"initial_load": now.isoformat()},
        )
        for category, resource_id in records
    ]
    inbox.store_xero_batch(receiver, events)  # one transaction; a drain is asked for after it
    logger.info("Initial load of sync pair %s: %s records queued", pair, len(events))
    return len(events)
