"""Backfill runs (with the ambiguities their preview found) and where each pair's reconciliation stands."""

from django.db import models

from connector.models.pairs import SyncPair


class BackfillRun(models.Model):
    """One backfill of a sync pair: Xero's existing contacts, invoices and payments brought across.

    A run is first previewed (a dry run: what would be created, matched or is ambiguous, and the
    estimated cost), then confirmed and run. Where it stands (phase, Xero page, position in the page)
    is stored after every chunk of records, so a killed worker resumes there. ``state_message`` and
    ``resume_at`` say why a run waits (a spent daily limit) and until when; the health page reads them.
    """

    class Status(models.TextChoices):
        PREVIEWING = "previewing", "Preview being prepared"
        PREVIEWED = "previewed", "Preview ready: waiting for confirmation"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        WAITING = "waiting", "Waiting for a limit to reset"
        DONE = "done", "Finished"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        CONTACTS = "contacts", "Contacts"
        INVOICES = "invoices", "Invoices"
        PAYMENTS = "payments", "Payments"
        CATCH_UP = "catch_up", "Changes made during the backfill"
        FINISHED = "finished", "Finished"

    ACTIVE = ("previewing", "previewed", "queued", "running", "paused", "waiting")

    pair = models.ForeignKey(SyncPair, on_delete=models.CASCADE, related_name="backfills")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PREVIEWING)
    since = models.DateField(null=True, blank=True, help_text="Only invoices and payments dated on or after.")
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.CONTACTS)
    page = models.PositiveIntegerField(default=1, help_text="The Xero page being worked through.")
    position = models.PositiveIntegerField(default=0, help_text="Records of that page already done.")
    counts = models.JSONField(default=dict, blank=True, help_text="Per phase: done, total and outcomes.")
    plan = models.JSONField(default=dict, blank=True, help_text="The dry run's figures and estimates.")
    xero_calls = models.PositiveIntegerField(default=0)
    pipedrive_calls = models.PositiveIntegerField(default=0)
    pipedrive_tokens = models.PositiveIntegerField(default=0)
    created_records = models.JSONField(
        default=dict, blank=True, help_text="Pipedrive records created, by kind."
    )
    errors = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    state_message = models.TextField(blank=True, help_text="Why the run waits or stopped, in plain words.")
    resume_at = models.DateTimeField(null=True, blank=True, help_text="When a waiting run starts again.")
    worker = models.CharField(max_length=32, blank=True, help_text="Token of the worker holding the run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0, help_text="Time spent running (for the rate).")
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Never two backfills of one pair at once, whatever the workers do.
            models.UniqueConstraint(
                fields=["pair"],
                condition=models.Q(
                    status__in=["previewing", "previewed", "queued", "running", "paused", "waiting"]
                ),
                name="backfill_one_active_run_per_pair",
            )
        ]

    def __str__(self):
        return f"Backfill of {self.pair} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class BackfillAmbiguity(models.Model):
    """A Xero contact the preview found several Pipedrive organizations for (same normalized name).

    The admin picks one (``choice`` = its id) or "create new" (``choice`` = "new") before the run;
    left open, the run takes the oldest, as the live sync does.
    """

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="ambiguities")
    contact_id = models.CharField(max_length=64)
    contact_name = models.CharField(max_length=255, blank=True)
    candidates = models.JSONField(default=list, help_text="[{id, name}] oldest first.")
    choice = models.CharField(max_length=20, blank=True, help_text='An organization id, or "new".')

    class Meta:
        verbose_name_plural = "backfill ambiguities"
        constraints = [
            models.UniqueConstraint(fields=["run", "contact_id"], name="backfill_ambiguity_unique")
        ]

    def __str__(self):
        return f"{self.contact_name} ({len(self.candidates)} candidates)"


class ReconciliationState(models.Model):
    """Where a pair's reconciliation stands: the start of the last successful pass (the next asks Xero
    for records modified since then, minus an overlap) and what the last pass did."""

    pair = models.OneToOneField(SyncPair, on_delete=models.CASCADE, related_name="reconciliation")
    last_success_started_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self):
        return f"Reconciliation of {self.pair}"
