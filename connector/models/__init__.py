import secrets

from django.db import models

from connector.models.fields import EncryptedSecretField


class EncryptionCanary(models.Model):
    """A known value encrypted when the database is first migrated.

    The start-up check decrypts it: if FIELD_ENCRYPTION_KEY has been lost or swapped,
    the connector refuses to start instead of failing on the first credential it reads.
    """

    PLAINTEXT = "ml-connector encryption canary"

    value = EncryptedSecretField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "encryption canary"

    def __str__(self):
        return f"Encryption canary from {self.created_at:%Y-%m-%d}"


# --- Connections: OAuth2 / API-token credentials of one Xero tenant or Pipedrive company ---


class ConnectionStatus(models.TextChoices):
    PENDING = "pending", "Pending (connect not finished)"
    ACTIVE = "active", "Active"
    BROKEN = "broken", "Broken (reconnect needed)"
    DISCONNECTED = "disconnected", "Disconnected"


class XeroConnection(models.Model):
    """One Xero organisation (tenant) with its own OAuth token set.

    Each row owns its token set: Xero's token sets must live in one place, and a refresh
    rotates the refresh token, so two rows sharing one would lose it. Connecting several
    tenants means one consent per tenant.
    """

    tenant_id = models.CharField(max_length=64, blank=True)
    tenant_name = models.CharField(max_length=255, blank=True)
    xero_connection_id = models.CharField(max_length=64, blank=True, help_text="Id in Xero's /connections.")
    auth_event_id = models.CharField(max_length=64, blank=True)
    client_id = models.CharField(max_length=100)
    client_secret = EncryptedSecretField(blank=True)
    access_token = EncryptedSecretField(blank=True)
    refresh_token = EncryptedSecretField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Access token expiry.")
    previous_refresh_token = EncryptedSecretField(blank=True)
    previous_refresh_grace_until = models.DateTimeField(null=True, blank=True)
    scopes = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.PENDING
    )
    last_error = models.TextField(blank=True)
    secrets_set_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Xero connection"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id"],
                condition=~models.Q(tenant_id="") & ~models.Q(status="disconnected"),
                name="xero_one_live_row_per_tenant",
            )
        ]

    def __str__(self):
        return self.tenant_name or self.tenant_id or f"Xero connection #{self.pk} (pending)"


class PipedriveConnection(models.Model):
    """One Pipedrive company, reached with a personal API token or an OAuth token set."""

    class AuthType(models.TextChoices):
        API_TOKEN = "api_token", "API token"
        OAUTH = "oauth", "OAuth"

    company_id = models.BigIntegerField(null=True, blank=True)
    company_name = models.CharField(max_length=255, blank=True)
    company_domain = models.CharField(max_length=255, blank=True)
    api_domain = models.URLField(
        blank=True, help_text="Base URL for API calls (OAuth answers it on each refresh)."
    )
    auth_type = models.CharField(max_length=20, choices=AuthType.choices, default=AuthType.OAUTH)
    api_token = EncryptedSecretField(blank=True)
    access_token = EncryptedSecretField(blank=True)
    refresh_token = EncryptedSecretField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    client_id = models.CharField(max_length=100, blank=True)
    client_secret = EncryptedSecretField(blank=True)
    scopes = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.PENDING
    )
    last_error = models.TextField(blank=True)
    user_name = models.CharField(max_length=255, blank=True)
    user_email = models.CharField(max_length=255, blank=True)
    secrets_set_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Pipedrive connection"

    def __str__(self):
        return self.company_name or self.company_domain or f"Pipedrive connection #{self.pk} (pending)"


def default_pair_options():
    return {"deal_value_from": "Total", "create_deals": True, "create_notes": True}


def new_pair_key():
    return secrets.token_urlsafe(32)


def new_webhook_user():
    return "ml-" + secrets.token_hex(6)


def new_webhook_password():
    return secrets.token_urlsafe(24)


class SyncPair(models.Model):
    """Joins one Xero tenant to one Pipedrive company, with its webhook secrets and sync options."""

    name = models.CharField(max_length=200)
    xero_connection = models.ForeignKey(XeroConnection, on_delete=models.PROTECT, related_name="pairs")
    pipedrive_connection = models.ForeignKey(
        PipedriveConnection, on_delete=models.PROTECT, related_name="pairs"
    )
    key = models.CharField(max_length=64, unique=True, default=new_pair_key, editable=False)
    xero_webhook_key = EncryptedSecretField(blank=True, help_text="Webhook signing key from Xero's portal.")
    pipedrive_webhook_user = models.CharField(max_length=64, default=new_webhook_user)
    pipedrive_webhook_password = EncryptedSecretField(default=new_webhook_password)
    pipedrive_signing_secret = EncryptedSecretField(blank=True)
    enabled = models.BooleanField(default=True)
    options = models.JSONField(default=default_pair_options, blank=True)
    secrets_set_at = models.DateTimeField(null=True, blank=True)
    # Webhook requests refused for a bad or missing signature / Basic auth (nothing else is stored).
    xero_rejected_count = models.PositiveIntegerField(default=0, editable=False)
    pipedrive_rejected_count = models.PositiveIntegerField(default=0, editable=False)
    last_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when a drain task is enqueued, cleared when one starts: stops a storm of duplicate drains.
    drain_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sync pair"
        constraints = [
            models.UniqueConstraint(fields=["xero_connection", "pipedrive_connection"], name="pair_unique")
        ]

    def __str__(self):
        return self.name


