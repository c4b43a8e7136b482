import secrets

from django import forms
from django.contrib import admin
from django.db.models import URLField

from sandbox.admin_registration import register
from sandbox.pipedrive import guard, models
from sandbox.pipedrive.services import activities_of, panels

RECORD_WITH_PANELS = "admin/sandbox_pipedrive/record_with_panels.html"


class PanelsOnDetailPage(admin.ModelAdmin):
    """A record's change page shows the JSON panels registered for its detail view, drawn by calling
    each panel's endpoint with a freshly signed token, as Pipedrive's detail views do, and the
    record's activities (a deal's or an organization's), as Pipedrive's detail views list them."""

    change_form_template = RECORD_WITH_PANELS
    panel_resource = ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Drawn before the admin's transaction opens: the panel's endpoint answers from another
        # connection (another thread or process) and must not wait on this one.
        extra_context = dict(extra_context or {})
        record = (
            self.model._default_manager.filter(pk=object_id).first() if str(object_id).isdigit() else None
        )
        if record is not None and self.panel_resource and request.method == "GET":
            extra_context["json_panels"] = panels.draw_panels(
                record.company_id, self.panel_resource, record.pk
            )
            link = "deal_id" if self.panel_resource == "deal" else "org_id"
            extra_context["activities"] = activities_of(record.company_id, **{link: record.pk})
        return super().change_view(request, object_id, form_url, extra_context)


@register(models.Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "plan", "seats", "daily_budget_display", "tokens_left_today"]

    @admin.display(description="daily token budget")
    def daily_budget_display(self, obj):
        return obj.daily_budget

    @admin.display(description="tokens left today")
    def tokens_left_today(self, obj):
        return guard.spent_today(obj).remaining["daily-tokens"]


@register(models.User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "company", "is_admin"]
    list_filter = ["company"]
    exclude = ["api_token"]  # a password: generated for a new user, never shown (the seed prints the demo's)


@register(models.OAuthApp)
class OAuthAppAdmin(admin.ModelAdmin):
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ["name", "client_id", "redirect_uri"]
    exclude = ["client_secret"]  # never shown; a new app gets one generated

    def save_model(self, request, obj, form, change):
        if not obj.client_secret:
            obj.client_secret = secrets.token_urlsafe(36)[:64]
        super().save_model(request, obj, form, change)


@register(models.OAuthGrant)
class OAuthGrantAdmin(admin.ModelAdmin):
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ["app", "user", "access_expires_at", "revoked", "created_at"]
    exclude = ["access_token", "refresh_token", "code"]


class StageInline(admin.TabularInline):
    model = models.Stage
    extra = 0


@register(models.Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "order_nr"]
    inlines = [StageInline]


@register(models.Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["name", "pipeline", "order_nr", "deal_probability"]
    list_filter = ["pipeline"]


@register(models.CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["field_name", "entity", "field_type", "field_code", "company"]
    list_filter = ["entity", "field_type"]


@register(models.Person)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "company", "is_deleted", "update_time"]
    list_filter = ["company", "is_deleted"]
    search_fields = ["name"]


@register(models.Organization)
class OrganizationAdmin(PanelsOnDetailPage, ContactAdmin):
    panel_resource = "organization"


@register(models.Deal)
class DealAdmin(PanelsOnDetailPage):
    panel_resource = "deal"
    list_display = ["id", "title", "status", "stage", "org", "is_deleted", "update_time"]
    list_filter = ["company", "status", "is_deleted"]
    search_fields = ["title"]


@register(models.Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "deal", "org", "person", "add_time"]


@register(models.Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "type", "due_date", "done", "owner", "deal", "org", "update_time"]
    list_filter = ["company", "type", "done", "is_deleted"]
    search_fields = ["subject"]


@register(models.Webhook)
class WebhookAdmin(admin.ModelAdmin):
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ["id", "event_action", "event_object", "version", "subscription_url", "company"]
    exclude = ["http_auth_password"]


class PanelExtensionForm(forms.ModelForm):
    """The JWT secret is write-only: never rendered back; left empty, the stored one is kept."""

    endpoint_url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="The panel's API endpoint (GET)."
    )
    jwt_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the stored secret (a new panel needs one).",
    )

    class Meta:
        model = models.PanelExtension
        fields = ["company", "name", "endpoint_url", "jwt_secret", "schema", "on_organization", "on_deal"]

    def clean_jwt_secret(self):
        value = self.cleaned_data.get("jwt_secret") or ""
        if not value and self.instance.pk:
            return self.instance.jwt_secret
        if not value:
            raise forms.ValidationError("A new panel needs its JWT secret.")
        return value


@register(models.PanelExtension)
class PanelExtensionAdmin(admin.ModelAdmin):
    """Developer Hub's App extensions → JSON panel, for the emulated Pipedrive (staff only)."""

    form = PanelExtensionForm
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ["name", "company", "endpoint_url", "on_organization", "on_deal", "created_at"]
