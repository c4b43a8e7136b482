"""The record of every sync: what was synced, when, how much, and with what outcome."""

from django.db import models


class SyncRecord(models.Model):
    """One record sync (a Xero record written to Pipedrive, or the reason it was not)."""

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        UNCHANGED = "unchanged", "Unchanged (no write)"
        SKIPPED = "skipped", "Skipped"
        DEFERRED = "deferred", "Deferred"
        FAILED = "failed", "Failed"

    pair = models.ForeignKey(
        "connector.SyncPair", on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_records"
    )
    direction = models.CharField(max_length=30, default="xero→pipedrive")
    trigger = models.CharField(
        max_length=20, default="webhook", help_text="webhook, backfill, replay, manual."
    )
    xero_type = models.CharField(max_length=20)
    xero_id = models.CharField(max_length=200)
    pipedrive_type = models.CharField(max_length=20, blank=True)
    pipedrive_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    payload_size = models.PositiveIntegerField(default=0, help_text="Bytes of the payload written.")
    fields_mapped = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sync record"
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["pair", "xero_type", "xero_id"], name="sync_record_by_xero")]

    def __str__(self):
        return f"{self.xero_type} {self.xero_id}: {self.get_outcome_display()}"
