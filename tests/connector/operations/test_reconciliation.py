"""Reconciliation against the sandboxes: with every webhook delivery dropped, one pass levels Pipedrive;
an unchanged record costs no Pipedrive call; the schedule follows the pair's option."""

import pytest
from django.urls import reverse
from django_q.models import Schedule

from connector.models import ReconciliationState, SyncPair, WebhookEvent
from connector.operations import reconciliation
from connector.sync import sync_records
from mapping.models import RecordLink
from sandbox import clock, webhooks
from sandbox.models import WebhookDelivery
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def wired(sync_pair, sandbox, live_server, settings):
    """The pair's Xero receiver registered as the sandbox app's webhook, deliveries sent by the test."""
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False
    clock.reset()
    url = live_server.url + reverse("webhooks:xero", args=[sync_pair.key])
    subscription = webhooks.register_xero_webhook(
        sync_pair.xero_connection.client_id, url, categories="CONTACT,INVOICE,PAYMENT"
    )
    sync_pair.xero_webhook_key = subscription.signing_key
    sync_pair.save()
    stages = sandbox.add_pipeline("Xero invoices", STAGES)
    yield stages
    clock.reset()


def test_with_webhooks_dropped_one_pass_levels_pipedrive_and_a_quiet_pass_costs_no_pipedrive_call(
    wired, sync_pair, sandbox
):
    stages = wired
    known = sandbox.create_contact("Harbour Foods Ltd")
    invoice = sandbox.create_invoice(known, amount=300)
    sync_records(sync_pair, "INVOICE", [invoice], trigger="webhook")
    assert reconciliation.reconcile_pair(sync_pair.pk)["contacts"]["listed"] >= 1  # sets the mark

    sandbox.set_faults("xero", webhook_drop_rate=1.0)  # Xero's webhooks stop arriving
    clock.advance(2)
    newcomer = sandbox.create_contact("Newcomer Ltd", email="ned@newcomer.example", first_name="Ned")
    second = sandbox.create_invoice(newcomer, amount=80)
    sandbox.pay(invoice, 300)
    sandbox.update_contact(known, Name="Harbour Foods Limited (NZ)")
    webhooks.deliver_pending()
    assert not WebhookEvent.objects.exists()  # nothing reached the inbox
    assert WebhookDelivery.objects.exists()

    sandbox.reset_counters()
    counts = reconciliation.reconcile_pair(sync_pair.pk)
    assert counts["contacts"]["listed"] >= 2 and counts["invoices"]["listed"] >= 2
    orgs = {o["name"]: o for o in sandbox.organizations()}
    assert set(orgs) == {"Harbour Foods Limited (NZ)", "Newcomer Ltd"}
    deals = {d["title"].split(" · ")[1]: d for d in sandbox.deals()}
    assert deals["Harbour Foods Limited (NZ)"]["stage_id"] == stages["Paid"]
    assert deals["Newcomer Ltd"]["stage_id"] == stages["Awaiting payment"]
    assert len(sandbox.notes()) == 1  # the payment's note
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="invoice", xero_id=second).exists()
    state = ReconciliationState.objects.get(pair=sync_pair)
    assert state.last_success_started_at is not None and state.last_error == ""

    # Nothing changed since: the overlap lists the same records again, and none costs a Pipedrive write.
    sandbox.reset_counters()
    again = reconciliation.reconcile_pair(sync_pair.pk)
    assert again["contacts"].get("unchanged", 0) >= 2
    counted = sandbox.counts()
    assert counted.pipedrive_writes == 0, counted
    assert counted.xero_calls <= 4  # one page per kind, and the invoices' contacts for their balances


def test_the_schedule_follows_the_pair_option(sync_pair):
    name = reconciliation.schedule_name(sync_pair.pk)
    schedule = Schedule.objects.get(name=name)
    assert schedule.minutes == 15 and schedule.func == "connector.tasks.reconcile_pair"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.args == repr(sync_pair.pk)

    sync_pair.options = {**sync_pair.options, "reconciliation_interval_minutes": 5}
    sync_pair.save()
    assert Schedule.objects.get(name=name).minutes == 5
    reconciliation.ensure_all_schedules()  # idempotent
    assert Schedule.objects.filter(name=name).count() == 1

    sync_pair.options = {**sync_pair.options, "reconciliation_interval_minutes": 0}
    sync_pair.save()
    assert not Schedule.objects.filter(name=name).exists()
    sync_pair.options = {**sync_pair.options, "reconciliation_only": True}  # no webhooks: never off
    sync_pair.save()
    assert Schedule.objects.get(name=name).minutes == 15

    sync_pair.options = {**sync_pair.options, "reconciliation_interval_minutes": 30}
    sync_pair.enabled = False
    sync_pair.save()
    assert not Schedule.objects.filter(name=name).exists()  # a disabled pair is not reconciled
    sync_pair.enabled = True
    sync_pair.save()
    assert Schedule.objects.get(name=name).minutes == 30

    pair_id = sync_pair.pk
    SyncPair.objects.filter(pk=pair_id).delete()
    assert not Schedule.objects.filter(name=reconciliation.schedule_name(pair_id)).exists()
