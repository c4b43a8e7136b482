"""Payments → deal stages and notes against the sandboxes: part paid, paid (won), deleted payments move
the deal back, one note per payment, replays write nothing."""

import datetime as dt

import pytest

from audit.models import SyncRecord
from connector.sync import sync_records
from connector.sync.payments import note_content, payment_where, sync_payments
from mapping.models import FieldMapping, RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


def only_deal(sandbox):
    deals = sandbox.deals()
    assert len(deals) == 1, deals
    return deals[0]


def test_part_payment_full_payment_and_deleted_payment_move_the_deal(sync_pair, sandbox, stages):
    contact_id = sandbox.create_contact(
        "Paying Customer Ltd",
        persons=[
            {"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@paying.example"},
            {"FirstName": "Bob", "LastName": "Ray", "EmailAddress": "bob@paying.example"},
        ],
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=1000, currency="NZD")
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")
    assert only_deal(sandbox)["stage_id"] == stages["Awaiting payment"]
    assert len(sandbox.organizations()) == 1 and len(sandbox.persons()) == 2

    first = sandbox.pay(invoice_id, 400, date=dt.date(2026, 11, 2), reference="EFT 1234")
    outcome = sync_records(sync_pair, "PAYMENT", [first], trigger="webhook")[first]

    deal = only_deal(sandbox)
    assert outcome.status == "done" and outcome.action == "created"
    assert deal["stage_id"] == stages["Part paid"] and deal["status"] == "open"
    [note] = sandbox.notes(deal_id=deal["id"])
    assert (
        "NZD 400.00" in note["content"] and "2026-11-02" in note["content"] and "EFT 1234" in note["content"]
    )
    assert RecordLink.objects.get(xero_type="payment", xero_id=first).pipedrive_id == note["id"]

    second = sandbox.pay(invoice_id, 600, reference="EFT 5678")
    sync_payments(sync_pair, [second], trigger="webhook")
    deal = only_deal(sandbox)
    assert deal["stage_id"] == stages["Paid"] and deal["status"] == "won"
    assert len(sandbox.notes(deal_id=deal["id"])) == 2

    sandbox.delete_payment(second)
    outcome = sync_payments(sync_pair, [second], trigger="webhook")[second]
    deal = only_deal(sandbox)
    assert outcome.action == "created"
    assert deal["stage_id"] == stages["Part paid"] and deal["status"] == "open"
    notes = sandbox.notes(deal_id=deal["id"])
    assert len(notes) == 3 and "removed" in notes[-1]["content"] and "600.00" in notes[-1]["content"]

    sandbox.delete_payment(first)
    sync_payments(sync_pair, [first], trigger="webhook")
    deal = only_deal(sandbox)
    assert deal["stage_id"] == stages["Awaiting payment"] and deal["status"] == "open"

    # The same events replayed three times: no new deal, no new note, no write at all.
    events = [("CONTACT", contact_id), ("INVOICE", invoice_id), ("PAYMENT", first), ("PAYMENT", second)]
    for _ in range(3):
        sandbox.reset_counters()
        for category, resource_id in events:
            sync_records(sync_pair, category, [resource_id], trigger="replay")
        assert sandbox.counts().pipedrive_writes == 0, sandbox.counts()
    assert len(sandbox.deals()) == 1 and len(sandbox.notes()) == 4


