"""Retention of sync records: old successful ones are deleted, failures kept longer.

Deletes go in small batches (ids first, then ``DELETE … WHERE id IN``), each its own short
transaction, so no table is locked for long and syncs keep writing meanwhile. The inbox's finished
events are pruned on the connector side (``connector.operations.retention``), with ``delete_in_batches``.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.models import SyncRecord

BATCH = 500


def setting_days(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def delete_in_batches(queryset, batch: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += queryset.model.objects.filter(id__in=ids).delete()[0]


def prune(now=None, batch: int = BATCH) -> dict:
    """Delete successful sync records older than ``AUDIT_KEEP_DAYS``, failed and deferred ones older
    than ``AUDIT_KEEP_FAILED_DAYS``."""
    now = now or timezone.now()
    problems = [SyncRecord.Outcome.FAILED, SyncRecord.Outcome.DEFERRED]
    ok_before = now - timedelta(days=setting_days("AUDIT_KEEP_DAYS", 90))
    failed_before = now - timedelta(days=setting_days("AUDIT_KEEP_FAILED_DAYS", 365))
    # A record replayed by a newer one keeps its story readable: its replays just lose the link.
    successes = SyncRecord.objects.filter(finished_at__lt=ok_before).exclude(outcome__in=problems)
    failures = SyncRecord.objects.filter(finished_at__lt=failed_before, outcome__in=problems)
    return {
        "sync_records": delete_in_batches(successes, batch),
        "failed_sync_records": delete_in_batches(failures, batch),
    }
