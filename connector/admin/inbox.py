"""Admin for the webhook inbox: read-only rows with filters, the raw payload, and "reprocess"."""

import functools
import json
from datetime import timedelta

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html

from connector.intake.inbox import request_drain
from connector.models import WebhookEvent
from connector.operations.replay import replay_inbox_events


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return (("hour", "Last hour"), ("day", "Last day"), ("older", "Older than a day"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "hour":
            return queryset.filter(received_at__gte=now - timedelta(hours=1))
        if self.value() == "day":
            return queryset.filter(received_at__gte=now - timedelta(days=1))
        if self.value() == "older":
            return queryset.filter(received_at__lt=now - timedelta(days=1))
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = (
        "received_at",
        "pair",
        "source",
        "category",
        "event_type",
        "resource_id",
        "status",
        "attempts",
        "short_reason",
    )
    list_filter = ("pair", "source", "category", "status", AgeFilter)
    search_fields = ("resource_id", "tenant_id")
    list_select_related = ("pair",)
    date_hierarchy = "received_at"
    actions = ["reprocess", "replay_from_xero"]
    fields = (
        "pair",
        "source",
        "tenant_id",
        "category",
        "event_type",
        "resource_id",
        "event_time",
        "status",
        "reason",
        "attempts",
        "lost_claims",
        "received_at",
        "claimed_at",
        "processed_at",
        "payload_pretty",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The list (and its action) needs "change"; a single event is shown read-only.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="Reason")
    def short_reason(self, obj):
        return obj.reason[:80] + ("…" if len(obj.reason) > 80 else "")

    @admin.display(description="Payload (as received)")
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.action(description="Reprocess selected events", permissions=["change"])
    def reprocess(self, request, queryset):
        with transaction.atomic():
            events = queryset.exclude(status=WebhookEvent.Status.PROCESSING)
            pair_ids = set(events.values_list("pair_id", flat=True))
            count = events.update(
                status=WebhookEvent.Status.PENDING,
                reason="",
                claimed_at=None,
                claim_token="",
                processed_at=None,
                lost_claims=0,
            )
            for pair_id in pair_ids:
                transaction.on_commit(functools.partial(request_drain, pair_id, force=True))
        skipped = queryset.filter(status=WebhookEvent.Status.PROCESSING).count()
        text = f"{count} event(s) set to pending; a drain was queued for {len(pair_ids)} pair(s)."
        if skipped:
            text += f" {skipped} event(s) being processed were left alone."
        messages.success(request, text)

    def has_replay_permission(self, request):
        return request.user.has_perm("audit.replay_syncrecord")

    @admin.action(description="Replay from Xero now (failed events)", permissions=["replay"])
    def replay_from_xero(self, request, queryset):
        """Each failed Xero event's record is fetched from Xero and synced now, with a sync record
        linked to the last one (connector.operations.replay); the event is marked done or failed."""
        failed = queryset.filter(status=WebhookEvent.Status.FAILED, source=WebhookEvent.Source.XERO)
        results = replay_inbox_events(list(failed.select_related("pair")))
        good = sum(1 for r in results if r.succeeded)
        text = f"Replayed {len(results)} event(s): {good} synced, {len(results) - good} still failing."
        if queryset.count() > failed.count():
            text += " Events that had not failed, or came from Pipedrive, were left alone."
        messages.success(request, text) if good == len(results) else messages.warning(request, text)
