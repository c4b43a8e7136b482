"""The daily overdue pass against the sandboxes: the clock moves past an invoice's due date and, with no
change in Xero, the pass re-reads the invoice and its contact so the deal's stage (the Overdue rule),
the organization's figures and the audit follow; a second pass the same day reads and writes nothing;
a payment moves the deal on; the pass waits for a low budget; the schedule starts it once a local day
after the pair's set time; the manual check needs the pair's change permission.

Time: the connector's clock (``connector.clock.now``) is pointed at the sandbox's clock and the sandbox's
clock is moved, so both sides see the same day (see ``connector/clock.py``).
"""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from audit.models import SyncRecord
from connector import clock
from connector.clients.pipedrive import PipedriveClient
from connector.errors import ConnectionBroken
from connector.models import KnownContact, KnownInvoice, OverduePassState, OverdueReminder
from connector.operations import overdue
from connector.sync import sync_records
from connector.sync.invoices import sync_invoices
from mapping.models import CreditLimit, FieldMapping, StageMapping
from sandbox import clock as sandbox_clock
from sandbox.pipedrive.models import Activity
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Overdue", "Part paid", "Paid", "Voided"]
DAY = 24 * 3600


@pytest.fixture
def moved_clock(monkeypatch):
    """One clock for both sides: the connector reads the sandbox's clock, which the test moves."""
    # From noon (UTC, the pair's zone: its consent lacks the settings scope) of tomorrow, so that a
    # test's "three days on" and "half an hour later" fall on the same local day at any time of day
    # the suite runs, and after the default check time (06:00).
    tomorrow = timezone.now().date() + dt.timedelta(days=1)
    sandbox_clock.move_to(dt.datetime.combine(tomorrow, dt.time(12), tzinfo=dt.UTC))
    monkeypatch.setattr(clock, "now", sandbox_clock.now)
    yield sandbox_clock


@pytest.fixture
def overdue_rule(default_rules):
    """The default Overdue rule of the data migration (a transactional test before may have flushed it)."""
    importlib.import_module("mapping.migrations.0005_overdue_stage_rule").add_default(apps, None)


@pytest.fixture
def pipeline(sandbox, overdue_rule):
    return sandbox.add_pipeline("Xero invoices", STAGES)


@pytest.fixture
def figures(sync_pair, sandbox, pipeline):
    """Fields finance would map: the organization's Xero overdue balance and available credit, the
    deal's over-credit flag; a credit limit of 1,000 for every customer (the pair's default)."""
    overdue_field = sandbox.add_custom_field("organization", "Xero overdue", "double")
    available = sandbox.add_custom_field("organization", "Available credit", "double")
    flag = sandbox.add_custom_field("deal", "Over credit limit", "varchar")
    rows = [
        ("organization", "Balances.AccountsReceivable.Overdue", overdue_field, "number"),
        ("organization", "Connector.AvailableCredit", available, "number"),
        ("deal", "Connector.OverCreditLimit", flag, "text"),
    ]
    for target, source, key, transform in rows:
        FieldMapping.objects.create(
            pair=sync_pair, target=target, source_path=source, pipedrive_field=key, transform=transform
        )
    CreditLimit.objects.create(pair=sync_pair, amount=Decimal("1000"))
    return {"overdue": overdue_field, "available": available, "flag": flag}


def field(record: dict, key: str):
    return (record.get("custom_fields") or {}).get(key, record.get(key))


def deal_of(sandbox):
    [deal] = sandbox.deals()
    return deal


def customer_with_invoice(sandbox, sync_pair, *, due_in_days=2, amount=1250):
    contact_id = sandbox.create_contact("Late Payers Ltd", email="ap@late.example")
    invoice_id = sandbox.create_invoice(contact_id, amount=amount, currency="NZD", due_in_days=due_in_days)
    outcomes = sync_invoices(sync_pair, [invoice_id], trigger="webhook")
    assert outcomes[invoice_id].status == "done", outcomes
    return contact_id, invoice_id


