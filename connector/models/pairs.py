"""Sync pairs (one Xero tenant joined to one Pipedrive company) and the results of their guided-setup steps.

The default and key helpers are referenced by migrations as ``connector.models.<name>``, so the
package re-exports them.
"""

import secrets

from django.db import models

from connector.models.connections import PipedriveConnection, XeroConnection
from connector.models.fields import EncryptedSecretField


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
    pipedrive_panel_secret = EncryptedSecretField(
        blank=True,
        help_text="JWT secret of the Pipedrive JSON panel (Developer Hub → App extensions); empty: the "
        "Pipedrive app's client secret verifies the panel's requests.",
    )
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