class OAuthState(models.Model):
    """The ``state`` of one authorization request with its PKCE verifier: single use, short-lived."""

    state = models.CharField(max_length=64, unique=True)
    service = models.CharField(max_length=20)
    code_verifier = EncryptedSecretField(blank=True)
    client_id = models.CharField(max_length=100, blank=True)
    client_secret = EncryptedSecretField(blank=True)
    redirect_uri = models.URLField()
    user_id = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # After the Xero callback: the token set waits here until a tenant is picked.
    token_set = EncryptedSecretField(blank=True)

    def __str__(self):
        return f"{self.service} state {self.created_at:%Y-%m-%d %H:%M}"


# --- API limits shared by every worker, and work deferred to a budget reset ---


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


# --- Webhook inbox: every received event, stored before it is processed ---


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


# --- The local index of a Pipedrive company's organizations and persons (matching by e-mail/name) ---


class PipedriveIndexState(models.Model):
    """How fresh one Pipedrive company's local index is, and which custom field holds the Xero ContactID.

    The sync matches Xero contacts against the index instead of spending a search call (20 tokens)
    per record; the index is filled by listing (10 tokens per 500 records).
    """

    connection = models.OneToOneField(
        PipedriveConnection, on_delete=models.CASCADE, related_name="index_state"
    )
    filled_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the last full listing (every record)."
    )
    refreshed_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the last listing, full or of records updated since."
    )
    contact_id_field = models.CharField(
        max_length=64, blank=True, help_text="Key of the organization field holding the Xero ContactID."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "Pipedrive index state"

    def __str__(self):
        return f"Index of {self.connection}"


class PipedriveIndexEntry(models.Model):
    """One Pipedrive organization or person with the keys a Xero contact is matched by."""

    class Entity(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        PERSON = "person", "Person"

    connection = models.ForeignKey(
        PipedriveConnection, on_delete=models.CASCADE, related_name="index_entries"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    record_id = models.BigIntegerField()
    name = models.CharField(max_length=255, blank=True)
    name_key = models.CharField(
        max_length=255, blank=True, help_text="Organizations: the normalized name; persons: the folded name."
    )
    xero_contact_id = models.CharField(
        max_length=64, blank=True, help_text="The organization's Xero ContactID field value."
    )
    org_id = models.BigIntegerField(null=True, blank=True, help_text="A person's organization.")
    add_time = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Pipedrive index entry"
        verbose_name_plural = "Pipedrive index entries"
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "entity", "record_id"], name="pipedrive_index_entry_unique"
            )
        ]
        indexes = [
            models.Index(fields=["connection", "entity", "name_key"], name="pipedrive_index_by_name"),
            models.Index(fields=["connection", "entity", "xero_contact_id"], name="pipedrive_index_by_cid"),
        ]

    def __str__(self):
        return f"{self.entity} {self.record_id} {self.name}"


class PipedriveIndexEmail(models.Model):
    """One e-mail address (normalized) of an indexed person."""

    entry = models.ForeignKey(PipedriveIndexEntry, on_delete=models.CASCADE, related_name="emails")
    email = models.CharField(max_length=255, db_index=True)

    class Meta:
        verbose_name = "Pipedrive index e-mail"

    def __str__(self):
        return self.email


# --- Guided setup ---


class SetupStepResult(models.Model):
    """The last outcome of a guided-setup step that leaves no other trace in this database.

    Registering the Pipedrive webhooks, creating the custom fields and pipeline, and Xero's
    intent-to-receive handshake happen on the other services; the setup page shows each step as
    done, to do or failed (with what went wrong) from these rows. One row per pair and step.
    """

    class Step(models.TextChoices):
        PIPEDRIVE_SETUP = "pipedrive_setup", "Custom fields and invoice pipeline"
        PIPEDRIVE_WEBHOOKS = "pipedrive_webhooks", "Pipedrive webhooks"
        XERO_INTENT = "xero_intent", "Xero intent to receive"

    pair = models.ForeignKey(SyncPair, on_delete=models.CASCADE, related_name="setup_results")
    step = models.CharField(max_length=30, choices=Step.choices)
    ok = models.BooleanField()
    message = models.TextField(blank=True, help_text="What happened, in words for the admin (no secrets).")
    at = models.DateTimeField()

    class Meta:
        verbose_name = "setup step result"
        constraints = [models.UniqueConstraint(fields=["pair", "step"], name="setup_step_result_unique")]

    def __str__(self):
        return f"{self.pair}: {self.get_step_display()} {'ok' if self.ok else 'failed'}"


# --- Backfill and reconciliation ---


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