def test_the_pass_rolls_an_invoice_over_once_its_due_date_passed_and_a_second_pass_does_nothing(
    sync_pair, sandbox, pipeline, figures, moved_clock
):
    contact_id, invoice_id = customer_with_invoice(sandbox, sync_pair)
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]
    [org] = sandbox.organizations()
    assert not field(org, figures["overdue"])  # nothing overdue yet
    assert field(org, figures["available"]) == -250.0
    known = KnownInvoice.objects.get(pair=sync_pair, invoice_id=invoice_id.lower())
    due = known.due_on

    # Not yet due: the pass has nothing to do and asks Xero nothing.
    sandbox.reset_counters()
    assert overdue.overdue_pass(sync_pair.pk)["due"] == 0
    assert sandbox.counts().xero_calls == 0 and sandbox.counts().pipedrive_calls == 0

    moved_clock.advance(3 * DAY)  # the due date passes; nothing changes in Xero
    today = clock.local_today(sync_pair.xero_connection)
    assert today > due
    OverduePassState.objects.filter(pair=sync_pair).update(last_pass_on=None)
    sandbox.reset_counters()
    records_before = SyncRecord.objects.count()

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts["due"] == 1 and counts["done"] == 1, counts
    deal = deal_of(sandbox)
    assert deal["stage_id"] == pipeline["Overdue"] and deal["status"] == "open"
    assert field(deal, figures["flag"])  # still over the credit limit (1,250 open against 1,000)
    org = sandbox.organization(org["id"])
    assert field(org, figures["overdue"]) == 1250.0  # Xero's overdue balance, re-read
    calls = sandbox.counts()
    # One batched read of the invoices and one of their contacts (IDs=, up to 100 a call).
    # (the sandbox's access token expired as the clock moved: one 401 and a refresh, not counted)
    reads = {e: by.get("200", 0) for e, by in calls.xero_by_endpoint.items()}
    assert reads == {"GET /Invoices": 1, "GET /Contacts": 1}, calls
    record = SyncRecord.objects.filter(xero_type="invoice", xero_id=invoice_id).latest("id")
    assert record.trigger == "overdue" and record.trigger_text == "overdue check (due date passed)"
    assert SyncRecord.objects.count() > records_before
    known.refresh_from_db()
    assert known.rolled_over_due_on == due
    assert KnownContact.objects.filter(pair=sync_pair, contact_id=contact_id.lower()).exists()
    state = OverduePassState.objects.get(pair=sync_pair)
    assert state.last_pass_on == today and state.last_error == ""

    # The same day again: nothing read, nothing written, no record — scheduled or started by hand.
    sandbox.reset_counters()
    records = SyncRecord.objects.count()
    assert not overdue.pass_due(sync_pair)
    again = overdue.overdue_pass(sync_pair.pk)
    assert again["due"] == 0
    assert sandbox.counts().xero_calls == 0 and sandbox.counts().pipedrive_calls == 0
    assert SyncRecord.objects.count() == records

    # Paid in full: the invoice sync moves the deal on, as for any payment.
    payment_id = sandbox.pay(invoice_id, 1250)
    sync_records(sync_pair, "PAYMENT", [payment_id], trigger="webhook")
    deal = deal_of(sandbox)
    assert deal["stage_id"] == pipeline["Paid"] and deal["status"] == "won"


def test_without_an_overdue_rule_the_deal_stays_where_it_was(sync_pair, sandbox, pipeline, moved_clock):
    StageMapping.objects.filter(kind=StageMapping.Kind.DUE_STATE).delete()
    _contact_id, _invoice_id = customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)
    sandbox.reset_counters()

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts["due"] == 1
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]
    assert sandbox.counts().pipedrive_writes == 0  # the same payload: nothing sent


