"""Admin for the sandbox core: fault switches, usage counters, webhook subscriptions and the outbox."""

import json

from django.contrib import admin, messages
from django.db.models import URLField
from django.utils.html import format_html

from sandbox import webhooks
from sandbox.admin_registration import register
from sandbox.models import (
    CallCount,
    ConcurrencyGauge,
    FaultSwitch,
    RateEvent,
    RateWindow,
    Service,
    WebhookDelivery,
    WebhookSubscription,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the sandbox writes itself: visible, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@register(FaultSwitch)
class FaultSwitchAdmin(admin.ModelAdmin):
    list_display = (
        "service",
        "error_rate",
        "rate_limit_rate",
        "latency_ms",
        "timeout_rate",
        "webhook_drop_rate",
        "webhook_duplicate_rate",
        "webhook_reorder",
        "revoke_tokens",
        "updated_at",
    )
    list_editable = (
        "error_rate",
        "rate_limit_rate",
        "latency_ms",
        "timeout_rate",
        "webhook_drop_rate",
        "webhook_duplicate_rate",
        "webhook_reorder",
        "revoke_tokens",
    )


@register(CallCount)
class CallCountAdmin(ReadOnlyAdmin):
    list_display = ("service", "tenant", "endpoint", "status", "count", "tokens")
    list_filter = ("service", "status")
    search_fields = ("tenant", "endpoint")


@register(ConcurrencyGauge)
class ConcurrencyGaugeAdmin(ReadOnlyAdmin):
    list_display = ("service", "tenant", "current", "peak")
    list_filter = ("service",)


@register(RateWindow)
class RateWindowAdmin(ReadOnlyAdmin):
    list_display = ("service", "scope", "kind", "window_start", "used")
    list_filter = ("service", "kind")


@register(RateEvent)
class RateEventAdmin(ReadOnlyAdmin):
    list_display = ("service", "scope", "kind", "at", "units")
    list_filter = ("service", "kind")


@register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """The stand-in for Xero's developer portal. The signing key is never part of a page or form: a
    new webhook gets a generated key, shown once in the message after saving (as a portal shows it
    to copy), and afterwards only whether there is one."""

    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ("__str__", "service", "app_ref", "url", "categories", "active", "intent_verified_at")
    list_filter = ("service", "active")
    exclude = ("signing_key",)
    readonly_fields = ("has_signing_key", "last_sequence", "intent_verified_at", "created_at")
    actions = ["send_intent_to_receive"]

    @admin.display(boolean=True, description="has a signing key")
    def has_signing_key(self, obj):
        return bool(obj and obj.signing_key)

    def save_model(self, request, obj, form, change):
        # As in Xero's portal, a new webhook gets a generated key, shown once to be copied.
        if obj.service == Service.XERO and not obj.signing_key:
            obj.signing_key = webhooks.new_xero_webhook_key()
            self.message_user(
                request,
                format_html(
                    "Webhook key (shown only now: copy it into the connector's setup): "
                    '<code id="new-signing-key">{}</code>',
                    obj.signing_key,
                ),
                messages.WARNING,
            )
        super().save_model(request, obj, form, change)

    @admin.action(description="Send 'Intent to receive' (Xero)")
    def send_intent_to_receive(self, request, queryset):
        for subscription in queryset.filter(service=Service.XERO):
            report = webhooks.intent_to_receive(subscription)
            outcome = "; ".join(
                f"{c['payload']}: expected {c['expected']}, got {c['status'] or c['error']}"
                for c in report["checks"]
            )
            self.message_user(
                request,
                f"{subscription}: {'passed' if report['passed'] else 'FAILED'} ({outcome})",
                messages.SUCCESS if report["passed"] else messages.ERROR,
            )


@register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "service", "url", "event_count", "status", "attempts", "last_status", "created_at")
    list_filter = ("service", "status")
    search_fields = ("url", "body")
    fields = (
        "service",
        "subscription",
        "url",
        "status",
        "event_count",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "pretty_headers",
        "pretty_body",
    )
    readonly_fields = fields
    actions = ["send_due_now"]

    @admin.display(description="headers")
    def pretty_headers(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(webhooks.headers_shown(obj.headers), indent=2))

    @admin.display(description="body (as sent)")
    def pretty_body(self, obj):
        try:
            shown = json.dumps(json.loads(obj.body), indent=2)
        except ValueError:
            shown = obj.body
        return format_html("<pre>{}</pre>", shown)

    @admin.action(description="Send due deliveries now")
    def send_due_now(self, request, queryset):
        sent = webhooks.deliver_pending()
        self.message_user(request, f"Sent {sent} due deliveries.")
