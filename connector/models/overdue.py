"""The daily overdue pass: where each pair's pass stands, and the reminders it gave deal owners."""

from django.db import models

from connector.models.pairs import SyncPair


class OverduePassState(models.Model):
    """Where a pair's daily overdue pass stands: the organisation's local date of the last completed
    pass (the schedule starts at most one pass a local day, after the pair's set time) and what the
    last run did."""

    pair = models.OneToOneField(SyncPair, on_delete=models.CASCADE, related_name="overdue_pass")
    last_pass_on = models.DateField(
        null=True, blank=True, help_text="The Xero organisation's local date of the last completed pass."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last run stopped or waits (budget, limits).")

    class Meta:
        verbose_name = "overdue check"

    def __str__(self):
        return f"Overdue check of {self.pair}"


class OverdueReminder(models.Model):
    """One Pipedrive activity reminding a deal's owner that an invoice fell overdue (for one due date).

    The row is made (claimed) before the activity is created and the activity's id stored after, so a
    killed worker never makes a second one: a row without an id is looked for among the deal's
    activities before another is created. ``done_at`` is set when the activity is marked done (the
    invoice paid, voided or its amount due 0, or its due date moved: a new due date gets a new row).
    """

    pair = models.ForeignKey(SyncPair, on_delete=models.CASCADE, related_name="reminders_given")
    invoice_id = models.CharField(max_length=64, help_text="Xero InvoiceID (lower case).")
    due_on = models.DateField(help_text="The due date that passed.")
    subject = models.CharField(max_length=255, blank=True)
    deal_id = models.BigIntegerField(null=True, blank=True)
    owner_id = models.BigIntegerField(null=True, blank=True, help_text="The deal owner's Pipedrive user id.")
    activity_id = models.BigIntegerField(null=True, blank=True, help_text="The Pipedrive activity's id.")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    closed_because = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "overdue reminder"
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "invoice_id", "due_on"], name="overdue_reminder_once_per_due_date"
            )
        ]
        indexes = [models.Index(fields=["pair", "invoice_id"], name="overdue_reminder_by_invoice")]

    def __str__(self):
        return self.subject or f"Reminder for {self.invoice_id} due {self.due_on}"