def test_a_pipeline_without_the_overdue_stage_keeps_the_other_rules(
    sync_pair, sandbox, overdue_rule, moved_clock
):
    old = sandbox.add_pipeline("Xero invoices", [s for s in STAGES if s != "Overdue"])
    customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts.get("done") == 1, counts
    assert deal_of(sandbox)["stage_id"] == old["Awaiting payment"]


def test_the_pass_waits_while_the_pipedrive_budget_is_low(
    sync_pair, sandbox, pipeline, moved_clock, settings
):
    _contact_id, invoice_id = customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)
    settings.PIPEDRIVE_BUDGET_RESERVE = 10**9  # the whole daily budget is kept for urgent work
    sandbox.reset_counters()

    outcome = overdue.overdue_pass(sync_pair.pk)

    assert "deferred" in outcome
    assert sandbox.counts().xero_calls == 0 and sandbox.counts().pipedrive_calls == 0
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]
    state = OverduePassState.objects.get(pair=sync_pair)
    assert state.last_pass_on is None and "budget" in state.last_error.lower()
    assert KnownInvoice.objects.get(invoice_id=invoice_id.lower()).rolled_over_due_on is None
    assert overdue.pass_due(sync_pair)  # the schedule tries again

    settings.PIPEDRIVE_BUDGET_RESERVE = 0
    assert overdue.overdue_pass(sync_pair.pk)["done"] == 1
    assert deal_of(sandbox)["stage_id"] == pipeline["Overdue"]


def test_the_schedule_starts_a_pass_once_a_local_day_after_the_set_time(
    sync_pair, sandbox, pipeline, moved_clock
):
    customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)
    local = clock.local_now(sync_pair.xero_connection)
    assert local.hour == 12  # the fixture's noon: half an hour later is the same local day
    later = (local + dt.timedelta(minutes=30)).strftime("%H:%M")
    sync_pair.options = {**sync_pair.options, "overdue_check_at": later}
    sync_pair.save()

    assert overdue.run_due_passes() == {}  # before the set time
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]

    moved_clock.advance(31 * 60)
    ran = overdue.run_due_passes()
    assert ran[str(sync_pair.pk)]["done"] == 1
    assert deal_of(sandbox)["stage_id"] == pipeline["Overdue"]
    assert overdue.run_due_passes() == {}  # once a day


def test_the_manual_check_needs_the_pairs_change_permission(
    sync_pair, sandbox, pipeline, moved_clock, client, admin_client
):
    customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)
    url = reverse("admin:connector_syncpair_overdue_check", args=[sync_pair.pk])
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncpair"))
    client.force_login(viewer)
    sandbox.reset_counters()

    refused = client.post(url)

    assert refused.status_code == 403
    assert not OverduePassState.objects.filter(pair=sync_pair).exists()
    assert sandbox.counts().xero_calls == 0
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]
    assert admin_client.get(url).status_code == 405  # a GET changes nothing

    started = admin_client.post(url)  # the task runs at once in the tests' synchronous queue

    assert started.status_code == 302
    state = OverduePassState.objects.get(pair=sync_pair)
    assert state.last_counts["done"] == 1 and state.last_counts["requested_by"] == "admin"
    assert deal_of(sandbox)["stage_id"] == pipeline["Overdue"]


def activities(sandbox) -> list:
    return list(Activity.objects.filter(company=sandbox.company, is_deleted=False).order_by("id"))


