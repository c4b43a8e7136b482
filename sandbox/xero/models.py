"""Records of the emulated Xero: apps, organisations, consents, tokens and accounting data.

Nothing here is a real credential: client secrets and tokens are the fake service's own
values, stored plainly so tests and demos can read them.
"""

import datetime as dt
import uuid
from decimal import Decimal

from django.db import models

from connector.connections.timezones import zone
from sandbox import clock


class XeroApp(models.Model):
    """An app registered in the (fake) Xero developer portal, with its rate limits."""

    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=64, unique=True)
    client_secret = models.CharField(max_length=128)
    redirect_uris = models.TextField(blank=True, help_text="One allowed redirect URI per line.")
    minute_limit = models.PositiveIntegerField(default=60, help_text="Calls per tenant per minute.")
    day_limit = models.PositiveIntegerField(default=5000, help_text="Calls per tenant per day.")
    app_minute_limit = models.PositiveIntegerField(default=10000, help_text="Calls per minute, all tenants.")
    concurrent_limit = models.PositiveIntegerField(default=5, help_text="Calls in progress per tenant.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Xero app"

    def __str__(self):
        return f"{self.name} ({self.client_id})"

    @property
    def redirect_uri_list(self) -> list[str]:
        return [line.strip() for line in self.redirect_uris.splitlines() if line.strip()]


class Organisation(models.Model):
    """A Xero organisation (tenant) that users can connect to apps."""

    tenant_id = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=255)
    base_currency = models.CharField(max_length=3, default="NZD")
    timezone = models.CharField(
        max_length=60,
        default="NEWZEALANDSTANDARDTIME",
        help_text="Xero's Timezone name (GET /Organisation), e.g. NEWZEALANDSTANDARDTIME or "
        "EASTERNSTANDARDTIME: the day an invoice falls overdue is counted in it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def today(self) -> dt.date:
        """The organisation's date now (sandbox clock, in its time zone): what "overdue" is counted by."""
        return clock.now().astimezone(zone(self.timezone)).date()


class Grant(models.Model):
    """One user consent to one app: the token set and the organisations it covers."""

    app = models.ForeignKey(XeroApp, on_delete=models.CASCADE, related_name="grants")
    auth_event_id = models.UUIDField(default=uuid.uuid4, unique=True)
    scope = models.TextField()
    user_email = models.CharField(max_length=200, default="demo@sandbox.example")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self):
        return f"consent {self.auth_event_id} for {self.app.name}"


class Connection(models.Model):
    """An organisation connected to an app through a consent (what GET /connections lists)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="connections")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="connections")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the tenant was disconnected."
    )

    def __str__(self):
        return f"{self.organisation} ↔ {self.grant.app.name}"


class AuthorizationCode(models.Model):
    """A single-use code from the consent page, with its PKCE challenge."""

    code = models.CharField(max_length=64, unique=True)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE)
    redirect_uri = models.CharField(max_length=500)
    code_challenge = models.CharField(max_length=128, blank=True)
    code_challenge_method = models.CharField(max_length=10, blank=True)
    nonce = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"code for {self.grant}"


class Token(models.Model):
    """An access or refresh token. Refresh tokens rotate: ``replaced_by`` is the successor."""

    class Kind(models.TextChoices):
        ACCESS = "access", "access token"
        REFRESH = "refresh", "refresh token"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    token = models.TextField(unique=True)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="tokens")
    expires_at = models.DateTimeField()
    rotated_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh token was first used.")
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["kind", "expires_at"], name="sandbox_xero_token_expiry")]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"


class Contact(models.Model):
    """A Xero contact. Balances are computed from invoices and payments, never stored."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        ARCHIVED = "ARCHIVED"
        GDPRREQUEST = "GDPRREQUEST"

    contact_id = models.UUIDField(default=uuid.uuid4, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=255)
    contact_number = models.CharField(max_length=50, blank=True)
    account_number = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    email_address = models.CharField(max_length=255, blank=True)
    company_number = models.CharField(max_length=50, blank=True)
    tax_number = models.CharField(max_length=50, blank=True)
    website = models.CharField(max_length=255, blank=True)
    default_currency = models.CharField(max_length=3, blank=True)
    phones = models.JSONField(default=list, blank=True)
    addresses = models.JSONField(default=list, blank=True)
    contact_persons = models.JSONField(default=list, blank=True)
    # Names of the contact groups it belongs to (Xero sets membership through its ContactGroups API,
    # not through the contact itself).
    contact_groups = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Invoice(models.Model):
    """A Xero invoice; totals are kept in step with its line items and payments."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT"
        SUBMITTED = "SUBMITTED"
        DELETED = "DELETED"
        AUTHORISED = "AUTHORISED"
        PAID = "PAID"
        VOIDED = "VOIDED"

    invoice_id = models.UUIDField(default=uuid.uuid4, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invoices")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="invoices")
    type = models.CharField(max_length=20, default="ACCREC")
    invoice_number = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    line_amount_types = models.CharField(max_length=10, default="Exclusive")
    date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    currency_code = models.CharField(max_length=3, default="NZD")
    line_items = models.JSONField(default=list, blank=True)
    sub_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    amount_credited = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), help_text="Credit notes allocated to it."
    )
    fully_paid_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["date", "invoice_number"]

    def __str__(self):
        return self.invoice_number or str(self.invoice_id)

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited


class CreditNote(models.Model):
    """A Xero credit note (ACCRECCREDIT to a customer); its credit is allocated to invoices."""

    Status = Invoice.Status  # Xero's credit notes go through the same statuses as invoices

    credit_note_id = models.UUIDField(default=uuid.uuid4, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="credit_notes")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="credit_notes")
    type = models.CharField(max_length=20, default="ACCRECCREDIT")
    credit_note_number = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    line_amount_types = models.CharField(max_length=10, default="Exclusive")
    date = models.DateField()
    currency_code = models.CharField(max_length=3, default="NZD")
    line_items = models.JSONField(default=list, blank=True)
    sub_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["date", "credit_note_number"]

    def __str__(self):
        return self.credit_note_number or str(self.credit_note_id)

    @property
    def remaining_credit(self) -> Decimal:
        return self.total - sum((a.amount for a in self.allocations.all()), Decimal("0"))


class CreditNoteAllocation(models.Model):
    """Part of a credit note's total applied to an invoice: reduces that invoice's amount due."""

    allocation_id = models.UUIDField(default=uuid.uuid4, unique=True)
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_allocations")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    date = models.DateField()

    class Meta:
        ordering = ["date", "id"]

    def __str__(self):
        return f"{self.amount} of {self.credit_note} to {self.invoice}"


class Payment(models.Model):
    """A payment against an invoice. Payments are never edited, only deleted (reversed)."""

    class Status(models.TextChoices):
        AUTHORISED = "AUTHORISED"
        DELETED = "DELETED"

    payment_id = models.UUIDField(default=uuid.uuid4, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    account_code = models.CharField(max_length=20, default="090")
    date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.AUTHORISED)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["date", "id"]

    def __str__(self):
        return f"{self.amount} on {self.invoice}"


class IdempotentWrite(models.Model):
    """The answer to a write sent with an ``Idempotency-Key``: a retry with the same key gets it again."""

    client_id = models.CharField(max_length=64)
    tenant_id = models.UUIDField()
    key = models.CharField(max_length=128)
    endpoint = models.CharField(max_length=120)
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "tenant_id", "key"], name="sandbox_xero_idempotency_key"
            )
        ]

    def __str__(self):
        return f"{self.endpoint} [{self.key}] → {self.status}"
