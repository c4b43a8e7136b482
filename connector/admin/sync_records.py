"""Admin for sync records (the story of each sync, replay), bulk replays and alerts.

Thin: the story, the replay and the estimates are services (audit.story, connector.operations.replay)."""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit import story
from audit.models import Alert, ReplayRun, SyncRecord
from connector.operations import replay

REPLAY_PERMISSION = "audit.replay_syncrecord"


class PeriodFilter(admin.SimpleListFilter):
    title = "when"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        return (("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("older", "Older"))

    def queryset(self, request, queryset):
        spans = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
        now = timezone.now()
        value = self.value()
        if value is not None and value in spans:
            return queryset.filter(finished_at__gte=now - spans[value])
        if value == "older":
            return queryset.filter(finished_at__lt=now - spans["7d"])
        return queryset


class FailedOnlyFilter(admin.SimpleListFilter):
    title = "failed only"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return (("yes", "Failed only"), ("needs", "Failed and not yet replayed"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(outcome=SyncRecord.Outcome.FAILED)
        if self.value() == "needs":
            return queryset.filter(outcome=SyncRecord.Outcome.FAILED, replays__isnull=True)
        return queryset


class XeroTypeFilter(admin.SimpleListFilter):
    title = "Xero record"
    parameter_name = "xero_type"

    def lookups(self, request, model_admin):
        return (("contact", "Contacts"), ("invoice", "Invoices"), ("payment", "Payments"))

    def queryset(self, request, queryset):
        return queryset.filter(xero_type=self.value()) if self.value() else queryset


@admin.register(SyncRecord)
class SyncRecordAdmin(admin.ModelAdmin):
    """Every record sync; the change page tells its story and offers a replay."""

    list_display = ("record", "action_badge", "short_reason", "pipedrive", "finished_at", "pair")
    list_display_links = ("record",)
    list_filter = ("pair", XeroTypeFilter, "outcome", FailedOnlyFilter, "trigger", PeriodFilter)
    search_fields = ("xero_id", "=pipedrive_id", "label")
    list_select_related = ("pair",)
    date_hierarchy = "finished_at"
    actions = ["replay_selected"]
    change_form_template = "admin/audit/syncrecord/story.html"
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # history is never deleted by hand; retention prunes old successes

    def has_replay_permission(self, request, obj=None):
        return request.user.has_perm(REPLAY_PERMISSION)

    def get_search_results(self, request, queryset, search_term):
        # "INV-0042" finds "Invoice INV-0042"; a Xero id is matched whatever its case.
        return super().get_search_results(request, queryset, search_term.strip())

    @admin.display(description="Xero record", ordering="label")
    def record(self, obj):
        return obj.label or f"{obj.xero_type} {obj.xero_id[:13]}…"

    @admin.display(description="action", ordering="outcome")
    def action_badge(self, obj):
        return format_html(
            '<span class="audit-badge audit-{}">{}</span>', obj.outcome, obj.get_outcome_display()
        )

    @admin.display(description="Pipedrive")
    def pipedrive(self, obj):
        return f"{obj.pipedrive_type} {obj.pipedrive_id}" if obj.pipedrive_id else obj.pipedrive_type

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 80 else obj.reason[:79] + "…"

    # --- the story page -----------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "<int:pk>/replay/",
                self.admin_site.admin_view(self.replay_view),
                name="audit_syncrecord_replay",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = get_object_or_404(SyncRecord.objects.select_related("pair", "replay_of"), pk=object_id)
        step = story.next_step(record)
        extra = {
            "title": record.label or f"{record.xero_type} {record.xero_id}".capitalize(),
            "subtitle": None,
            "record": record,
            "xero_link": story.xero_link(record),
            "pipedrive_link": story.pipedrive_link(record),
            "next_step": step,
            "next_step_url": _reverse_or_blank(step.link),
            "replays": story.replay_chain(record),
            "can_replay": self.has_replay_permission(request),
            "replay_problem": replay.replay_problem(record),
            "inbox_url": _inbox_url(record),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def replay_view(self, request, pk):
        if not self.has_replay_permission(request):
            raise PermissionDenied
        record = get_object_or_404(SyncRecord.objects.select_related("pair"), pk=pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:audit_syncrecord_change", args=[pk]))
        try:
            result = replay.replay_one(record)
        except replay.ReplayRefused as refused:
            messages.error(request, f"This record cannot be replayed: {refused}")
            return HttpResponseRedirect(reverse("admin:audit_syncrecord_change", args=[pk]))
        level = messages.SUCCESS if result.succeeded else messages.WARNING
        messages.add_message(request, level, f"Replayed from Xero's current data. {result.message}")
        return HttpResponseRedirect(reverse("admin:audit_syncrecord_change", args=[result.record.pk]))

    # --- bulk replay --------------------------------------------------------------------
    @admin.action(description="Replay selected records from Xero", permissions=["replay"])
    def replay_selected(self, request, queryset):
        if request.POST.get("confirmed") == "yes":
            run = replay.start_bulk_replay(queryset, request.user)
            messages.success(
                request,
                f"Replaying {run.total} record(s) in the background. This page shows the progress.",
            )
            return HttpResponseRedirect(reverse("admin:audit_replayrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay these records?",
            "estimate": replay.estimate(queryset),
            "selected": queryset.values_list("pk", flat=True),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/audit/syncrecord/replay_confirm.html", context)


def _reverse_or_blank(name: str) -> str:
    if not name:
        return ""
    try:
        return reverse(name)
    except Exception:
        return ""


def _inbox_url(record: SyncRecord) -> str:
    if not record.inbox_event_ids:
        return ""
    ids = ",".join(str(i) for i in record.inbox_event_ids)
    return f"{_reverse_or_blank('admin:connector_webhookevent_changelist')}?id__in={ids}"


@admin.register(ReplayRun)
class ReplayRunAdmin(admin.ModelAdmin):
    """Bulk replays and how far each has got."""

    list_display = ("created_at", "progress", "status", "succeeded", "failed", "resumes_at", "created_by")
    list_filter = ("status",)
    change_form_template = "admin/audit/replayrun/change_form.html"  # refreshes itself while running
    fields = (
        "progress",
        "status",
        "message",
        "succeeded",
        "failed",
        "resumes_at",
        "created_by",
        "created_at",
        "finished_at",
        "new_records",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, obj):
        return format_html(
            '<progress max="{}" value="{}"></progress> {} of {} ({}%)',
            obj.total or 1,
            obj.position,
            obj.position,
            obj.total,
            obj.percent,
        )

    @admin.display(description="sync records written")
    def new_records(self, obj):
        url = reverse("admin:audit_syncrecord_changelist") + f"?replay_run__id__exact={obj.pk}"
        return format_html('<a href="{}">{} record(s)</a>', url, obj.records.count())


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("cleared", "Cleared"))

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "cleared":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Incidents: open ones first; each was e-mailed once."""

    list_display = ("opened_at", "kind", "pair", "message", "cleared_at", "emailed_at")
    list_filter = (AlertStateFilter, "kind", "pair")
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
