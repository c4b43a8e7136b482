"""The inbox admin (filters, payload, read-only rows, reprocess) and the pair page's webhook block."""

import datetime as dt
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import SyncPair, WebhookEvent
from tests.connector.webhook_helpers import xero_event

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:connector_webhookevent_changelist")


def event(pair, resource_id, status="pending", category="CONTACT", **fields):
    return WebhookEvent.objects.create(
        pair=pair,
        source="xero",
        tenant_id="tenant-1",
        category=category,
        resource_id=resource_id,
        event_type="UPDATE",
        event_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        status=status,
        payload=xero_event(resource_id),
        **fields,
    )


def test_the_list_filters_by_status_category_and_age(admin_client, pair):
    event(pair, "pending-contact")
    event(pair, "failed-invoice", status="failed", category="INVOICE", reason="RuntimeError: boom")
    old = event(pair, "old-one", status="done")
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=3))

    def listed(query):
        html = admin_client.get(CHANGELIST, query).content.decode()
        return {name for name in ("pending-contact", "failed-invoice", "old-one") if name in html}

    assert listed({}) == {"pending-contact", "failed-invoice", "old-one"}
    assert listed({"status__exact": "failed"}) == {"failed-invoice"}
    assert listed({"category": "INVOICE"}) == {"failed-invoice"}
    assert listed({"age": "hour"}) == {"pending-contact", "failed-invoice"}
    assert listed({"age": "older"}) == {"old-one"}
    assert listed({"pair__id__exact": pair.pk}) == {"pending-contact", "failed-invoice", "old-one"}
    assert "RuntimeError: boom" in admin_client.get(CHANGELIST).content.decode()


def test_an_event_page_is_read_only_and_shows_the_payload(admin_client, pair):
    row = event(pair, "c-42")
    page = admin_client.get(reverse("admin:connector_webhookevent_change", args=[row.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "&quot;resourceId&quot;: &quot;c-42&quot;" in html  # pretty-printed, escaped
    assert 'name="_save"' not in html
    assert (
        admin_client.post(reverse("admin:connector_webhookevent_change", args=[row.pk]), {}).status_code
        == 403
    )
    assert admin_client.get(reverse("admin:connector_webhookevent_add")).status_code == 403


def test_reprocess_sets_rows_pending_and_drains(
    admin_client, pair, fake_sync, django_capture_on_commit_callbacks
):
    failed = event(pair, "c-1", status="failed", reason="ServerError: 502", processed_at=timezone.now())
    done = event(pair, "c-2", status="done")
    busy = event(pair, "c-3", status="processing")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST,
            {"action": "reprocess", "_selected_action": [failed.pk, done.pk, busy.pk]},
            follow=True,
        )
    text = response.content.decode()
    assert "2 event(s) set to pending; a drain was queued for 1 pair(s)." in text
    assert "1 event(s) being processed were left alone." in text
    assert fake_sync.calls == [("CONTACT", ["c-1", "c-2"])]
    statuses = dict(WebhookEvent.objects.values_list("resource_id", "status"))
    assert statuses == {"c-1": "done", "c-2": "done", "c-3": "processing"}
    assert WebhookEvent.objects.get(pk=failed.pk).attempts == 0  # synced on this try: no failed try


def test_the_pair_page_shows_both_urls_and_the_rejections(admin_client, pair, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    SyncPair.objects.filter(pk=pair.pk).update(
        xero_rejected_count=12,
        pipedrive_rejected_count=3,
        last_rejected_at=dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC),
    )
    html = admin_client.get(reverse("admin:connector_syncpair_change", args=[pair.pk])).content.decode()
    assert f"https://connector.example.com/webhooks/xero/{pair.key}/" in html
    assert f"https://connector.example.com/webhooks/pipedrive/{pair.key}/" in html
    assert "Xero signature rejected 12 times" in html and "rejected 3 times" in html
    assert "2026-11-01 08:30:00 UTC" in html
    assert pair.pipedrive_webhook_password not in html
