"""Read-only admin pages for the shared API limits and the work deferred to a budget reset."""

from django.contrib import admin

from connector.admin.readonly import ReadOnlyAdmin
from connector.models import ApiRateWindow, DeferredJob, PipedriveIndexState


@admin.register(DeferredJob)
class DeferredJobAdmin(ReadOnlyAdmin):
    """What waits for the daily budget to reset, and why (the admin's answer to "why did it not sync?")."""

    list_display = ["job_name", "scope", "status", "run_after", "created_at"]
    list_filter = ["status", "service"]
    readonly_fields = ["service", "scope", "job_name", "func", "args", "run_after", "status", "message"]


@admin.register(ApiRateWindow)
class ApiRateWindowAdmin(ReadOnlyAdmin):
    list_display = ["service", "scope", "kind", "window_start", "used"]
    list_filter = ["service", "kind"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PipedriveIndexState)
class PipedriveIndexStateAdmin(ReadOnlyAdmin):
    """How fresh each company's local index is; deleting a row makes the next sync list everything again."""

    list_display = ["connection", "filled_at", "refreshed_at", "contact_id_field", "last_error"]
    readonly_fields = ["connection", "filled_at", "refreshed_at", "contact_id_field", "last_error"]
