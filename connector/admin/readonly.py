"""The base of the admin pages for rows the connector writes itself."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the connector writes: shown, never added or edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
