"""The connector registers the pair's Pipedrive webhooks itself (the password is never shown), and
what Pipedrive then sends reaches the receiver with those credentials."""

import pytest

from connector.models import SyncPair, WebhookEvent
from connector.setup.pipedrive_webhooks import WEBHOOK_OBJECTS, receiver_url, register_pipedrive_webhooks
from sandbox.pipedrive.models import Webhook
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


@pytest.fixture
def public_here(settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url


def hooks_of(pair):
    return Webhook.objects.filter(subscription_url=receiver_url(pair)).order_by("event_object")


def test_registering_creates_one_webhook_per_object_and_is_safe_to_repeat(public_here, sync_pair, sandbox):
    report = register_pipedrive_webhooks(sync_pair)

    assert len(report.created) == 3 and report.deleted == []
    hooks = hooks_of(sync_pair)
    assert sorted(h.event_object for h in hooks) == sorted(WEBHOOK_OBJECTS)
    assert {(h.event_action, h.version, h.http_auth_user) for h in hooks} == {
        ("*", "2.0", sync_pair.pipedrive_webhook_user)
    }
    assert {h.http_auth_password for h in hooks} == {sync_pair.pipedrive_webhook_password}

    sandbox.reset_counters()
    again = register_pipedrive_webhooks(sync_pair)
    assert again.created == [] and sorted(again.kept) == sorted(report.created)
    assert sandbox.counts().pipedrive_calls_to("POST /api/v1/webhooks") == 0
    assert hooks_of(sync_pair).count() == 3


def test_replace_and_stale_duplicates(public_here, sync_pair, sandbox):
    first = register_pipedrive_webhooks(sync_pair)
    # A stale webhook of ours (v1 payloads) beside the good ones: removed on the next registration.
    stale = Webhook.objects.get(pk=first.created[0])
    stale.pk = None
    stale.version = "1.0"
    stale.save()
    report = register_pipedrive_webhooks(sync_pair)
    assert report.deleted == [stale.pk] and report.created == []

    replaced = register_pipedrive_webhooks(sync_pair, replace=True)
    assert sorted(replaced.deleted) == sorted(first.created) and len(replaced.created) == 3
    assert hooks_of(sync_pair).count() == 3


def test_pipedrive_events_reach_the_receiver_with_the_registered_credentials(public_here, sync_pair, sandbox):
    register_pipedrive_webhooks(sync_pair)
    org_id = sandbox.pipedrive_create("organization", {"name": "Kauri Traders"})
    sandbox.pipedrive_update("organization", org_id, {"name": "Kauri Traders Ltd"})

    stored = WebhookEvent.objects.filter(pair=sync_pair, source="pipedrive", resource_id=str(org_id))
    assert set(stored.values_list("event_type", flat=True)) == {"create", "change"}
    sync_pair.refresh_from_db()
    assert sync_pair.pipedrive_rejected_count == 0


def test_adding_a_pair_in_the_admin_registers_its_webhooks(public_here, admin_client, sync_pair, sandbox):
    second = sync_pair.pipedrive_connection
    second.pk = None  # another connection row to the same sandbox company (one pair per two connections)
    second.save()
    response = admin_client.post(
        "/admin/connector/syncpair/add/",
        {
            "name": "Second pair",
            "xero_connection": sync_pair.xero_connection.pk,
            "pipedrive_connection": second.pk,
            "enabled": "on",
            "options": "{}",
        },
        follow=True,
    )
    assert response.status_code == 200
    pair = SyncPair.objects.get(name="Second pair")
    assert hooks_of(pair).count() == 3
    assert "3 created" in response.content.decode()


def test_a_failed_registration_says_what_to_do(public_here, admin_client, sync_pair, sandbox):
    sandbox.set_faults("pipedrive", error_rate=1.0)
    second = sync_pair.pipedrive_connection
    second.pk = None
    second.save()
    response = admin_client.post(
        "/admin/connector/syncpair/add/",
        {"name": "Third pair", "xero_connection": sync_pair.xero_connection.pk,
         "pipedrive_connection": second.pk, "enabled": "on", "options": "{}"},
        follow=True,
    )  # fmt: skip
    assert SyncPair.objects.filter(name="Third pair").exists()  # the pair is saved all the same
    assert "Register Pipedrive webhooks" in response.content.decode()