def test_the_reminder_is_one_activity_for_the_deals_owner_closed_when_paid(
    sync_pair, sandbox, pipeline, moved_clock
):
    sync_pair.options = {**sync_pair.options, "overdue_reminders": True}
    sync_pair.save()
    _contact_id, invoice_id = customer_with_invoice(sandbox, sync_pair)
    deal = deal_of(sandbox)
    moved_clock.advance(3 * DAY)
    today = clock.local_today(sync_pair.xero_connection)

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts["reminders"] == {"created": 1}, counts
    [activity] = activities(sandbox)
    number = sandbox.xero_invoice(invoice_id).invoice_number
    assert activity.subject.startswith(f"{number} overdue: 1,250.00 NZD, due ")
    assert activity.owner_id == deal["owner_id"] and activity.deal_id == deal["id"]
    assert activity.org_id == deal["org_id"] and activity.due_date == today and not activity.done
    reminder = OverdueReminder.objects.get(pair=sync_pair)
    assert reminder.activity_id == activity.id and reminder.done_at is None

    # Again the same day (started by hand): still one activity.
    overdue.overdue_pass(sync_pair.pk)
    assert len(activities(sandbox)) == 1

    payment_id = sandbox.pay(invoice_id, 1250)
    sync_records(sync_pair, "PAYMENT", [payment_id], trigger="webhook")

    [activity] = activities(sandbox)
    assert activity.done
    reminder.refresh_from_db()
    assert reminder.done_at is not None and reminder.closed_because == "invoice paid"
    assert deal_of(sandbox)["stage_id"] == pipeline["Paid"]


def test_with_the_reminder_option_off_no_activity_is_made(sync_pair, sandbox, pipeline, moved_clock):
    customer_with_invoice(sandbox, sync_pair)
    moved_clock.advance(3 * DAY)

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts["done"] == 1 and "reminders" not in counts
    assert activities(sandbox) == [] and not OverdueReminder.objects.exists()


@pytest.fixture
def reminders_on(sync_pair):
    sync_pair.options = {**sync_pair.options, "overdue_reminders": True}
    sync_pair.save()
    return sync_pair


def customer_with_person_and_invoice(sandbox, sync_pair):
    """A customer whose contact names a person, so the deal has a person the reminder is linked to."""
    contact_id = sandbox.create_contact(
        "Late Payers Ltd", email="ap@late.example", first_name="Tama", last_name="Ruru"
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=1250, currency="NZD", due_in_days=2)
    assert sync_invoices(sync_pair, [invoice_id], trigger="webhook")[invoice_id].status == "done"
    return contact_id, invoice_id


def test_the_reminder_is_linked_to_the_deals_person_and_a_void_closes_it(
    reminders_on, sandbox, pipeline, moved_clock
):
    _contact_id, invoice_id = customer_with_person_and_invoice(sandbox, reminders_on)
    deal = deal_of(sandbox)
    [person] = sandbox.persons()
    assert deal["person_id"] == person["id"]
    moved_clock.advance(3 * DAY)

    assert overdue.overdue_pass(reminders_on.pk)["reminders"] == {"created": 1}
    [activity] = activities(sandbox)
    assert activity.attributes["participants"] == [{"person_id": person["id"], "primary": True}]
    assert activity.deal_id == deal["id"] and activity.org_id == deal["org_id"] and not activity.done

    sandbox.void_invoice(invoice_id)
    assert sync_invoices(reminders_on, [invoice_id], trigger="webhook")[invoice_id].status == "done"

    [activity] = activities(sandbox)
    assert activity.done
    reminder = OverdueReminder.objects.get(pair=reminders_on)
    assert reminder.done_at is not None and reminder.closed_because == "invoice voided"
    assert deal_of(sandbox)["stage_id"] == pipeline["Voided"]
    # The next day's pass makes no new reminder for a voided invoice.
    moved_clock.advance(DAY)
    overdue.overdue_pass(reminders_on.pk)
    assert len(activities(sandbox)) == 1


