"""The whole chain, nothing faked: finance staff write in sandbox Xero, the sandbox sends signed
webhooks (duplicated and newest first, by its fault switches) to the connector's receiver on the
live server, the inbox stores them, a worker drains them, and the sync writes sandbox Pipedrive.

The broker is played by the test: drain requests are noted, and the test runs the drain as a
worker would once the deliveries are in, so out-of-order events for one contact coalesce into one
sync of the record as Xero has it now.
"""

import pytest
from django.urls import reverse

from audit.models import SyncRecord
from connector.intake.drain import drain_pair
from connector.intake.inbox import drain_requests
from connector.models import WebhookEvent
from sandbox import clock, faults, webhooks
from sandbox.models import WebhookDelivery
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def wired(sync_pair, sandbox, live_server, settings, monkeypatch):
    """The pair's Xero receiver registered as the sandbox app's webhook; drain requests noted."""
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False  # the test sends the deliveries
    clock.reset()
    url = live_server.url + reverse("webhooks:xero", args=[sync_pair.key])
    subscription = webhooks.register_xero_webhook(
        sync_pair.xero_connection.client_id, url, categories="CONTACT,INVOICE,PAYMENT"
    )
    sync_pair.xero_webhook_key = subscription.signing_key
    sync_pair.save()
    requested = []
    # Every drain task is sent through enqueue_drain (after the flag check, in or after the transaction).
    monkeypatch.setattr(drain_requests, "enqueue_drain", requested.append)
    sandbox.add_pipeline("Xero invoices", STAGES)
    yield requested
    clock.reset()


def deliver_everything():
    """Send every due delivery; the clock moves on so retries (if any) fall due too."""
    for _ in range(5):
        webhooks.deliver_pending()
        if not WebhookDelivery.objects.filter(status__in=["pending", "sending"]).exists():
            return
        clock.advance(200)
    raise AssertionError("the sandbox could not deliver its webhooks to the receiver")


def test_reordered_duplicated_webhooks_become_one_sync_of_the_current_records(wired, sync_pair, sandbox):
    contact_id = sandbox.create_contact(
        "Harbour Foods Ltd",
        persons=[
            {"FirstName": "Ana", "LastName": "Kerr", "EmailAddress": "ana@harbour.example"},
            {"FirstName": "Tui", "LastName": "Ngata", "EmailAddress": "tui@harbour.example"},
        ],
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=420)
    for name in ("Harbour Foods Limited", "Harbour Fine Foods Ltd", "Harbour Fine Foods Limited"):
        clock.advance(10)  # separate events (and deliveries) for each rename
        sandbox.update_contact(contact_id, Name=name)
    faults.set_faults("xero", webhook_reorder=True, webhook_duplicate_rate=1.0)

    deliver_everything()

    rows = WebhookEvent.objects.filter(pair=sync_pair)
    contact_rows = rows.filter(category="CONTACT", resource_id=contact_id)
    assert contact_rows.count() >= 4  # create + 3 renames, each stored once despite the duplicates
    assert rows.filter(category="INVOICE", resource_id=invoice_id).exists()
    assert set(rows.values_list("status", flat=True)) == {"pending"}
    assert wired and set(wired) == {sync_pair.pk}  # the receiver asked for a drain
    sandbox.reset_counters()

    report = drain_pair(sync_pair.pk)  # the worker

    assert report["failed"] == 0, report
    assert set(rows.values_list("status", flat=True)) == {"done"}
    [org] = sandbox.organizations()
    assert org["name"] == "Harbour Fine Foods Limited"  # the current name, whatever the order
    assert sorted(p["name"] for p in sandbox.persons()) == ["Ana Kerr", "Tui Ngata"]
    assert all(p["org_id"] == org["id"] for p in sandbox.persons())
    [deal] = sandbox.deals()
    assert deal["org_id"] == org["id"] and sandbox.stage_name(deal["stage_id"]) == "Awaiting payment"
    assert float(deal["value"]) == 420
    counts = sandbox.counts()
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 1, counts
    assert counts.pipedrive_calls_to("PATCH /api/v2/organizations/{id}") == 0, counts
    created = SyncRecord.objects.filter(pair=sync_pair, xero_type="contact", xero_id=contact_id)
    assert created.filter(outcome="created").count() == 1

    # Xero sends the same again (at least once): nothing more is written.
    WebhookDelivery.objects.update(status="pending", next_attempt_at=clock.now())
    deliver_everything()
    sandbox.reset_counters()
    drain_pair(sync_pair.pk)
    assert sandbox.counts().pipedrive_writes == 0
    assert len(sandbox.organizations()) == 1 and len(sandbox.deals()) == 1
