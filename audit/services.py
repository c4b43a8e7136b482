"""Writing sync records: one row per record sync, called by the sync services."""

import json

from django.utils import timezone

from audit.models import SyncRecord


def payload_size(payload) -> int:
    """Bytes of ``payload`` as sent (compact JSON)."""
    if payload is None:
        return 0
    return len(json.dumps(payload, separators=(",", ":"), default=str).encode())


def record_sync(*, pair, xero_type, xero_id, outcome, started_at=None, payload=None, **fields) -> SyncRecord:
    """Store one record sync. ``payload`` gives the size only: payloads are never stored whole here."""
    return SyncRecord.objects.create(
        pair=pair,
        xero_type=xero_type,
        xero_id=str(xero_id),
        outcome=outcome,
        started_at=started_at or timezone.now(),
        payload_size=payload_size(payload),
        **fields,
    )