def test_a_moved_due_date_closes_the_reminder_and_a_new_one_follows_once_the_new_date_passes(
    reminders_on, sandbox, pipeline, moved_clock
):
    _contact_id, invoice_id = customer_with_invoice(sandbox, reminders_on)
    moved_clock.advance(3 * DAY)
    overdue.overdue_pass(reminders_on.pk)
    [first] = activities(sandbox)
    today = clock.local_today(reminders_on.xero_connection)

    # Finance gives the customer five more days: the deal is no longer overdue, the reminder is done.
    new_due = today + dt.timedelta(days=5)
    sandbox.update_invoice(invoice_id, DueDate=new_due.isoformat())
    assert sync_invoices(reminders_on, [invoice_id], trigger="webhook")[invoice_id].status == "done"
    [first] = activities(sandbox)
    assert first.done
    assert OverdueReminder.objects.get(activity_id=first.id).closed_because == "due date moved"
    assert deal_of(sandbox)["stage_id"] == pipeline["Awaiting payment"]

    moved_clock.advance(DAY)  # before the new date: nothing to remind of
    overdue.overdue_pass(reminders_on.pk)
    assert len(activities(sandbox)) == 1

    moved_clock.advance(5 * DAY)  # the new date passed
    counts = overdue.overdue_pass(reminders_on.pk)
    assert counts["reminders"] == {"created": 1}, counts
    first, second = activities(sandbox)
    assert first.done and not second.done
    assert second.subject.endswith(f"due {new_due.day} {new_due:%b}")
    assert deal_of(sandbox)["stage_id"] == pipeline["Overdue"]
    assert OverdueReminder.objects.filter(pair=reminders_on).count() == 2


def test_a_reminder_whose_answer_was_lost_is_found_not_made_twice(
    reminders_on, sandbox, pipeline, moved_clock, monkeypatch
):
    """The activity was created in Pipedrive but the answer never came back (a killed worker, a
    dropped connection): the next pass finds it on the deal instead of creating a second one."""
    customer_with_invoice(sandbox, reminders_on)
    moved_clock.advance(3 * DAY)
    create = PipedriveClient.create_activity

    def create_then_lose_the_answer(self, data):
        create(self, data)
        raise ConnectionBroken("the connection dropped before the answer")

    monkeypatch.setattr(PipedriveClient, "create_activity", create_then_lose_the_answer)
    assert "error" in overdue.overdue_pass(reminders_on.pk)
    [activity] = activities(sandbox)
    reminder = OverdueReminder.objects.get(pair=reminders_on)
    assert reminder.activity_id is None  # claimed, but its id never came back
    assert overdue.pass_due(reminders_on)  # the schedule tries again today

    monkeypatch.setattr(PipedriveClient, "create_activity", create)
    counts = overdue.overdue_pass(reminders_on.pk)

    assert counts["reminders"] == {"found": 1}, counts
    assert [a.id for a in activities(sandbox)] == [activity.id]
    reminder.refresh_from_db()
    assert reminder.activity_id == activity.id
    overdue.overdue_pass(reminders_on.pk)  # and later passes leave it alone
    assert len(activities(sandbox)) == 1


def test_the_pass_reads_xero_in_batches_of_100_however_many_invoices_fall_due(
    sync_pair, sandbox, pipeline, moved_clock
):
    """120 invoices of three customers fall due on one day: two reads of invoices (100 + 20 ids),
    one of their contacts (IDs=), never one call per invoice."""
    customers = [sandbox.create_contact(f"Customer {n}", email=f"ap{n}@example.com") for n in range(3)]
    invoice_ids = [
        sandbox.create_invoice(customers[n % 3], amount=100 + n, currency="NZD", due_in_days=2)
        for n in range(120)
    ]
    outcomes = sync_invoices(sync_pair, invoice_ids, trigger="backfill")
    assert {o.status for o in outcomes.values()} == {"done"}
    moved_clock.advance(3 * DAY)
    sandbox.reset_counters()

    counts = overdue.overdue_pass(sync_pair.pk)

    assert counts["due"] == 120 and counts["done"] == 120, counts
    calls = sandbox.counts()
    reads = {e: by.get("200", 0) for e, by in calls.xero_by_endpoint.items()}
    assert reads == {"GET /Invoices": 2, "GET /Contacts": 1}, calls
    assert {d["stage_id"] for d in sandbox.deals()} == {pipeline["Overdue"]}
    assert len(sandbox.deals()) == 120
