"""Every record sync writes exactly one sync record telling its story, driven through the sandbox:
created, updated (old → new), unchanged, skipped, deferred (Pipedrive 500 past the retries) and
failed (a missing stage), with the inbox events behind it, the error details and no secret."""

import pytest
from django.utils import timezone

from audit.models import SyncRecord
from connector.intake.drain import drain_pair
from connector.models import WebhookEvent
from connector.sync import sync_records
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture(autouse=True)
def no_client_retries(settings):
    settings.API_MAX_RETRIES = 0  # Pipedrive's 500 is final at once, not after back-off sleeps
    settings.AUDIT_PERSONAL_DATA = "full"


def records(xero_id):
    return list(SyncRecord.objects.filter(xero_id=xero_id).order_by("id"))


def store_event(pair, sandbox, category, resource_id):
    return WebhookEvent.objects.create(
        pair=pair,
        source=WebhookEvent.Source.XERO,
        tenant_id=str(sandbox.organisation.tenant_id),
        category=category,
        resource_id=resource_id,
        event_type="UPDATE",
        event_time=timezone.now(),
    )


def test_created_updated_unchanged_each_write_one_record_with_the_story(sync_pair, sandbox):
    contact_id = sandbox.create_contact("Story Traders Ltd", email="accounts@story.example")
    event = store_event(sync_pair, sandbox, "CONTACT", contact_id)

    drain_pair(sync_pair.pk)

    [created] = records(contact_id)
    [org] = sandbox.organizations()
    assert created.outcome == "created" and created.trigger == "webhook"
    assert created.label == "Story Traders Ltd"
    touched = (created.xero_type, created.pipedrive_type, created.pipedrive_id)
    assert touched == ("contact", "organization", org["id"])
    assert created.inbox_event_ids == [event.pk] and created.attempt == 1
    name_row = next(row for row in created.fields_written if row["field"] == "name")
    assert name_row == {"field": "name", "source": "Name", "new": "Story Traders Ltd", "changed": True}
    assert created.payload_size > 0 and created.error_class == ""

    sandbox.update_contact(contact_id, Name="Story Traders Group Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id])
    updated = records(contact_id)[-1]
    assert len(records(contact_id)) == 2 and updated.outcome == "updated"
    name_row = next(row for row in updated.fields_written if row["field"] == "name")
    assert (name_row["old"], name_row["new"]) == ("Story Traders Ltd", "Story Traders Group Ltd")
    assert updated.label == "Story Traders Group Ltd"

    sync_records(sync_pair, "CONTACT", [contact_id])
    unchanged = records(contact_id)[-1]
    assert len(records(contact_id)) == 3 and unchanged.outcome == "unchanged"
    assert unchanged.pipedrive_id == org["id"]


def test_skipped_failed_and_deferred_each_write_one_record_with_the_error(sync_pair, sandbox):
    contact_id = sandbox.create_contact("Stageless Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id])
    bill = sandbox.create_invoice(contact_id, amount=10, Type="ACCPAY")
    invoice_id = sandbox.create_invoice(contact_id, amount=250)
    number = sandbox.xero_invoice(invoice_id).invoice_number

    sync_records(sync_pair, "INVOICE", [bill, invoice_id])  # no "Xero invoices" pipeline yet

    [skipped] = records(bill)
    assert skipped.outcome == "skipped" and "ACCREC" in skipped.reason
    [failed] = records(invoice_id)
    assert failed.outcome == "failed" and failed.label == f"Invoice {number} · Stageless Ltd"
    assert "pipeline" in failed.reason.lower() or "stage" in failed.reason.lower()
    assert failed.error_class and failed.traceback.startswith("Traceback")
    assert failed.pipedrive_type == "deal" and failed.pipedrive_id is None

    sandbox.add_pipeline("Xero invoices", STAGES)
    sandbox.set_faults("pipedrive", error_rate=1.0)
    sync_records(sync_pair, "INVOICE", [invoice_id])
    deferred = records(invoice_id)[-1]
    assert len(records(invoice_id)) == 2
    assert deferred.outcome == "deferred" and deferred.error_class == "ServerError"
    assert deferred.error_status in (500, 503) and deferred.error_message


def test_personal_data_masked_or_left_out_and_secrets_never_kept(sync_pair, sandbox, settings):
    settings.AUDIT_PERSONAL_DATA = "masked"
    contact_id = sandbox.create_contact(
        "Private Person", Website="https://x.example/?api_token=SECRETVALUE123"
    )
    sync_records(sync_pair, "CONTACT", [contact_id])
    record = records(contact_id)[-1]
    # The record's name is what Pipedrive shows anyway: readable; the values written stay masked.
    assert record.label == "Private Person"
    assert next(r for r in record.fields_written if r["field"] == "name")["new"] == "P•••••• P•••••"
    text = str(record.fields_written)
    assert "Private" not in text and "SECRETVALUE123" not in text

    settings.AUDIT_PERSONAL_DATA = "none"
    sandbox.update_contact(contact_id, Name="Private Person Two")
    sync_records(sync_pair, "CONTACT", [contact_id])
    record = records(contact_id)[-1]
    assert record.label == "Private Person Two"
    assert all(row["new"] is None for row in record.fields_written)
    assert {row["field"] for row in record.fields_written} >= {"name"}
