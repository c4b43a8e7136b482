"""Replay, as finance does it in the admin: a failed sync (a missing stage; Pipedrive answering 500
past the retries) is replayed after the cause is fixed and succeeds, the new record linked to the
one replayed, history kept, no duplicate in Pipedrive; also from a failed inbox event."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import SyncRecord
from connector.models import WebhookEvent
from connector.sync import sync_records
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture(autouse=True)
def no_client_retries(settings):
    settings.API_MAX_RETRIES = 0


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


def replay(client, record):
    return client.post(reverse("admin:audit_syncrecord_replay", args=[record.pk]), follow=True)


def test_a_missing_stage_failure_is_replayed_after_the_fix_and_succeeds(sync_pair, sandbox, finance):
    contact_id = sandbox.create_contact("Replay Customer Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=420)
    sync_records(sync_pair, "INVOICE", [invoice_id])
    failed = SyncRecord.objects.get(xero_id=invoice_id)
    assert failed.outcome == "failed" and sandbox.deals() == []

    story = finance.get(reverse("admin:audit_syncrecord_change", args=[failed.pk]))
    assert story.status_code == 200
    assert b"What to do next" in story.content and b"Stage mappings" in story.content
    assert b"Replay from Xero now" in story.content

    still = replay(finance, failed)  # cause not fixed yet: fails again, as a new linked record
    assert still.status_code == 200
    second = SyncRecord.objects.filter(xero_id=invoice_id).latest("id")
    assert second.outcome == "failed" and second.replay_of_id == failed.pk and second.trigger == "replay"

    sandbox.add_pipeline("Xero invoices", STAGES)
    sandbox.update_invoice(invoice_id, Reference="changed after the failure")  # replay reads Xero now
    page = replay(finance, second)

    assert page.status_code == 200 and b"created" in page.content.lower()
    done = SyncRecord.objects.filter(xero_id=invoice_id).latest("id")
    assert done.outcome == "created" and done.replay_of_id == second.pk and done.attempt == 3
    [deal] = sandbox.deals()
    assert done.pipedrive_id == deal["id"] and float(deal["value"]) == 420
    # History is kept: every record is still there, in order, linked.
    assert list(
        SyncRecord.objects.filter(xero_id=invoice_id).values_list("outcome", flat=True).order_by("id")
    ) == [
        "failed",
        "failed",
        "created",
    ]
    assert replay(finance, done).status_code == 200  # replaying a success changes nothing in Pipedrive
    assert len(sandbox.deals()) == 1
    assert SyncRecord.objects.filter(xero_id=invoice_id).latest("id").outcome == "unchanged"


def test_a_pipedrive_500_past_the_retries_is_replayed_once_pipedrive_is_back(sync_pair, sandbox, finance):
    sandbox.add_pipeline("Xero invoices", STAGES)
    contact_id = sandbox.create_contact("Outage Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id])
    invoice_id = sandbox.create_invoice(contact_id, amount=99)
    sandbox.set_faults("pipedrive", error_rate=1.0)
    sync_records(sync_pair, "INVOICE", [invoice_id])
    deferred = SyncRecord.objects.get(xero_id=invoice_id)
    assert deferred.outcome == "deferred" and deferred.error_status in (500, 503)

    sandbox.set_faults("pipedrive", error_rate=0)
    replay(finance, deferred)

    done = SyncRecord.objects.filter(xero_id=invoice_id).latest("id")
    assert done.outcome == "created" and done.replay_of_id == deferred.pk
    assert len(sandbox.deals()) == 1


def test_a_failed_inbox_event_is_replayed_from_the_inbox(sync_pair, sandbox, finance):
    contact_id = sandbox.create_contact("Inbox Replay Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=10)
    event = WebhookEvent.objects.create(
        pair=sync_pair,
        source=WebhookEvent.Source.XERO,
        tenant_id=str(sandbox.organisation.tenant_id),
        category="INVOICE",
        resource_id=invoice_id,
        event_type="UPDATE",
        event_time=timezone.now(),
    )
    from connector.intake.drain import drain_pair

    drain_pair(sync_pair.pk)
    event.refresh_from_db()
    assert event.status == "failed"  # no pipeline: the invoice failed
    first = SyncRecord.objects.get(xero_id=invoice_id)
    assert first.inbox_event_ids == [event.pk]

    sandbox.add_pipeline("Xero invoices", STAGES)
    page = finance.post(
        reverse("admin:connector_webhookevent_changelist"),
        {"action": "replay_from_xero", "_selected_action": [event.pk]},
        follow=True,
    )

    assert page.status_code == 200 and b"1 synced" in page.content
    event.refresh_from_db()
    assert event.status == "done" and event.reason.startswith("Replayed")
    done = SyncRecord.objects.filter(xero_id=invoice_id).latest("id")
    assert done.outcome == "created" and done.replay_of_id == first.pk
    assert len(sandbox.deals()) == 1
