"""End to end through the inbox: Xero events stored, drained, synced in category order (contacts,
invoices, payments); the same events replayed three times change nothing."""

import datetime as dt

import pytest
from django.utils import timezone

from connector.intake.drain import drain_pair
from connector.models import WebhookEvent
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


def store(pair, sandbox, events, when):
    """The events as the Xero receiver stores them (one row per event)."""
    for category, resource_id in events:
        WebhookEvent.objects.create(
            pair=pair,
            source=WebhookEvent.Source.XERO,
            tenant_id=str(sandbox.organisation.tenant_id),
            category=category,
            resource_id=resource_id,
            event_type="UPDATE",
            event_time=when,
        )


def test_contact_invoice_and_payments_through_the_drain_and_replays(sync_pair, sandbox, stages):
    contact_id = sandbox.create_contact(
        "Drained Customer Ltd",
        persons=[
            {"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@drained.example"},
            {"FirstName": "Bob", "LastName": "Ray", "EmailAddress": "bob@drained.example"},
        ],
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=500)
    part = sandbox.pay(invoice_id, 200, reference="First")
    rest = sandbox.pay(invoice_id, 300, reference="Second")
    # Payments listed first: the drain still syncs the contact, then the invoice, then the payments.
    events = [("PAYMENT", part), ("PAYMENT", rest), ("INVOICE", invoice_id), ("CONTACT", contact_id)]
    moment = timezone.now()
    store(sync_pair, sandbox, events, moment)

    report = drain_pair(sync_pair.pk)

    assert report["done"] == 4 and report["failed"] == 0, report
    [org] = sandbox.organizations()
    assert len(sandbox.persons()) == 2
    [deal] = sandbox.deals()
    assert deal["org_id"] == org["id"] and deal["stage_id"] == stages["Paid"] and deal["status"] == "won"
    assert len(sandbox.notes(deal_id=deal["id"])) == 2

    for replay in range(1, 4):
        store(sync_pair, sandbox, events, moment + dt.timedelta(seconds=replay))
        sandbox.reset_counters()
        report = drain_pair(sync_pair.pk)
        assert report["done"] == 4, report
        assert sandbox.counts().pipedrive_writes == 0, sandbox.counts()
    assert len(sandbox.deals()) == 1 and len(sandbox.notes()) == 2 and len(sandbox.organizations()) == 1
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"done"}
