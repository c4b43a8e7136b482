"""API limits shared by every worker (rate windows, concurrency slots) and work deferred to a budget reset."""

from django.db import models


class ApiRateWindow(models.Model):
    """Units spent in one fixed window (minute, day, burst, daily tokens) of a scope, for all workers."""

    service = models.CharField(max_length=20)
    scope = models.CharField(max_length=120, help_text="Xero tenant id or Pipedrive company/token.")
    kind = models.CharField(max_length=30)
    window_start = models.BigIntegerField(help_text="Window number: epoch seconds // window length.")
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "scope", "kind", "window_start"], name="api_window_unique"
            )
        ]

    def __str__(self):
        return f"{self.service} {self.scope} {self.kind}: {self.used}"


class ApiSlot(models.Model):
    """One of the N concurrent-call slots of a scope; a lease (``expires_at``) frees it if a worker dies."""

    service = models.CharField(max_length=20)
    scope = models.CharField(max_length=120)
    number = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "scope", "number"], name="api_slot_unique")]

    def __str__(self):
        return f"{self.service} {self.scope} slot {self.number}"


class DeferredJob(models.Model):
    """Non-urgent work (backfill, reconciliation) put off until a spent daily budget resets."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for the budget reset"
        DONE = "done", "Re-run"
        FAILED = "failed", "Failed when re-run"

    service = models.CharField(max_length=20, default="pipedrive")
    scope = models.CharField(max_length=120, help_text="The company (or tenant) whose budget is spent.")
    job_name = models.CharField(max_length=200)
    func = models.CharField(max_length=300, help_text="Dotted path of the function to re-run.")
    args = models.JSONField(default=list, blank=True)
    run_after = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_after"]

    def __str__(self):
        return f"{self.job_name} ({self.get_status_display()})"
