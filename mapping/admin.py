"""Admin for the record links. The mapping rows' admin (field and stage mappings, credit limits) needs the
pair's live Pipedrive fields and stages, so it lives in connector (connector/admin/mapping.py)."""

from django.contrib import admin

from mapping.models import RecordLink


@admin.register(RecordLink)
class RecordLinkAdmin(admin.ModelAdmin):
    list_display = [
        "xero_type",
        "xero_id",
        "pipedrive_type",
        "pipedrive_id",
        "state",
        "last_synced_at",
        "pair",
    ]
    list_filter = ["pair", "xero_type", "pipedrive_type", "state"]
    search_fields = ["xero_id"]
    readonly_fields = ["payload_hash", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # A link pointed at another Pipedrive record by hand: the next sync must write it in full.
        if {"pipedrive_id", "pipedrive_type", "state"} & set(form.changed_data):
            obj.payload_hash = ""
        super().save_model(request, obj, form, change)
