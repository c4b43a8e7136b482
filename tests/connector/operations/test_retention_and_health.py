"""Retention keeps failures longer than successes and prunes finished inbox rows in batches; the
health page's figures (connector.operations.health) count what the admin lists behind their links show."""

import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Alert, SyncRecord
from audit.services import record_sync
from connector.models import (
    ConnectionStatus,
    DeferredJob,
    PipedriveConnection,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)
from connector.operations import retention
from connector.operations.health import pair_health

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db):
    company = random.randint(10**8, 10**9)
    xero = XeroConnection.objects.create(
        tenant_id=f"tenant-{company}",
        tenant_name="Health Org",
        client_id="c",
        status=ConnectionStatus.ACTIVE,
        expires_at=timezone.now() + timedelta(minutes=20),
    )
    pipedrive = PipedriveConnection.objects.create(
        company_id=company, company_name="Health Co", auth_type="api_token", status=ConnectionStatus.ACTIVE
    )
    return SyncPair.objects.create(name="Health pair", xero_connection=xero, pipedrive_connection=pipedrive)


def aged(record, days):
    SyncRecord.objects.filter(pk=record.pk).update(finished_at=timezone.now() - timedelta(days=days))


def event(pair, status, days=0, source="xero"):
    row = WebhookEvent.objects.create(
        pair=pair, source=source, tenant_id="t", category="CONTACT", resource_id=f"r-{random.random()}",
        event_type="UPDATE", event_time=timezone.now(), status=status,
    )  # fmt: skip
    WebhookEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=days))
    return row


def test_pruning_keeps_failures_and_recent_records_and_unfinished_inbox_rows(pair, settings):
    settings.AUDIT_KEEP_DAYS, settings.AUDIT_KEEP_FAILED_DAYS, settings.INBOX_KEEP_DAYS = 30, 180, 7
    old_ok = [
        record_sync(pair=pair, xero_type="contact", xero_id=f"c{n}", outcome="updated") for n in range(7)
    ]
    for record in old_ok:
        aged(record, 40)
    old_failed = record_sync(pair=pair, xero_type="invoice", xero_id="i1", outcome="failed", reason="x")
    aged(old_failed, 40)
    ancient_failed = record_sync(pair=pair, xero_type="invoice", xero_id="i2", outcome="failed", reason="x")
    aged(ancient_failed, 200)
    recent_ok = record_sync(pair=pair, xero_type="contact", xero_id="c-new", outcome="created")
    done_old, failed_old = event(pair, "done", days=10), event(pair, "failed", days=10)
    done_new = event(pair, "done", days=1)

    counts = retention.prune(batch=3)  # batches of 3: seven old successes take three rounds

    assert counts == {"sync_records": 7, "failed_sync_records": 1, "inbox_events": 1}
    assert set(SyncRecord.objects.values_list("pk", flat=True)) == {old_failed.pk, recent_ok.pk}
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {failed_old.pk, done_new.pk}
    assert not WebhookEvent.objects.filter(pk=done_old.pk).exists()


def test_pair_health_counts_and_links(pair, admin_client):
    now = timezone.now()
    for n in range(3):
        record_sync(pair=pair, xero_type="contact", xero_id=f"c{n}", outcome="created")
    failed = record_sync(pair=pair, xero_type="invoice", xero_id="i1", outcome="failed", reason="No stage")
    aged(record_sync(pair=pair, xero_type="contact", xero_id="old", outcome="created"), 3)
    event(pair, "pending")
    event(pair, "failed")
    DeferredJob.objects.create(
        scope=str(pair.pipedrive_connection.company_id), job_name="backfill", func="x.y",
        run_after=now + timedelta(hours=3),
    )  # fmt: skip
    Alert.objects.create(pair=pair, kind="failures", key="failures:x", message="Too many failures")

    health = pair_health(pair, now)
    figures = {f.label: f for f in health.figures}

    assert figures["Syncs (24 h)"].value == 4 and figures["Failures (24 h)"].value == 1
    assert sum(bar.total for bar in health.hours) == 4 and sum(bar.failed for bar in health.hours) == 1
    assert figures["Waiting in the inbox"].value == 1 and figures["Failed inbox events"].value == 1
    assert figures["Deferred work"].value == 1 and "resumes" in figures["Deferred work"].note
    assert figures["Open alerts"].value == 1
    assert figures["Xero connection"].value == "Connected" and "expires in" in figures["Xero connection"].note
    assert figures["Last Xero webhook"].value.endswith("ago")
    assert "of 30,000 tokens" in figures["Pipedrive budget left today"].value
    # Each figure's link lists the rows it counts.
    listing = admin_client.get(figures["Failures (24 h)"].url)
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert admin_client.get(figures["Syncs (24 h)"].url).context["cl"].result_count == 4
    assert admin_client.get(figures["Waiting in the inbox"].url).context["cl"].result_count == 1
    busiest = max(health.hours, key=lambda bar: bar.total)
    assert admin_client.get(busiest.url).context["cl"].result_count == busiest.total
    assert admin_client.get(figures["Open alerts"].url).context["cl"].result_count == 1

    XeroConnection.objects.filter(pk=pair.xero_connection_id).update(status=ConnectionStatus.BROKEN)
    pair.refresh_from_db()
    assert {f.label: f for f in pair_health(pair).figures}["Xero connection"].status == "bad"
    assert failed.pk


def test_the_admin_home_and_the_health_page_show_the_summary(pair, admin_client):
    record_sync(pair=pair, xero_type="invoice", xero_id="i1", outcome="failed", reason="No stage")
    home = admin_client.get(reverse("admin:index"))
    page = admin_client.get(reverse("audit:health"))
    for response in (home, page):
        assert response.status_code == 200
        assert b"Health pair" in response.content and b"Failures (24 h)" in response.content
    assert b"app-audit" in home.content  # the app list stays below the summary
