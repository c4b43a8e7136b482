"""Admin for connections and sync pairs: secrets are write-only, status and next steps are explicit."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from connector.admin.backfill import backfill_urls
from connector.admin.overdue import check_button, overdue_urls
from connector.connections import oauth
from connector.connections import services as connections
from connector.connections.forms import PipedriveConnectionAdminForm, WriteOnlySecretWidget
from connector.errors import ConnectorError
from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, WebhookEvent, XeroConnection
from connector.options import pair_options
from connector.setup import pipedrive_fields as pipedrive_setup
from connector.setup import status as setup_status
from connector.setup.pair_settings import PairSettingsForm


def write_only_form(model, secret_fields: tuple[str, ...], base=forms.ModelForm):
    """A ModelForm whose secret fields render empty and are saved only when something is typed."""

    class WriteOnlyForm(base):
        class Meta:
            widgets = {name: WriteOnlySecretWidget() for name in secret_fields}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for name in secret_fields:
                if name in self.fields:
                    self.fields[name].required = False
                    self.fields[name].help_text = "Write-only: leave empty to keep the stored value."

        def clean(self):
            data = super().clean()
            changed = False
            for name in secret_fields:
                if name in data and not data[name] and self.instance.pk:
                    data[name] = getattr(self.instance, name)  # keep
                elif data.get(name):
                    changed = True
            if changed:
                self.instance.secrets_set_at = timezone.now()
            return data

    WriteOnlyForm.Meta.model = model  # type: ignore[attr-defined]  # Meta is built above, per model
    return WriteOnlyForm


def webhook_url(name: str, pair) -> str:
    """The absolute receiver URL, as the outside world reaches this installation."""
    return settings.PUBLIC_BASE_URL + reverse(name, args=[pair.key])


def secrets_set_on(obj) -> str:
    return f"set on {obj.secrets_set_at:%Y-%m-%d %H:%M} UTC" if obj.secrets_set_at else "not set"


class ConnectionAdmin(admin.ModelAdmin):
    """The admin both connections share; each subclass names its connect page and its services."""

    connect_url_name = ""
    secret_fields: tuple[str, ...] = ()
    base_form: type[forms.ModelForm] = forms.ModelForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("__str__", "status_badge", "expires_at", "last_refreshed_at", "updated_at")
    list_filter = ("status",)
    actions = ["test_connection", "refresh_token_now", "disconnect"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = write_only_form(self.model, self.secret_fields, base=self.base_form)
        return super().get_form(request, obj, change=change, **kwargs)

    def check_connection(self, obj) -> connections.CheckResult:
        raise NotImplementedError

    def refresh(self, obj) -> None:
        raise NotImplementedError

    def do_disconnect(self, obj) -> list[str]:
        raise NotImplementedError

    @admin.display(description="Status")
    def status_badge(self, obj):
        colour = {"active": "green", "broken": "#ba2121", "pending": "#a60"}.get(obj.status, "#666")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description="Secrets")
    def secrets_state(self, obj):
        return secrets_set_on(obj)

    @admin.display(description="Next step")
    def next_step(self, obj):
        if obj.status == ConnectionStatus.BROKEN:
            return format_html(
                '{} <a href="{}">Reconnect</a>', obj.last_error, reverse(self.connect_url_name)
            )
        if obj.status == ConnectionStatus.DISCONNECTED:
            return format_html('Disconnected. <a href="{}">Connect again</a>', reverse(self.connect_url_name))
        if obj.status == ConnectionStatus.PENDING:
            return "Consent not finished."
        return "None: the connection is working."

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "connect_url": reverse(self.connect_url_name)}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request, queryset):
        for obj in queryset:
            result = self.check_connection(obj)
            messages.add_message(
                request, messages.SUCCESS if result.ok else messages.ERROR, f"{obj}: {result}"
            )

    @admin.action(description="Refresh token now", permissions=["change"])
    def refresh_token_now(self, request, queryset):
        for obj in queryset:
            try:
                self.refresh(obj)
                messages.success(request, f"{obj}: token refreshed.")
            except ConnectorError as exc:
                messages.error(request, f"{obj}: {exc}")

    @admin.action(description="Disconnect (revoke the token)", permissions=["change"])
    def disconnect(self, request, queryset):
        for obj in queryset:
            problems = self.do_disconnect(obj)
            if problems:
                messages.warning(request, f"{obj}: disconnected here; {' '.join(problems)}")
            else:
                messages.success(request, f"{obj}: disconnected and revoked.")


@admin.register(XeroConnection)
class XeroConnectionAdmin(ConnectionAdmin):
    secret_fields = ("client_secret",)
    connect_url_name = "connector:xero-start"
    change_list_template = "admin/connector/connection_change_list.html"
    fieldsets = (
        (None, {"fields": ("tenant_name", "tenant_id", "status", "next_step", "last_error")}),
        ("App credentials", {"fields": ("client_id", "client_secret", "secrets_state")}),
        (
            "Token set (never shown)",
            {"fields": ("expires_at", "last_refreshed_at", "scopes", "xero_connection_id", "auth_event_id")},
        ),
    )
    readonly_fields = (
        "tenant_id",
        "status",
        "next_step",
        "last_error",
        "secrets_state",
        "expires_at",
        "last_refreshed_at",
        "scopes",
        "xero_connection_id",
        "auth_event_id",
    )

    def check_connection(self, obj):
        return connections.check_xero(obj)

    def refresh(self, obj):
        oauth.refresh_xero(obj.pk, force=True)

    def do_disconnect(self, obj):
        return connections.disconnect_xero(obj)


@admin.register(PipedriveConnection)
class PipedriveConnectionAdmin(ConnectionAdmin):
    secret_fields = ("api_token", "client_secret")
    base_form = PipedriveConnectionAdminForm
    connect_url_name = "connector:pipedrive-start"
    change_list_template = "admin/connector/connection_change_list.html"
    fieldsets = (
        (
            None,
            {"fields": ("company_name", "company_domain", "company_id", "status", "next_step", "last_error")},
        ),
        (
            "Authentication",
            {"fields": ("auth_type", "api_token", "client_id", "client_secret", "secrets_state")},
        ),
        (
            "Details",
            {
                "fields": (
                    "api_domain",
                    "user_name",
                    "user_email",
                    "scopes",
                    "expires_at",
                    "last_refreshed_at",
                )
            },
        ),
    )
    readonly_fields = (
        "company_id",
        "status",
        "next_step",
        "last_error",
        "secrets_state",
        "auth_type",
        "user_name",
        "user_email",
        "scopes",
        "expires_at",
        "last_refreshed_at",
    )

    def check_connection(self, obj):
        return connections.check_pipedrive(obj)

    def refresh(self, obj):
        if obj.auth_type == PipedriveConnection.AuthType.API_TOKEN:
            raise ConnectorError("An API token has nothing to refresh.")
        oauth.refresh_pipedrive(obj.pk, force=True)

    def do_disconnect(self, obj):
        return connections.disconnect_pipedrive(obj)


@admin.register(SyncPair)
class SyncPairAdmin(admin.ModelAdmin):
    list_display = ("name", "xero_connection", "pipedrive_connection", "enabled", "pending_events")
    secret_fields = (
        "xero_webhook_key",
        "pipedrive_signing_secret",
        "pipedrive_webhook_password",
        "pipedrive_panel_secret",
    )
    fieldsets = (
        (None, {"fields": ("name", "xero_connection", "pipedrive_connection", "enabled")}),
        (
            "Deals",
            {"fields": ("deal_value_from", "deal_title_template", "create_deals", "create_notes")},
        ),
        ("Customers and credit", {"fields": ("archived_contacts", "credit_limit_field")}),
        ("Overdue invoices", {"fields": ("overdue_check_at", "overdue_reminders", "overdue_check")}),
        (
            "Checks and deletions",
            {
                "fields": (
                    "on_pipedrive_delete",
                    "webhook_silence_alert_hours",
                    "reconciliation_interval_minutes",
                    "reconciliation_only",
                    "options_check",
                )
            },
        ),
        (
            "Webhooks",
            {
                "fields": (
                    "xero_webhook_url",
                    "xero_webhook_key",
                    "pipedrive_webhook_url",
                    "pipedrive_webhook_user",
                    "pipedrive_signing_secret",
                    "secrets_state",
                    "webhook_rejections",
                )
            },
        ),
        ("Pipedrive panel", {"fields": ("panel_endpoint_url", "pipedrive_panel_secret")}),
        ("Existing records", {"fields": ("backfill_link",)}),
    )
    readonly_fields = (
        "xero_webhook_url",
        "pipedrive_webhook_url",
        "pipedrive_webhook_user",
        "secrets_state",
        "webhook_rejections",
        "options_check",
        "backfill_link",
        "panel_endpoint_url",
        "overdue_check",
    )
    actions = ["test_pair", "register_pipedrive_webhooks"]

    def get_urls(self):
        return [*backfill_urls(self), *overdue_urls(self), *super().get_urls()]

    def get_fieldsets(self, request, obj=None):
        # A user who may only view pairs would see the secrets as read-only text: leave them out.
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in self.secret_fields]})
            for name, options in fieldsets
        ]

    @admin.display(description="Overdue check")
    def overdue_check(self, obj):
        if obj is None or not obj.pk:
            return "Available once the pair is saved."
        return check_button(obj)

    @admin.display(description="Backfill")
    def backfill_link(self, obj):
        if not obj.pk:
            return "available after saving"
        url = reverse("admin:connector_syncpair_backfill", args=[obj.pk])
        return format_html('<a href="{}">Bring existing Xero records across (preview first)</a>', url)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The organization fields (for the credit limit pick-list) are read before the admin's
        # transaction opens; a failure is shown beside the field, never a 500.
        pair = SyncPair.objects.filter(pk=object_id).first() if str(object_id or "").isdigit() else None
        request._pair_credit_fields = None
        if pair is not None:
            try:
                request._pair_credit_fields = pipedrive_setup.live_fields(pair, "organization")
            except ConnectorError as exc:
                request._pair_credit_fields = str(exc)
            problems = pair_options(pair).problems
            if request.method == "GET" and problems:
                messages.warning(
                    request,
                    "The stored settings of this pair had problems; the defaults are used for: "
                    + " ".join(problems)
                    + " Saving this page stores the values shown.",
                )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = write_only_form(self.model, self.secret_fields, base=PairSettingsForm)
        form = super().get_form(request, obj, change=change, **kwargs)
        form.credit_fields = getattr(request, "_pair_credit_fields", None)  # type: ignore[attr-defined]  # read by PairSettingsForm
        return form

    @admin.display(description="Stored settings check")
    def options_check(self, obj):
        problems = pair_options(obj).problems if obj.pk else ()
        if not problems:
            return "No problems: every stored setting is valid."
        return format_html(
            '<strong style="color:#ba2121">{}</strong>', " ".join(problems) + " (the defaults are used)"
        )

    @admin.display(description="Secrets")
    def secrets_state(self, obj):
        return secrets_set_on(obj)

    @admin.display(description="Pending webhook events")
    def pending_events(self, obj):
        return obj.webhook_events.filter(status=WebhookEvent.Status.PENDING).count()

    @admin.display(description="Xero webhook URL (paste into Xero's developer portal)")
    def xero_webhook_url(self, obj):
        return webhook_url("webhooks:xero", obj) if obj.pk else "shown after saving"

    @admin.display(description="Pipedrive webhook URL (registered by the connector, with basic auth)")
    def pipedrive_webhook_url(self, obj):
        return webhook_url("webhooks:pipedrive", obj) if obj.pk else "shown after saving"

    @admin.display(description="Panel API endpoint (paste into Developer Hub → App extensions → JSON panel)")
    def panel_endpoint_url(self, obj):
        return webhook_url("panel:panel", obj) if obj.pk else "shown after saving"

    @admin.display(description="Rejected webhooks (bad or missing signature / credentials)")
    def webhook_rejections(self, obj):
        if not obj.last_rejected_at:
            return "none"
        return (
            f"Xero signature rejected {obj.xero_rejected_count} times, Pipedrive credentials rejected "
            f"{obj.pipedrive_rejected_count} times; last at {obj.last_rejected_at:%Y-%m-%d %H:%M:%S} UTC"
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # A new pair: its Pipedrive webhooks carry a password nobody has seen, so register them
            # now — after the commit, never holding the admin's transaction across the API calls.
            transaction.on_commit(lambda: self._register_new_pair(request, obj))

    def _register_new_pair(self, request, pair):
        try:
            report = setup_status.register_webhooks(pair)  # kept for the guided setup's page too
        except ConnectorError as exc:
            messages.warning(
                request,
                f"Pipedrive webhooks were not registered ({exc}). Fix the Pipedrive connection, then run "
                "the action “Register Pipedrive webhooks” on this pair.",
            )
        else:
            messages.info(request, str(report))

    @admin.action(description="Register Pipedrive webhooks (safe to repeat)", permissions=["change"])
    def register_pipedrive_webhooks(self, request, queryset):
        for pair in queryset:
            try:
                report = setup_status.register_webhooks(pair)
            except ConnectorError as exc:
                messages.error(request, f"{pair}: {exc}")
            else:
                messages.success(request, f"{pair}: {report}")

    @admin.action(description="Test connection (both sides)", permissions=["change"])
    def test_pair(self, request, queryset):
        for pair in queryset:
            results = [
                connections.check_xero(pair.xero_connection),
                connections.check_pipedrive(pair.pipedrive_connection),
            ]
            ok = all(r.ok for r in results)
            text = " | ".join(str(r) for r in results)
            messages.add_message(request, messages.SUCCESS if ok else messages.ERROR, f"{pair}: {text}")
