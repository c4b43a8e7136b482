"""The record of every sync (what came in, what was written, what came back), replays of failed
syncs, and the alerts raised about a pair's health."""

from django.conf import settings
from django.db import models


class SyncRecord(models.Model):
    """One record sync: a Xero record written to Pipedrive, or why it was not.

    The story of the sync: what caused it (trigger, inbox events, replay), the Xero record and the
    Pipedrive record it touched, the fields written (old → new where known; values follow
    ``AUDIT_PERSONAL_DATA``), and for a failure the error, the service's answer and a traceback.
    Records are never edited or deleted by a replay: a replay writes a new record linked to this one.
    """

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        UNCHANGED = "unchanged", "Unchanged (no write)"
        SKIPPED = "skipped", "Skipped"
        DEFERRED = "deferred", "Deferred (will be tried again)"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        WEBHOOK = "webhook", "Xero change (webhook)"
        REPLAY = "replay", "Replay"
        BACKFILL = "backfill", "Backfill"
        RECONCILIATION = "reconciliation", "Reconciliation"
        MANUAL = "manual", "Manual"
        CREDIT_RECHECK = "credit_recheck", "Credit re-check"

    pair = models.ForeignKey(
        "connector.SyncPair", on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_records"
    )
    direction = models.CharField(max_length=30, default="xero→pipedrive")
    # Not limited to the choices: a pass of its own (e.g. "overdue roll-over") may name its own kind.
    trigger = models.CharField(max_length=40, default="webhook", choices=Trigger.choices)
    trigger_text = models.CharField(
        "triggered by",
        max_length=255,
        blank=True,
        help_text='What started this sync in words, e.g. "credit limit changed by fiona".',
    )
    xero_type = models.CharField(max_length=20)
    xero_id = models.CharField(max_length=200)
    label = models.CharField(
        max_length=255,
        blank=True,
        help_text="The record's name as Pipedrive shows it: the customer's name, the invoice number with "
        "the customer, the payment with its invoice. Kept readable under every AUDIT_PERSONAL_DATA setting.",
    )
    customer_name = models.CharField(
        max_length=255, blank=True, help_text="The customer (Xero contact) the record belongs to."
    )
    contact_id = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="The Xero ContactID of that customer: the key of the customer's timeline.",
    )
    email_keys = models.TextField(
        blank=True,
        help_text="Keyed hashes (HMAC-SHA256) of the record's e-mail addresses, space-separated, so a "
        "search by an exact e-mail finds it without the address being stored.",
    )
    pipedrive_type = models.CharField(max_length=20, blank=True)
    pipedrive_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField("action", max_length=12, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    payload_size = models.PositiveIntegerField(default=0, help_text="Bytes of the payload written.")
    fields_mapped = models.JSONField(default=list, blank=True)
    fields_written = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"field", "source", "old", "new"}]: what was sent to Pipedrive, field by field.',
    )
    attempt = models.PositiveIntegerField(
        default=1, help_text="1 for the first try; more for retries and replays."
    )
    inbox_event_ids = models.JSONField(
        default=list, blank=True, help_text="The webhook events behind this sync."
    )
    replay_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replays"
    )
    replay_run = models.ForeignKey(
        "audit.ReplayRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="records"
    )
    error_class = models.CharField(max_length=100, blank=True)
    error_status = models.PositiveIntegerField(null=True, blank=True, help_text="The service's HTTP status.")
    error_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "sync record"
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["pair", "xero_type", "xero_id"], name="sync_record_by_xero"),
            models.Index(fields=["outcome", "finished_at"], name="sync_record_by_outcome"),
            models.Index(fields=["pipedrive_id"], name="sync_record_by_pipedrive"),
        ]
        permissions = [("replay_syncrecord", "Can replay sync records")]

    def __str__(self):
        subject = self.label or f"{self.xero_type} {self.xero_id}"
        return f"{subject}: {self.get_outcome_display()}"

    @property
    def trigger_description(self) -> str:
        """The trigger as finance reads it: the words recorded, else the trigger's name."""
        return self.trigger_text or self.get_trigger_display()

    @property
    def failed(self) -> bool:
        return self.outcome == self.Outcome.FAILED


class ReplayRun(models.Model):
    """A replay of many sync records in the background, with its progress.

    The records to replay are fixed when the run is made; ``position`` says how far it got, so a run
    stopped by a limit or a spent daily budget resumes where it stopped (at ``resumes_at``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for the API limits"
        DONE = "done", "Done"
        FAILED = "failed", "Stopped"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    record_ids = models.JSONField(default=list, help_text="The sync records to replay (one per Xero record).")
    total = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0, help_text="Records replayed so far.")
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    resumes_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "bulk replay"
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Replay of {self.total} record(s) ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        return round(100 * self.position / self.total) if self.total else 100


class Alert(models.Model):
    """One incident (a broken connection, a silent webhook source, a low budget, …) from when it was
    first seen until its cause is gone. One e-mail goes out when it opens; it is never re-sent."""

    class Kind(models.TextChoices):
        CONNECTION_BROKEN = "connection_broken", "Connection broken"
        WEBHOOKS_SILENT = "webhooks_silent", "Webhooks silent"
        BUDGET_LOW = "budget_low", "Pipedrive budget low"
        WORK_DEFERRED = "work_deferred", "Work deferred to tomorrow"
        FAILURES = "failures", "Sync failures"

    pair = models.ForeignKey(
        "connector.SyncPair", on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text="What the incident is about (pair, connection, source).")
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    recipients = models.TextField(blank=True)

    class Meta:
        verbose_name = "alert"
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(cleared_at__isnull=True), name="alert_one_open_per_key"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.message[:80]}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None
