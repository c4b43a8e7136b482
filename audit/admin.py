"""Admin for sync records: a read-only list of every record sync, filterable by pair and outcome.

The place to see what was synced, when, and why a record was not.
"""

from django.contrib import admin

from audit.models import SyncRecord


@admin.register(SyncRecord)
class SyncRecordAdmin(admin.ModelAdmin):
    list_display = (
        "finished_at",
        "xero_type",
        "xero_id",
        "outcome",
        "pipedrive_type",
        "pipedrive_id",
        "payload_size",
        "short_reason",
        "pair",
    )
    list_filter = ("pair", "outcome", "xero_type", "trigger")
    search_fields = ("xero_id", "=pipedrive_id")
    list_select_related = ("pair",)
    date_hierarchy = "finished_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="reason")
    def short_reason(self, record):
        return record.reason if len(record.reason) <= 80 else record.reason[:79] + "…"
