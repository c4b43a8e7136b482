"""Mapping rules finance staff edit in the admin, and the links between Xero and Pipedrive records.

Rows with no sync pair are the defaults (installed by a data migration): a pair uses its own
rows for a target when it has any, else the defaults.
"""

from django.db import models


class Target(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    PERSON = "person", "Person"
    DEAL = "deal", "Deal"


class Transform(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    MONEY = "money", "Money with currency"
    DATE = "date", "Date"
    LOOKUP = "lookup", "Lookup table"
    JOIN = "join", "Join"
    FIRST_NON_EMPTY = "first_non_empty", "First non-empty"


class FieldMapping(models.Model):
    """Which Xero field (a source path) feeds which Pipedrive field of an organization, person or deal."""

    pair = models.ForeignKey(
        "connector.SyncPair",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="field_mappings",
        help_text="Blank: a default used by every pair without rows of its own for this target.",
    )
    target = models.CharField(max_length=20, choices=Target.choices)
    source_path = models.CharField(
        max_length=255,
        help_text="Xero path, e.g. Name, EmailAddress, Addresses[STREET].City, "
        "Balances.AccountsReceivable.Overdue.",
    )
    pipedrive_field = models.CharField(
        max_length=100, help_text="Pipedrive field key: a standard field or a custom field's key."
    )
    pipedrive_field_name = models.CharField(max_length=255, blank=True, help_text="The field's name.")
    transform = models.CharField(max_length=20, choices=Transform.choices, default=Transform.TEXT)
    transform_options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "field mapping"
        ordering = ["pair_id", "target", "order", "id"]

    def __str__(self):
        field = self.pipedrive_field_name or self.pipedrive_field
        return f"{self.get_target_display()}: {self.source_path} → {field}"


class StageMapping(models.Model):
    """Which invoice status, payment state or due state (Overdue) puts the deal in which pipeline stage
    (and deal status). The Overdue rule wins for an AUTHORISED invoice with an amount due whose due date
    is before the Xero organisation's today; without one such an invoice follows the other rules."""

    class Kind(models.TextChoices):
        INVOICE_STATUS = "invoice_status", "Invoice status"
        PAYMENT_STATE = "payment_state", "Payment state"
        DUE_STATE = "due_state", "Due state (overdue)"

    class DealStatus(models.TextChoices):
        UNCHANGED = "", "(leave as is)"
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    pair = models.ForeignKey(
        "connector.SyncPair",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="stage_mappings",
        help_text="Blank: a default used by every pair without rows of its own.",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    xero_value = models.CharField(
        max_length=20,
        help_text="DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED, DELETED; or PART_PAID, PAID; or OVERDUE.",
    )
    pipeline_id = models.BigIntegerField(null=True, blank=True)
    pipeline_name = models.CharField(max_length=255, blank=True)
    stage_id = models.BigIntegerField(null=True, blank=True)
    stage_name = models.CharField(
        max_length=255, blank=True, help_text="Used to find the stage when no stage id is set."
    )
    deal_status = models.CharField(max_length=10, choices=DealStatus.choices, blank=True, default="")
    lost_reason = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "stage mapping"
        ordering = ["pair_id", "kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "kind", "xero_value"],
                condition=models.Q(pair__isnull=False),
                name="stage_mapping_unique_per_pair",
            ),
            models.UniqueConstraint(
                fields=["kind", "xero_value"],
                condition=models.Q(pair__isnull=True),
                name="stage_mapping_unique_default",
            ),
        ]

    def __str__(self):
        stage = self.stage_name or self.stage_id
        return f"{self.xero_value} → {self.pipeline_name or self.pipeline_id} / {stage}"


class CreditLimit(models.Model):
    """A credit limit kept by the connector (Xero's API has none): per contact, per contact group,
    or the pair's default (neither set)."""

    pair = models.ForeignKey("connector.SyncPair", on_delete=models.CASCADE, related_name="credit_limits")
    contact_id = models.CharField(max_length=64, blank=True, help_text="Xero ContactID.")
    contact_name = models.CharField(max_length=255, blank=True)
    contact_group = models.CharField(max_length=255, blank=True, help_text="Xero contact group name.")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        verbose_name = "credit limit"

    def __str__(self):
        who = (
            self.contact_name
            or self.contact_id
            or (f"group {self.contact_group}" if self.contact_group else "default")
        )
        return f"{who}: {self.amount} {self.currency}".strip()


class RecordLink(models.Model):
    """A Xero record ↔ the Pipedrive record made from it, with the hash of the last payload written."""

    class XeroType(models.TextChoices):
        CONTACT = "contact", "Contact"
        CONTACT_PERSON = "contact_person", "Contact person"
        INVOICE = "invoice", "Invoice"
        PAYMENT = "payment", "Payment"

    class PipedriveType(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        PERSON = "person", "Person"
        DEAL = "deal", "Deal"
        NOTE = "note", "Note"

    class State(models.TextChoices):
        LINKED = "linked", "Linked"
        DELETED = "deleted", "Deleted in Pipedrive"
        # A create was sent and its answer not yet seen (lost, or the worker died): the next sync looks
        # for the record it may have made before creating one.
        CREATING = "creating", "Being created in Pipedrive"

    pair = models.ForeignKey("connector.SyncPair", on_delete=models.CASCADE, related_name="record_links")
    xero_type = models.CharField(max_length=20, choices=XeroType.choices)
    xero_id = models.CharField(max_length=200, help_text="Xero id (a contact person: ContactID + key).")
    pipedrive_type = models.CharField(max_length=20, choices=PipedriveType.choices)
    pipedrive_id = models.BigIntegerField(null=True, blank=True)
    payload_hash = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.LINKED)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "record link"
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "xero_type", "xero_id", "pipedrive_type"], name="record_link_unique"
            )
        ]
        indexes = [models.Index(fields=["pair", "pipedrive_type", "pipedrive_id"], name="record_link_by_pd")]

    def __str__(self):
        return f"{self.xero_type} {self.xero_id} ↔ {self.pipedrive_type} {self.pipedrive_id}"
