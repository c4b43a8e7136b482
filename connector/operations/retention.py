"""Retention of the history: audit's sync records (``audit.retention``) and the inbox's finished
events (done or ignored, older than ``INBOX_KEEP_DAYS``), in small batches."""

from datetime import timedelta

from django.utils import timezone

from audit import retention as audit_retention
from connector.models import WebhookEvent


def prune_inbox(now=None, batch: int = audit_retention.BATCH) -> int:
    """Delete done and ignored inbox events older than ``INBOX_KEEP_DAYS``; pending and failed stay."""
    now = now or timezone.now()
    before = now - timedelta(days=audit_retention.setting_days("INBOX_KEEP_DAYS", 30))
    finished = WebhookEvent.objects.filter(
        status__in=[WebhookEvent.Status.DONE, WebhookEvent.Status.IGNORED], received_at__lt=before
    )
    return audit_retention.delete_in_batches(finished, batch)


def prune(now=None, batch: int = audit_retention.BATCH) -> dict:
    """Both: the sync records audit keeps no longer, and the finished inbox events."""
    now = now or timezone.now()
    return {**audit_retention.prune(now=now, batch=batch), "inbox_events": prune_inbox(now=now, batch=batch)}
