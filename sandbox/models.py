"""State shared by both emulators: fault switches, call counters, rate-limit windows.

Each emulator (``sandbox.xero``, ``sandbox.pipedrive``) keeps its own records in its
own app; these tables are what tests and benchmarks flip and read.
"""

from django.db import models


class Service(models.TextChoices):
    XERO = "xero", "Xero"
    PIPEDRIVE = "pipedrive", "Pipedrive"


class FaultSwitch(models.Model):
    """Faults to inject into one emulated service. Rates are probabilities from 0 to 1."""

    service = models.CharField(max_length=20, choices=Service.choices, unique=True)
    error_rate = models.FloatField(default=0, help_text="Share of calls answered 500 or 503.")
    rate_limit_rate = models.FloatField(
        default=0, help_text="Share of calls answered 429 beyond real limits."
    )
    latency_ms = models.PositiveIntegerField(default=0, help_text="Added to every response.")
    timeout_rate = models.FloatField(default=0, help_text="Share of calls that hang for timeout_seconds.")
    timeout_seconds = models.FloatField(default=35, help_text="How long a 'timeout' call hangs before 504.")
    webhook_drop_rate = models.FloatField(default=0, help_text="Share of webhook deliveries never sent.")
    webhook_duplicate_rate = models.FloatField(default=0, help_text="Share of webhook deliveries sent twice.")
    webhook_reorder = models.BooleanField(default=False, help_text="Send pending deliveries newest first.")
    revoke_tokens = models.BooleanField(
        default=False, help_text="Treat every access and refresh token as revoked."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "fault switch"
        verbose_name_plural = "fault switches"

    def __str__(self):
        return f"{self.get_service_display()} faults"


class CallCount(models.Model):
    """How many calls one endpoint answered with one status, per service and tenant."""

    service = models.CharField(max_length=20, choices=Service.choices)
    tenant = models.CharField(max_length=64, blank=True, help_text="Xero tenant id or Pipedrive company id.")
    endpoint = models.CharField(max_length=120, help_text="Method and route, e.g. 'GET /Contacts'.")
    status = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0, help_text="Pipedrive tokens spent by these calls.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "tenant", "endpoint", "status"], name="sandbox_callcount_key"
            )
        ]

    def __str__(self):
        return f"{self.service} {self.tenant} {self.endpoint} {self.status}: {self.count}"


class ConcurrencyGauge(models.Model):
    """Calls in flight now, and the most ever seen at once, per service and tenant."""

    service = models.CharField(max_length=20, choices=Service.choices)
    tenant = models.CharField(max_length=64, blank=True)
    current = models.IntegerField(default=0)
    peak = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "tenant"], name="sandbox_gauge_key")]

    def __str__(self):
        return f"{self.service} {self.tenant}: {self.current} now, peak {self.peak}"


class RateWindow(models.Model):
    """Units (calls or tokens) spent in one fixed window of one limit."""

    service = models.CharField(max_length=20, choices=Service.choices)
    scope = models.CharField(max_length=80, help_text="What the limit applies to: a tenant, an app, a token.")
    kind = models.CharField(max_length=20, help_text="minute, day, app-minute, burst, daily-tokens …")
    window_start = models.BigIntegerField(help_text="Window number: sandbox epoch seconds // window length.")
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "scope", "kind", "window_start"], name="sandbox_window_key"
            )
        ]

    def __str__(self):
        return f"{self.service} {self.scope} {self.kind}@{self.window_start}: {self.used}"


class RateEvent(models.Model):
    """Units spent by one call in a rolling window: the window is the sum of the events of its last
    ``seconds`` (Pipedrive's 2-second burst, Xero's minute and 24-hour limits)."""

    service = models.CharField(max_length=20, choices=Service.choices)
    scope = models.CharField(max_length=80, help_text="What the limit applies to: a tenant, an app, a token.")
    kind = models.CharField(max_length=20, help_text="minute, day, app-minute, burst …")
    at = models.DateTimeField(help_text="When the call was counted (sandbox clock).")
    units = models.BigIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["service", "scope", "kind", "at"], name="sandbox_rate_event_window")]

    def __str__(self):
        return f"{self.service} {self.scope} {self.kind}@{self.at:%H:%M:%S.%f}: {self.units}"


class WebhookSubscription(models.Model):
    """A webhook registered with an emulated service: where to deliver, and how to sign.

    For Xero this is the developer portal's webhook of one app (``app_ref`` = client_id);
    Xero has no API for it. The signing key is the fake service's own secret, stored
    plainly on purpose: the sandbox holds no real credential.
    """

    service = models.CharField(max_length=20, choices=Service.choices)
    app_ref = models.CharField(
        max_length=100, help_text="Xero app client_id, or the Pipedrive webhook's owner (company or user id)."
    )
    url = models.URLField(max_length=500, help_text="Delivery URL of the receiver.")
    signing_key = models.CharField(
        max_length=200, blank=True, help_text="Xero webhook key (HMAC-SHA256); empty for Pipedrive."
    )
    categories = models.CharField(
        max_length=100,
        default="CONTACT,INVOICE",
        help_text="Comma-separated Xero event categories this webhook receives (CONTACT, INVOICE, PAYMENT).",
    )
    active = models.BooleanField(
        default=True, help_text="Off when disabled by hand or after a day of failures."
    )
    last_sequence = models.PositiveIntegerField(default=0, help_text="Last Xero event sequence number used.")
    intent_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "webhook subscription"

    def __str__(self):
        return f"{self.get_service_display()} {self.app_ref} → {self.url}"

    @property
    def category_list(self) -> list[str]:
        return [c.strip().upper() for c in self.categories.split(",") if c.strip()]


class WebhookDelivery(models.Model):
    """One outgoing webhook request in the outbox: its exact bytes, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        DROPPED = "dropped", "dropped (fault switch)"

    service = models.CharField(max_length=20, choices=Service.choices)
    subscription = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.URLField(max_length=500)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(help_text="The raw request body, exactly as signed and sent.")
    event_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="HTTP status of the last try."
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="sandbox_delivery_due")]

    def __str__(self):
        return f"{self.service} delivery #{self.pk} to {self.url}: {self.status}"
