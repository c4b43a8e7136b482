"""The overdue checks in the admin: each pair's last daily pass, the reminders given, and the pair
page's "Run the overdue check now" (POST, the pair's change permission; else 403).

Thin: the pass itself is ``connector.operations.overdue``.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from connector.admin.readonly import ReadOnlyAdmin
from connector.models import OverduePassState, OverdueReminder, SyncPair
from connector.operations import overdue


def overdue_urls(model_admin) -> list:
    site = model_admin.admin_site
    return [
        path(
            "<int:pair_id>/overdue-check/",
            site.admin_view(lambda request, pair_id: run_check_view(model_admin, request, pair_id)),
            name="connector_syncpair_overdue_check",
        )
    ]


def run_check_view(model_admin, request, pair_id):
    """Queue one overdue pass of the pair now (it re-reads only invoices not handled yet)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    pair = SyncPair.objects.filter(pk=pair_id).first()
    if pair is None:
        raise Http404("No such sync pair")
    if not model_admin.has_change_permission(request, pair):
        raise PermissionDenied
    overdue.queue_check(pair.pk, requested_by=request.user.get_username())
    messages.success(
        request,
        "Overdue check queued: invoices whose due date passed are re-read and their deals updated "
        "(see Overdue checks for what it did).",
    )
    return HttpResponseRedirect(reverse("admin:connector_syncpair_change", args=[pair.pk]))


def check_button(pair) -> str:
    """The pair page's button (submits the page's own form, with its CSRF token, to the check's URL)."""
    url = reverse("admin:connector_syncpair_overdue_check", args=[pair.pk])
    state = OverduePassState.objects.filter(pair=pair).first()
    last = (
        f"Last check: {state.last_pass_on or 'not completed yet'}"
        f"{' (' + state.last_error + ')' if state and state.last_error else ''}. "
        if state
        else "Not checked yet. "
    )
    return format_html(
        '{}<button type="submit" formaction="{}" formmethod="post" class="button">'
        "Run the overdue check now</button>",
        last,
        url,
    )


@admin.register(OverduePassState)
class OverduePassStateAdmin(ReadOnlyAdmin):
    """Each pair's last daily overdue pass: the local date it completed, what it did, why it waits."""

    list_display = ["pair", "last_pass_on", "last_run_at", "last_counts", "last_error"]


@admin.register(OverdueReminder)
class OverdueReminderAdmin(ReadOnlyAdmin):
    """The activities given to deal owners for overdue invoices (one per invoice and due date)."""

    list_display = ["subject", "pair", "due_on", "deal_id", "owner_id", "activity_id", "done_at"]
    list_filter = ["pair", "done_at"]
    search_fields = ["invoice_id", "subject"]
