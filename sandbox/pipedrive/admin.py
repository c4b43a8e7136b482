import secrets

from django.contrib import admin
from django.db.models import URLField

from sandbox.admin_registration import register
from sandbox.pipedrive import guard, models


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


@register(models.Organization, models.Person)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "company", "is_deleted", "update_time"]
    list_filter = ["company", "is_deleted"]
    search_fields = ["name"]


@register(models.Deal)
class DealAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "status", "stage", "org", "is_deleted", "update_time"]
    list_filter = ["company", "status", "is_deleted"]
    search_fields = ["title"]


@register(models.Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "deal", "org", "person", "add_time"]


@register(models.Webhook)
class WebhookAdmin(admin.ModelAdmin):
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = ["id", "event_action", "event_object", "version", "subscription_url", "company"]
    exclude = ["http_auth_password"]
