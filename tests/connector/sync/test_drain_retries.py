"""A Pipedrive outage while draining: the events wait and are retried, never marked failed for good,
and the record is synced once the service answers again."""

from django.utils import timezone
from django_q.models import Schedule

from connector.intake.drain import drain_pair
from connector.models import WebhookEvent
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_an_outage_is_waited_out_and_the_record_synced_afterwards(sync_pair, sandbox, settings):
    settings.API_MAX_RETRIES = 1  # the client's own retries are not under test here
    contact_id = sandbox.create_contact("Outage Foods Ltd", email="accounts@outage.example")
    WebhookEvent.objects.create(
        pair=sync_pair,
        source="xero",
        tenant_id=str(sandbox.organisation.tenant_id),
        category="CONTACT",
        resource_id=contact_id,
        event_type="UPDATE",
        event_time=timezone.now(),
    )
    sandbox.set_faults("pipedrive", error_rate=1.0)

    report = drain_pair(sync_pair.pk)

    row = WebhookEvent.objects.get()
    assert (row.status, report["retried"], report["failed"]) == ("pending", 1, 0), report
    assert row.reason.startswith("will retry (attempt 1 of 5)")
    assert Schedule.objects.filter(name=f"connector: drain pair {sync_pair.pk} later").exists()
    assert sandbox.organizations() == []

    sandbox.set_faults("pipedrive", error_rate=0.0)
    drain_pair(sync_pair.pk)  # what the scheduled drain does

    row.refresh_from_db()
    assert row.status == "done"
    [org] = sandbox.organizations()
    assert org["name"] == "Outage Foods Ltd"
