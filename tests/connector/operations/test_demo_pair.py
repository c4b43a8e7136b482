"""The demo run's ready-made pair: the sandbox's demo accounts joined, the initial load drained into
sandbox Pipedrive, and a later Xero change arriving through the webhook it registered."""

import pytest
from django.core.management import call_command

from connector.intake.drain import drain_pair
from connector.intake.inbox import drain_requests
from connector.models import SyncPair, WebhookEvent
from connector.setup.status import setup_status
from sandbox import webhooks
from sandbox.pipedrive.models import Deal, Organization
from sandbox.xero import accounting
from sandbox.xero.models import Contact
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


@pytest.fixture
def demo_settings(settings, sandbox_urls, live_server, default_rules, monkeypatch):
    """As under `make run`, with the test playing the task workers: webhooks are sent and inboxes
    drained when the test says so."""
    settings.SANDBOX_ENABLED = True
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False
    monkeypatch.setattr(drain_requests, "enqueue_drain", lambda pair_id: None)  # the test plays the workers
    call_command("sandbox_xero_seed")
    call_command("sandbox_pipedrive_seed")


def test_the_demo_pair_syncs_the_demo_data_and_later_changes(demo_settings):
    call_command("sandbox_demo_pair")
    call_command("sandbox_demo_pair")  # idempotent
    pair = SyncPair.objects.get()
    # The guided setup shows the demo pair as set up, with nothing left for the user to do.
    status = setup_status(pair)
    assert status.complete, [(step.key, step.state, step.problem) for step in status.steps]
    queued = WebhookEvent.objects.filter(pair=pair, status="pending").count()
    assert queued > 0

    report = drain_pair(pair.pk)

    assert report["failed"] == 0, report
    contacts = Contact.objects.filter(organisation__tenant_id=pair.xero_connection.tenant_id)
    assert Organization.objects.count() == contacts.count()
    assert Deal.objects.exists()

    # A change in Xero now reaches Pipedrive through the registered webhook.
    contact = contacts.first()
    accounting.update_contact(contact, {"Name": "Renamed In Xero Ltd"})
    assert webhooks.deliver_pending() >= 1  # with the echoes of the first sync's Pipedrive writes
    drain_pair(pair.pk)
    assert Organization.objects.filter(name="Renamed In Xero Ltd").count() == 1
    assert Organization.objects.count() == contacts.count()
