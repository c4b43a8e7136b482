"""Alerts: each incident (broken connection, silent webhooks, low Pipedrive budget, work deferred to
tomorrow, failures above the threshold) is e-mailed once, stays open while its cause lasts, and
clears when the cause is gone; a new occurrence is a new incident with its own e-mail."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Alert, SyncRecord
from audit.services import record_sync
from connector.limits.ratelimit import PipedriveLimiter
from connector.models import (
    ConnectionStatus,
    DeferredJob,
    PipedriveConnection,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)
from connector.operations import alerts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def recipients(settings):
    settings.ALERT_EMAILS = ["finance-lead@example.com", "it@example.com"]
    settings.ALERT_FAILURES_PER_HOUR = 5
    settings.PIPEDRIVE_DAILY_TOKENS = 30000
    settings.PIPEDRIVE_BUDGET_RESERVE = 1000


@pytest.fixture
def pair(db):
    # A company id of its own: limit windows may live in a Redis shared across runs.
    company = random.randint(10**8, 10**9)
    xero = XeroConnection.objects.create(
        tenant_id=f"tenant-{company}", tenant_name="Alert Org", client_id="c", status=ConnectionStatus.ACTIVE
    )
    pipedrive = PipedriveConnection.objects.create(
        company_id=company, company_name="Alert Co", auth_type="api_token", status=ConnectionStatus.ACTIVE
    )
    return SyncPair.objects.create(name="Alert pair", xero_connection=xero, pipedrive_connection=pipedrive)


def kinds():
    return sorted(Alert.objects.filter(cleared_at__isnull=True).values_list("kind", flat=True))


def test_a_broken_connection_is_mailed_once_and_clears_when_reconnected(pair, mailoutbox):
    XeroConnection.objects.filter(pk=pair.xero_connection_id).update(
        status=ConnectionStatus.BROKEN, last_error="Xero refused the refresh token (invalid_grant)"
    )
    assert alerts.evaluate()["opened"] == 1
    assert alerts.evaluate()["opened"] == 0  # still broken: the same incident, no second e-mail
    assert kinds() == ["connection_broken"]
    [mail] = mailoutbox
    assert mail.to == ["finance-lead@example.com", "it@example.com"]
    assert "invalid_grant" in mail.body and "reconnects" in mail.body

    XeroConnection.objects.filter(pk=pair.xero_connection_id).update(status=ConnectionStatus.ACTIVE)
    assert alerts.evaluate()["cleared"] == 1
    assert kinds() == [] and len(mailoutbox) == 1
    alert = Alert.objects.get()
    assert alert.cleared_at is not None and alert.emailed_at is not None

    XeroConnection.objects.filter(pk=pair.xero_connection_id).update(status=ConnectionStatus.BROKEN)
    alerts.evaluate()
    assert len(mailoutbox) == 2 and Alert.objects.count() == 2  # a new incident, its own e-mail


def test_failures_above_the_threshold_alert_once_then_clear(pair, mailoutbox):
    for n in range(4):
        record_sync(pair=pair, xero_type="invoice", xero_id=f"i-{n}", outcome="failed", reason="no stage")
    alerts.evaluate()
    assert kinds() == []  # 4 < 5
    record_sync(pair=pair, xero_type="invoice", xero_id="i-5", outcome="failed", reason="no stage")
    alerts.evaluate()
    alerts.evaluate()
    assert kinds() == ["failures"] and len(mailoutbox) == 1
    assert "5 records" in mailoutbox[0].body and "replay" in mailoutbox[0].body

    SyncRecord.objects.update(finished_at=timezone.now() - timedelta(hours=2))
    alerts.evaluate()
    assert kinds() == [] and len(mailoutbox) == 1


def test_a_low_budget_says_why_and_deferred_work_alerts_until_done(pair, mailoutbox):
    record_sync(pair=pair, xero_type="contact", xero_id="c-1", outcome="created")
    PipedriveLimiter(str(pair.pipedrive_connection.company_id)).spend(29_500)
    job = DeferredJob.objects.create(
        scope=str(pair.pipedrive_connection.company_id),
        job_name="backfill contacts",
        func="connector.tasks.sweep_inbox",
        run_after=timezone.now() + timedelta(hours=5),
    )
    alerts.evaluate()
    assert kinds() == ["budget_low", "work_deferred"] and len(mailoutbox) == 2
    budget = Alert.objects.get(kind="budget_low").message
    assert "500 of 30,000" in budget and "seats" in budget and "plan" in budget
    assert "1 webhook sync" in budget
    assert "backfill contacts" in Alert.objects.get(kind="work_deferred").message

    DeferredJob.objects.filter(pk=job.pk).update(status=DeferredJob.Status.DONE)
    alerts.evaluate()
    assert kinds() == ["budget_low"] and len(mailoutbox) == 2


def test_silent_webhooks_alert_only_while_changes_are_expected(pair, mailoutbox, settings):
    pair.options = {**pair.options, "webhook_silence_alert_hours": 6}
    pair.save()
    SyncPair.objects.filter(pk=pair.pk).update(created_at=timezone.now() - timedelta(days=3))
    long_ago = timezone.now() - timedelta(hours=8)

    def event(source, when):
        row = WebhookEvent.objects.create(
            pair=pair, source=source, tenant_id="t", category="CONTACT", resource_id=str(when.timestamp()),
            event_type="UPDATE", event_time=when,
        )  # fmt: skip
        WebhookEvent.objects.filter(pk=row.pk).update(received_at=when)

    alerts.evaluate()
    assert kinds() == []  # nothing ever received, nothing written: no change expected

    event("xero", long_ago)
    alerts.evaluate()
    assert kinds() == ["webhooks_silent"]
    assert "No Xero webhook" in Alert.objects.get().message

    # The connector wrote to Pipedrive, which reports its own writes by webhook: none came.
    written = record_sync(pair=pair, xero_type="contact", xero_id="c-1", outcome="updated")
    alerts.evaluate()
    assert kinds() == ["webhooks_silent"]  # written a moment ago: its webhook may still be on its way
    SyncRecord.objects.filter(pk=written.pk).update(finished_at=timezone.now() - timedelta(hours=1))
    alerts.evaluate()
    assert kinds() == ["webhooks_silent", "webhooks_silent"] and len(mailoutbox) == 2

    event("xero", timezone.now())
    event("pipedrive", timezone.now())
    alerts.evaluate()
    assert kinds() == [] and len(mailoutbox) == 2


def test_without_recipients_the_alert_is_still_recorded(pair, settings, mailoutbox):
    settings.ALERT_EMAILS = []
    settings.ADMINS = [("Ops", "ops@example.com")]
    PipedriveConnection.objects.filter(pk=pair.pipedrive_connection_id).update(status=ConnectionStatus.BROKEN)
    alerts.evaluate()
    assert mailoutbox[0].to == ["ops@example.com"]
    settings.ADMINS = []
    XeroConnection.objects.filter(pk=pair.xero_connection_id).update(status=ConnectionStatus.BROKEN)
    alerts.evaluate()
    assert len(mailoutbox) == 1 and kinds() == ["connection_broken", "connection_broken"]
