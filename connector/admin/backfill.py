"""The backfill page of a sync pair: start a preview → confirm (settling ambiguous matches) → progress.

Thin: every decision is in ``connector.operations.backfill``. URL name ``admin:connector_syncpair_backfill``
(the pair's id as its only argument); the page refreshes itself while a preview or a run is under way.
"""

import datetime as dt

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from connector.admin.readonly import ReadOnlyAdmin
from connector.models import BackfillRun, ReconciliationState, SyncPair
from connector.operations import backfill

REFRESH_SECONDS = 3
PLAN_ROWS = [
    ("Organizations to create", "organizations", "create"),
    ("Organizations matched by their record link", "organizations", "link"),
    ("Organizations matched by the Xero ContactID field", "organizations", "contact_id_field"),
    ("Organizations matched by normalized name", "organizations", "name"),
    ("… of which ambiguous (several candidates: settle them below)", "organizations", "ambiguous"),
    ("Persons to create", "persons", "create"),
    ("Persons matched by link", "persons", "link"),
    ("Persons matched by e-mail", "persons", "email"),
    ("Persons matched by name in their organization", "persons", "name"),
    ("Deals to create", "deals", "create"),
    ("Deals to update", "deals", "update"),
    ("Invoices that get no deal (voided, deleted, deal creation off)", "deals", "skip"),
    ("Invoices that would fail (see the problems below)", "deals", "fail"),
    ("Payment notes to add", "notes", "create"),
    ("Payment notes already there", "notes", "existing"),
]


def backfill_urls(model_admin) -> list:
    site = model_admin.admin_site
    return [
        path(
            "<int:pair_id>/backfill/",
            site.admin_view(lambda request, pair_id: backfill_view(model_admin, request, pair_id)),
            name="connector_syncpair_backfill",
        ),
        path(
            "<int:pair_id>/backfill/progress.json",
            site.admin_view(lambda request, pair_id: progress_json(model_admin, request, pair_id)),
            name="connector_syncpair_backfill_progress",
        ),
    ]


def _pair(model_admin, request, pair_id) -> SyncPair:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    pair = (
        SyncPair.objects.filter(pk=pair_id).select_related("xero_connection", "pipedrive_connection").first()
    )
    if pair is None:
        raise Http404("No such sync pair")
    return pair


def progress_json(model_admin, request, pair_id):
    pair = _pair(model_admin, request, pair_id)
    return JsonResponse(backfill.pair_backfill_state(pair) or {})


def backfill_view(model_admin, request, pair_id):
    pair = _pair(model_admin, request, pair_id)
    here = reverse("admin:connector_syncpair_backfill", args=[pair.pk])
    if request.method == "POST":
        if not model_admin.has_change_permission(request, pair):
            raise PermissionDenied
        try:
            _act(request, pair)
        except backfill.BackfillError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(here)
    run = backfill.active_run(pair)
    latest = run or BackfillRun.objects.filter(pair=pair).first()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Backfill: {pair}",
        "opts": model_admin.model._meta,
        "pair": pair,
        "run": run,
        "latest": latest,
        "progress": backfill.progress(latest) if latest else None,
        "plan_rows": _plan_rows(run) if run and run.plan else [],
        "ambiguities": list(run.ambiguities.order_by("contact_name")[:200]) if run else [],
        "ambiguity_count": run.ambiguities.count() if run else 0,
        "history": _history(pair, run),
        "refresh": REFRESH_SECONDS
        if run and run.status in ("previewing", "queued", "running", "waiting")
        else None,
        "today": dt.date.today().isoformat(),
    }
    return render(request, "admin/connector/syncpair/backfill.html", context)


def _history(pair, run):
    """The pair's ten latest runs, the one under way left out."""
    runs = BackfillRun.objects.filter(pair=pair)
    if run is not None:
        runs = runs.exclude(pk=run.pk)
    return runs[:10]


def _plan_rows(run):
    return [(label, run.plan.get(group, {}).get(key, 0)) for label, group, key in PLAN_ROWS]


def _act(request, pair) -> None:
    action = request.POST.get("action", "")
    user = getattr(request.user, "username", "")
    if action == "preview":
        since_text = request.POST.get("since", "").strip()
        try:
            since = dt.date.fromisoformat(since_text) if since_text else None
        except ValueError:
            raise backfill.BackfillError(f"{since_text!r} is not a date: use YYYY-MM-DD.") from None
        preview = backfill.start_preview(pair, since=since, requested_by=user)
        backfill.enqueue(preview.pk)
        messages.info(
            request, "The preview is being prepared: nothing is written to Pipedrive until you confirm."
        )
        return
    run = backfill.active_run(pair)
    if run is None:
        raise backfill.BackfillError("There is no backfill under way for this pair.")
    if action == "confirm":
        for key, value in request.POST.items():
            if key.startswith("choice-"):
                backfill.resolve(run, key.removeprefix("choice-"), value)
        backfill.confirm(run)
        messages.success(request, "The backfill has started. This page follows its progress.")
    elif action == "pause":
        backfill.pause(run)
        messages.info(request, "Paused. Resume to carry on where it stopped.")
    elif action == "resume":
        backfill.resume(run)
        messages.success(request, "Resumed.")
    elif action == "cancel":
        backfill.cancel(run)
        messages.info(request, "Cancelled. What was already synced stays in Pipedrive.")
    else:
        raise backfill.BackfillError("Unknown action.")


@admin.register(BackfillRun)
class BackfillRunAdmin(ReadOnlyAdmin):
    """Every backfill, with its state; each pair's backfill page starts, follows and controls them."""

    list_display = ["pair", "status", "phase", "created_at", "finished_at", "errors", "open_page"]
    list_filter = ["status"]
    exclude = ["plan", "worker"]

    @admin.display(description="Page")
    def open_page(self, obj):
        url = reverse("admin:connector_syncpair_backfill", args=[obj.pair_id])
        return format_html('<a href="{}">open</a>', url)


@admin.register(ReconciliationState)
class ReconciliationStateAdmin(ReadOnlyAdmin):
    """Each pair's last reconciliation pass: since when it asked Xero, what it did, what went wrong."""

    list_display = ["pair", "last_success_started_at", "last_run_at", "last_error"]
