"""Outgoing webhooks of the emulators: a durable outbox, signed or authenticated per service.

INTERFACE (stable; the Xero and Pipedrive emulators call these):

- ``emit_xero_event(tenant_id, category, event_type, resource_id, event_date=None)``:
  a write in sandbox Xero happened; queue it for every subscription of that tenant's
  app (batched, signed with x-xero-signature).
- ``queue_delivery(service, url, body, headers)``: generic outbox entry (Pipedrive
  builds its own v1/v2 bodies and Basic-auth header and calls this).
- ``deliver_pending(limit=100) -> int``: send what is due now; returns how many were sent.

Implementation: to be filled in (see the webhooks work item).
"""

import datetime as dt


def emit_xero_event(
    tenant_id: str, category: str, event_type: str, resource_id: str, event_date: dt.datetime | None = None
) -> None:
    return None


def queue_delivery(service: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    return None


def deliver_pending(limit: int = 100) -> int:
    return 0
