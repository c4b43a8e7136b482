"""Admin for sync records (the story of each sync, replay), bulk replays and alerts.

Thin: the story, the replay and the estimates are services (audit.story, connector.operations.replay)."""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit import services, story
from audit.models import Alert, ReplayRun, SyncRecord
from connector.models import SyncPair
from connector.operations import replay
from mapping.rules import xero_url

REPLAY_PERMISSION = "audit.replay_syncrecord"
MAPPING_VIEW_PERMISSION = "mapping.view_fieldmapping"
EMAIL_CUSTOMERS = 50  # customers an e-mail search widens to (an address shared by more is unusual)


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

    # The Pipedrive id is searchable and on the story page: left out so the list fits 1280 pixels.
    list_display = ("record", "customer", "action_badge", "triggered_by", "short_reason", "finished_at")
    list_display_links = ("record",)
    list_filter = ("pair", XeroTypeFilter, "outcome", FailedOnlyFilter, "trigger", PeriodFilter)
    search_fields = ("label", "customer_name", "xero_id", "contact_id", "=pipedrive_id")
    search_help_text = (
        "A customer's name, an invoice number, an exact e-mail address, a Xero id or a Pipedrive id."
    )
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
        # "INV-0042" finds "Invoice INV-0042 · …"; a Xero id is matched whatever its case. An e-mail is
        # matched exactly through its keyed hash (the address itself is not stored), and finds every
        # record of the customers that carry it.
        term = search_term.strip()
        if services.looks_like_email(term):
            return email_search(queryset, term), False
        return super().get_search_results(request, queryset, term)

    @admin.display(description="Xero record", ordering="label")
    def record(self, obj):
        return obj.label or f"{obj.xero_type} {obj.xero_id[:13]}…"

    @admin.display(description="customer", ordering="customer_name")
    def customer(self, obj):
        url = timeline_url(obj)
        name = obj.customer_name or ("(timeline)" if url else "")
        return (
            format_html('<a href="{}" title="Every sync of this customer">{}</a>', url, name) if url else name
        )

    @admin.display(description="triggered by", ordering="trigger")
    def triggered_by(self, obj):
        return obj.trigger_description

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
            path(
                "customer/<int:pair_id>/<str:contact_id>/",
                self.admin_site.admin_view(self.timeline_view),
                name="audit_syncrecord_timeline",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = get_object_or_404(SyncRecord.objects.select_related("pair", "replay_of"), pk=object_id)
        step = story.next_step(record)
        rows = story.field_rows(record)
        extra = {
            "title": record.label or f"{record.xero_type} {record.xero_id}".capitalize(),
            "subtitle": None,
            "record": record,
            "xero_link": story.xero_link(record),
            "pipedrive_link": story.pipedrive_link(record),
            "next_step": step,
            "next_step_url": _reverse_or_blank(step.link),
            "replays": story.replay_chain(record),
            "changed_rows": [row for row in rows if row.changed],
            "unchanged_rows": [row for row in rows if not row.changed],
            "can_see_mappings": request.user.has_perm(MAPPING_VIEW_PERMISSION),
            "timeline_url": timeline_url(record),
            "can_replay": self.has_replay_permission(request),
            "replay_problem": replay.replay_problem(record),
            "inbox_url": _inbox_url(record),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def timeline_view(self, request, pair_id, contact_id):
        """Every sync of one customer (contact, organization and persons, invoices, payments), newest
        first. Read-only: whoever may view sync records may view it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        pair = SyncPair.objects.filter(pk=pair_id).first()
        rows = story.customer_records(pair_id, contact_id).select_related("pair")
        records = list(rows[: story.TIMELINE_LIMIT + 1])
        if not records:
            raise Http404("No sync records of this customer.")
        name = story.customer_name(pair_id, contact_id) or contact_id
        organization = next(
            (
                r
                for r in records
                if r.xero_type == "contact" and r.pipedrive_type == "organization" and r.pipedrive_id
            ),
            None,
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Every sync of {name}",
            "customer": name,
            "pair": pair,
            "contact_id": contact_id,
            "records": records[: story.TIMELINE_LIMIT],
            "more": len(records) > story.TIMELINE_LIMIT,
            "limit": story.TIMELINE_LIMIT,
            "xero_link": xero_url("contact", contact_id),
            "pipedrive_link": story.pipedrive_link(organization) if organization else "",
            "counts": {
                kind: sum(1 for r in records if r.xero_type == kind)
                for kind in ("contact", "invoice", "payment")
            },
        }
        return TemplateResponse(request, "admin/audit/syncrecord/timeline.html", context)

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
            "names": list(queryset.order_by("-id")[:20]),
            "selected": queryset.values_list("pk", flat=True),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/audit/syncrecord/replay_confirm.html", context)


def email_search(queryset, address: str):
    """The records carrying this exact e-mail (by its keyed hash) and every record of their customers."""
    key = services.email_key(address)
    carrying = queryset.filter(email_keys__contains=f" {key} ")
    customers = carrying.exclude(contact_id="").values_list("pair_id", "contact_id").distinct()
    wanted = Q(pk__in=carrying.values("pk"))
    for pair_id, contact_id in customers[:EMAIL_CUSTOMERS]:
        wanted |= Q(pair_id=pair_id, contact_id__iexact=contact_id)
    return queryset.filter(wanted)


def timeline_url(record: SyncRecord) -> str:
    """The customer's timeline, for a record that names its customer."""
    contact_id = record.contact_id or (record.xero_id if record.xero_type == "contact" else "")
    if not contact_id or record.pair_id is None or "/" in contact_id:
        return ""
    return reverse("admin:audit_syncrecord_timeline", args=[record.pair_id, contact_id])


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
        "records_replayed",
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

    @admin.display(description="records replayed")
    def records_replayed(self, obj):
        """The names of the records the run replays (the first 20), each linked to its story."""
        rows = SyncRecord.objects.filter(pk__in=(obj.record_ids or [])[:20]).order_by("-id")
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a></li>',
            (
                (reverse("admin:audit_syncrecord_change", args=[r.pk]), str(r.label or r.xero_id))
                for r in rows
            ),
        )
        more = len(obj.record_ids or []) - 20
        return format_html("<ul>{}</ul>{}", items, f"and {more} more" if more > 0 else "")


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
