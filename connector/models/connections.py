"""Credentials of one Xero tenant or Pipedrive company (OAuth2 or API token), and connects in progress."""

from django.db import models

from connector.models.fields import EncryptedSecretField


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
    org_timezone = models.CharField(
        max_length=64,
        blank=True,
        help_text="The organisation's time zone (IANA, e.g. Pacific/Auckland), read from Xero's "
        "Organisation endpoint when the tenant is picked; empty until read (then UTC is assumed).",
    )
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
