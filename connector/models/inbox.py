"""The webhook inbox: every received event, stored before it is processed."""

from django.db import models

from connector.models.pairs import SyncPair


class WebhookEvent(models.Model):
    """One event received by a webhook receiver, stored before anything else happens (the inbox).

    The unique key makes a redelivered event a no-op. The drain claims pending rows, syncs
    the record as it is now (latest state wins) and marks each row done, failed or ignored
    with the reason.
    """

    class Source(models.TextChoices):
        XERO = "xero", "Xero"
        PIPEDRIVE = "pipedrive", "Pipedrive"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    pair = models.ForeignKey(SyncPair, on_delete=models.CASCADE, related_name="webhook_events")
    source = models.CharField(max_length=10, choices=Source.choices)
    tenant_id = models.CharField(max_length=64, help_text="Xero tenantId, or the Pipedrive company id.")
    category = models.CharField(
        max_length=40, help_text="Xero eventCategory (CONTACT, INVOICE, ...) or Pipedrive entity."
    )
    resource_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=40, help_text="CREATE/UPDATE/DELETE, or Pipedrive's action.")
    event_time = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True, help_text="Why the event failed or was ignored.")
    payload = models.JSONField(default=dict, blank=True, help_text="The event as received.")
    attempts = models.PositiveIntegerField(default=0)
    lost_claims = models.PositiveIntegerField(
        default=0,
        help_text=(
            "How often the worker holding this event was lost (crashed, killed or timed out) before it "
            "finished; past INBOX_MAX_LOST_CLAIMS the event is given up so it cannot stop workers forever."
        ),
    )
    received_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(
        max_length=32, blank=True, help_text="Which drain run holds the row while it is processing."
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "webhook event"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "source", "tenant_id", "category", "resource_id", "event_type", "event_time"],
                name="webhook_event_unique",
            )
        ]
        indexes = [
            models.Index(fields=["pair", "status", "received_at"], name="webhook_event_pending"),
            models.Index(fields=["status", "received_at"], name="webhook_event_status"),
        ]

    def __str__(self):
        return f"{self.source} {self.category} {self.event_type} {self.resource_id}"
