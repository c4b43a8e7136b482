"""The receivers over real HTTP (live server), fed by the sandbox: Xero's intent-to-receive check,
signed Xero batches from real writes, and Pipedrive deliveries with Basic auth."""

import json

import pytest
from django.urls import reverse

from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, WebhookEvent, XeroConnection
from mapping.models import RecordLink
from sandbox import clock, webhooks
from sandbox.models import WebhookDelivery
from sandbox.xero import accounting, services
from tests.connector.webhook_helpers import PD_PASSWORD, PD_USER, basic, pipedrive_v2

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def sandbox_pair(live_server):
    """A sandbox organisation connected to an app whose webhook points at this pair's receiver."""
    app = services.create_app("Connector", ["http://127.0.0.1/callback/"])
    organisation = services.create_organisation("Webhook Test Ltd")
    services.connect(app, [organisation], "offline_access accounting.contacts.read")
    pair = SyncPair.objects.create(
        name="Sandbox pair",
        xero_connection=XeroConnection.objects.create(
            tenant_id=str(organisation.tenant_id), client_id=app.client_id, status=ConnectionStatus.ACTIVE
        ),
        pipedrive_connection=PipedriveConnection.objects.create(company_id=1, status=ConnectionStatus.ACTIVE),
        pipedrive_webhook_user=PD_USER,
        pipedrive_webhook_password=PD_PASSWORD,
    )
    url = live_server.url + reverse("webhooks:xero", args=[pair.key])
    subscription = webhooks.register_xero_webhook(app.client_id, url, categories="CONTACT,INVOICE,PAYMENT")
    # What the admin does: copy the key from the developer portal into the pair.
    pair.xero_webhook_key = subscription.signing_key
    pair.save()
    return pair, organisation, subscription


def test_xeros_intent_to_receive_passes(sandbox_pair):
    pair, _, subscription = sandbox_pair
    report = webhooks.intent_to_receive(subscription)
    assert report["passed"], report
    assert [(c["expected"], c["status"]) for c in report["checks"]] == [(200, 200), (401, 401)]
    pair.refresh_from_db()
    assert pair.xero_rejected_count == 1  # the deliberately bad signature
    assert WebhookEvent.objects.count() == 0


def test_intent_to_receive_fails_with_the_wrong_key(sandbox_pair):
    pair, _, subscription = sandbox_pair
    pair.xero_webhook_key = webhooks.new_xero_webhook_key()
    pair.save()
    report = webhooks.intent_to_receive(subscription)
    assert not report["passed"]
    assert report["checks"][0]["status"] == 401


def test_real_writes_arrive_signed_and_are_drained(sandbox_pair, fake_sync):
    pair, organisation, _ = sandbox_pair
    contact = accounting.create_contact(organisation, {"Name": "Ridgeway University"})
    for n in range(3):
        accounting.update_contact(contact, {"Name": f"Ridgeway University {n}"})
        clock.advance(10)  # separate deliveries
        webhooks.deliver_pending()
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"sent"}
    rows = WebhookEvent.objects.filter(pair=pair)
    assert rows.count() >= 2
    assert set(rows.values_list("resource_id", flat=True)) == {str(contact.contact_id)}
    assert set(rows.values_list("status", flat=True)) == {"done"}
    assert all(call == ("CONTACT", [str(contact.contact_id)]) for call in fake_sync.calls)


def test_a_pipedrive_delivery_through_the_outbox(
    sandbox_pair, live_server, django_capture_on_commit_callbacks
):
    pair, _, _ = sandbox_pair
    RecordLink.objects.create(
        pair=pair, xero_type="invoice", xero_id="inv-1", pipedrive_type="deal", pipedrive_id=77
    )
    url = live_server.url + reverse("webhooks:pipedrive", args=[pair.key])
    body = json.dumps(pipedrive_v2("deal", "delete", 77, previous={"id": 77})).encode()
    webhooks.queue_delivery("pipedrive", url, body, {"Content-Type": "application/json", **basic()})
    webhooks.deliver_pending()
    assert WebhookDelivery.objects.get().status == "sent"
    assert WebhookEvent.objects.get().status == "done"
    assert RecordLink.objects.get().state == "deleted"