def test_notes_are_skipped_when_the_pair_says_so(sync_pair, sandbox, stages):
    sync_pair.options = {**sync_pair.options, "create_notes": False}
    sync_pair.save()
    contact_id = sandbox.create_contact("Quiet Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    payment_id = sandbox.pay(invoice_id, 100)

    outcome = sync_payments(sync_pair, [payment_id], trigger="webhook")[payment_id]

    assert outcome.status == "done" and outcome.action == "skipped"
    deal = only_deal(sandbox)
    assert deal["stage_id"] == stages["Paid"] and deal["status"] == "won"
    assert sandbox.notes() == []


def test_payments_of_many_invoices_cost_one_fetch_each_and_unknown_ids_are_ignored(
    sync_pair, sandbox, stages
):
    contact_id = sandbox.create_contact("Many Ltd")
    invoices = [sandbox.create_invoice(contact_id, amount=100) for _ in range(3)]
    payments = [sandbox.pay(invoice_id, 50) for invoice_id in invoices]
    unknown = "00000000-0000-0000-0000-000000000001"
    sandbox.reset_counters()

    outcomes = sync_payments(sync_pair, [*payments, unknown], trigger="webhook")

    assert [outcomes[p].action for p in payments] == ["created"] * 3
    assert outcomes[unknown].status == "ignored"
    counts = sandbox.counts()
    assert sum(counts.xero_by_endpoint["GET /Payments"].values()) == 1, counts
    assert sum(counts.xero_by_endpoint["GET /Invoices"].values()) == 1, counts
    assert {d["stage_id"] for d in sandbox.deals()} == {stages["Part paid"]}
    assert SyncRecord.objects.filter(xero_type="payment", outcome="created").count() == 3


def test_a_payment_whose_invoice_cannot_be_synced_fails_with_the_reason(sync_pair, sandbox, default_rules):
    contact_id = sandbox.create_contact("No Pipeline Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    payment_id = sandbox.pay(invoice_id, 10)

    outcome = sync_payments(sync_pair, [payment_id], trigger="webhook")[payment_id]

    assert outcome.status == "failed" and "Create the invoice pipeline" in outcome.reason
    assert sandbox.notes() == []


def test_where_clause_and_note_text():
    assert payment_where(["a", "b"]) == 'PaymentID==Guid("a") OR PaymentID==Guid("b")'
    payment = {
        "Date": "/Date(1762041600000+0000)/",
        "Amount": 1234.5,
        "Reference": "<b>x</b>",
        "Invoice": {"InvoiceNumber": "INV-0007", "CurrencyCode": "AUD"},
    }
    text = note_content(payment)
    assert text == (
        "<p>Xero payment received: AUD 1,234.50 on 2025-11-02 for invoice INV-0007. "
        "Reference: &lt;b&gt;x&lt;/b&gt;.</p>"
    )
    assert "removed" in note_content(payment, removed=True)


def test_balances_refresh_on_the_organization_after_invoice_and_payment_changes(sync_pair, sandbox, stages):
    outstanding = sandbox.add_custom_field("organization", "Outstanding", "double")
    overdue = sandbox.add_custom_field("organization", "Overdue", "double")
    for order, (path, key) in enumerate(
        [
            ("Balances.AccountsReceivable.Outstanding", outstanding),
            ("Balances.AccountsReceivable.Overdue", overdue),
        ]
    ):
        FieldMapping.objects.create(
            pair=sync_pair, target="organization", source_path=path, pipedrive_field=key, transform="number",
            transform_options={"clear_when_empty": True}, order=order,
        )  # fmt: skip
    contact_id = sandbox.create_contact("Balances Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    [org] = sandbox.organizations()
    assert org["custom_fields"][outstanding] == 0.0

    late = sandbox.create_invoice(contact_id, amount=300, date=dt.date.today() - dt.timedelta(days=40))
    sync_records(sync_pair, "INVOICE", [late], trigger="webhook")
    fields = sandbox.organization(org["id"])["custom_fields"]
    assert fields[outstanding] == 300.0 and fields[overdue] == 300.0

    payment_id = sandbox.pay(late, 120)
    sync_records(sync_pair, "PAYMENT", [payment_id], trigger="webhook")
    fields = sandbox.organization(org["id"])["custom_fields"]
    assert fields[outstanding] == 180.0 and fields[overdue] == 180.0

    sandbox.reset_counters()
    sync_records(sync_pair, "PAYMENT", [payment_id], trigger="replay")  # balances unchanged: no write
    assert sandbox.counts().pipedrive_writes == 0


def test_a_malformed_payment_id_is_ignored_alone(sync_pair, sandbox, stages):
    contact_id = sandbox.create_contact("Malformed Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    payment_id = sandbox.pay(invoice_id, 30)

    outcomes = sync_payments(sync_pair, ['x") OR (1==1', payment_id.upper()], trigger="webhook")

    assert outcomes['x") OR (1==1'].status == "ignored"
    assert outcomes[payment_id.upper()].action == "created" and len(sandbox.notes()) == 1
