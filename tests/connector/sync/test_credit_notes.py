"""A Xero credit note event re-syncs the invoices it is allocated to and its contact (sandbox Xero)."""

import uuid

import pytest

from connector.sync import sync_records
from connector.sync.credit_notes import touched
from sandbox.xero import accounting
from sandbox.xero.models import CreditNote
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


def _credit(sandbox, contact_id, invoice_id, amount) -> str:
    credit_note = accounting.create_credit_note(
        sandbox.organisation,
        {
            "Type": "ACCRECCREDIT",
            "Status": "AUTHORISED",
            "Contact": {"ContactID": contact_id},
            "LineAmountTypes": "NoTax",
            "LineItems": [{"Description": "Credit", "Quantity": 1, "UnitAmount": amount}],
        },
    )
    accounting.allocate_credit_note(credit_note, {"Invoice": {"InvoiceID": invoice_id}, "Amount": amount})
    return str(CreditNote.objects.get(pk=credit_note.pk).credit_note_id)


def test_a_credit_note_covering_an_invoice_moves_its_deal_to_paid(sync_pair, sandbox, stages):
    contact_id = sandbox.create_contact("Credited Customer Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=1000, currency="NZD")
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")
    [deal] = sandbox.deals()
    assert deal["stage_id"] == stages["Awaiting payment"]

    credit_note_id = _credit(sandbox, contact_id, invoice_id, sandbox.xero_invoice(invoice_id).total)
    outcome = sync_records(sync_pair, "CREDITNOTE", [credit_note_id], trigger="webhook")[credit_note_id]

    assert outcome.status == "done", outcome
    [deal] = sandbox.deals()
    assert deal["stage_id"] == stages["Paid"] and deal["status"] == "won"


def test_unknown_and_malformed_credit_note_ids_are_ignored(sync_pair, sandbox, stages):
    unknown, malformed = str(uuid.uuid4()), "not-an-id"
    outcomes = sync_records(sync_pair, "CREDITNOTE", [unknown, malformed], trigger="webhook")
    assert {k: v.status for k, v in outcomes.items()} == {unknown: "ignored", malformed: "ignored"}


def test_what_a_credit_note_touches():
    credit_note = {
        "Contact": {"ContactID": "c-1"},
        "Allocations": [
            {"Invoice": {"InvoiceID": "i-1"}},
            {"Invoice": {"InvoiceID": "i-2"}, "IsDeleted": True},
            {"Invoice": {"InvoiceID": "i-1"}},
        ],
    }
    assert touched(credit_note) == (["i-1"], ["c-1"])
    assert touched({}) == ([], [])
